// SPDX-License-Identifier: GPL-2.0
/*
 * Where do probes to a destination leave, and from which address: one RTM_GETROUTE,
 * like `ip route get DST`. The prober attaches its TC programs to that interface and
 * writes that source address into its probes (IP_HDRINCL).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include "trace/vtg_trace.h"

int vtg_tr_route_get(const struct vtg_tr_addr *dst, char ifname[16], struct vtg_tr_addr *src, int *ifindex)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
		char attrs[64];
	} req;
	char buf[8192];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct rtattr *rta;
	int fd, alen = dst->family == 6 ? 16 : 4, err = -ENETUNREACH, oif = 0;
	ssize_t n;

	memset(&req, 0, sizeof(req));
	memset(src, 0, sizeof(*src));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.rt.rtm_family = dst->family == 6 ? AF_INET6 : AF_INET;
	req.rt.rtm_dst_len = alen * 8;
	rta = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
	rta->rta_type = RTA_DST;
	rta->rta_len = RTA_LENGTH(alen);
	memcpy(RTA_DATA(rta), dst->a, alen);
	req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return -errno;
	for (struct nlmsghdr *nh = (void *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(nh);

			return e->error ? e->error : -ENETUNREACH;
		}
		if (nh->nlmsg_type != RTM_NEWROUTE)
			continue;
		struct rtmsg *rt = NLMSG_DATA(nh);
		int len = RTM_PAYLOAD(nh);

		if (rt->rtm_type == RTN_UNREACHABLE || rt->rtm_type == RTN_BLACKHOLE ||
		    rt->rtm_type == RTN_PROHIBIT)
			return rt->rtm_type == RTN_PROHIBIT ? -EACCES : -ENETUNREACH;
		for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4)
				memcpy(&oif, RTA_DATA(a), 4);
			else if (a->rta_type == RTA_PREFSRC && (int)RTA_PAYLOAD(a) >= alen) {
				src->family = dst->family;
				memcpy(src->a, RTA_DATA(a), alen);
			}
		}
		err = 0;
	}
	if (err)
		return err;
	if (!oif || !if_indextoname(oif, ifname))
		return -ENETUNREACH;
	if (ifindex)
		*ifindex = oif;
	return src->family ? 0 : -EADDRNOTAVAIL;
}
