// SPDX-License-Identifier: GPL-2.0
/* The few rtnetlink requests vantage makes itself: veth pairs for feature probes, and
 * listing clsact qdiscs and BPF filters for `vantage status` and `vantage clean`. */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <linux/pkt_sched.h>
#include <linux/pkt_cls.h>
#include "core/vtg_core.h"

#define NL_BUF 32768

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifinfomsg ifi;
		struct tcmsg tc;
	};
	char attrs[1024];
};

static int nl_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* msg is the whole request buffer (starting with its nlmsghdr), max its size. */
static struct rtattr *nla_put(void *msg, size_t max, int type, const void *data, int len)
{
	struct nlmsghdr *nh = msg;
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
	int alen = RTA_LENGTH(len);

	if (NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(alen) > max)
		return NULL;
	rta->rta_type = type;
	rta->rta_len = alen;
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(alen);
	return rta;
}

static void nla_end(struct nlmsghdr *nh, struct rtattr *start)
{
	start->rta_len = (char *)nh + nh->nlmsg_len - (char *)start;
}

/* Sends a request and waits for its ack; returns 0 or -errno from the kernel. */
static int nl_transact(struct nlmsghdr *nh)
{
	char buf[4096];
	int fd = nl_socket(), err;

	if (fd < 0)
		return fd;
	nh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nh->nlmsg_seq = 1;
	if (send(fd, nh, nh->nlmsg_len, 0) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			err = -errno;
			goto out;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				goto out;
			}
		}
	}
out:
	close(fd);
	return err;
}

int vtg_nl_veth_create(const char *name, const char *peer)
{
	struct nl_req req = {};
	struct rtattr *linkinfo, *data, *peerinfo;
	struct ifinfomsg peer_ifi = {};

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_NEWLINK;
	req.nh.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	req.ifi.ifi_family = AF_UNSPEC;
	nla_put(&req, sizeof(req), IFLA_IFNAME, name, strlen(name) + 1);
	linkinfo = nla_put(&req, sizeof(req), IFLA_LINKINFO, NULL, 0);
	nla_put(&req, sizeof(req), IFLA_INFO_KIND, "veth", 4);
	data = nla_put(&req, sizeof(req), IFLA_INFO_DATA, NULL, 0);
	peerinfo = nla_put(&req, sizeof(req), VETH_INFO_PEER, &peer_ifi, sizeof(peer_ifi));
	nla_put(&req, sizeof(req), IFLA_IFNAME, peer, strlen(peer) + 1);
	nla_end(&req.nh, peerinfo);
	nla_end(&req.nh, data);
	nla_end(&req.nh, linkinfo);
	return nl_transact(&req.nh);
}

int vtg_nl_link_up(int ifindex)
{
	struct nl_req req = {};

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_NEWLINK;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = ifindex;
	req.ifi.ifi_flags = IFF_UP;
	req.ifi.ifi_change = IFF_UP;
	return nl_transact(&req.nh);
}

int vtg_nl_link_del(int ifindex)
{
	struct nl_req req = {};

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	req.nh.nlmsg_type = RTM_DELLINK;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = ifindex;
	return nl_transact(&req.nh);
}

typedef int (*nl_dump_cb)(struct nlmsghdr *h, void *arg);

/* Sends a dump request and calls cb for every message until NLMSG_DONE. */
static int nl_dump(struct nlmsghdr *nh, nl_dump_cb cb, void *arg)
{
	char *buf = malloc(NL_BUF);
	int fd = nl_socket(), err = 0;

	if (!buf || fd < 0) {
		err = fd < 0 ? fd : -ENOMEM;
		goto out;
	}
	nh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
	nh->nlmsg_seq = 2;
	if (send(fd, nh, nh->nlmsg_len, 0) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, NL_BUF, 0);
		struct nlmsghdr *h;

		if (n < 0) {
			err = -errno;
			goto out;
		}
		if (n == 0)
			goto out;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				goto out;
			}
			err = cb(h, arg);
			if (err)
				goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

static void parse_rta(struct rtattr **tb, int max, struct rtattr *rta, int len)
{
	memset(tb, 0, sizeof(*tb) * (max + 1));
	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type <= max)
			tb[rta->rta_type] = rta;
}

struct filter_ctx {
	int ifindex;
	struct vtg_nl_tc_filter *out;
	int max, n;
};

static int filter_cb(struct nlmsghdr *h, void *arg)
{
	struct filter_ctx *c = arg;
	struct tcmsg *t = NLMSG_DATA(h);
	struct rtattr *tb[TCA_MAX + 1], *ob[TCA_BPF_MAX + 1];

	if (h->nlmsg_type != RTM_NEWTFILTER || t->tcm_ifindex != c->ifindex)
		return 0;
	parse_rta(tb, TCA_MAX, TCA_RTA(t), h->nlmsg_len - NLMSG_LENGTH(sizeof(*t)));
	if (!tb[TCA_KIND] || strcmp(RTA_DATA(tb[TCA_KIND]), "bpf") || !tb[TCA_OPTIONS])
		return 0;
	if (!t->tcm_handle)
		return 0; /* the per-priority chain header, not a filter */
	parse_rta(ob, TCA_BPF_MAX, RTA_DATA(tb[TCA_OPTIONS]), RTA_PAYLOAD(tb[TCA_OPTIONS]));
	if (c->n >= c->max)
		return 0;
	struct vtg_nl_tc_filter *f = &c->out[c->n++];

	memset(f, 0, sizeof(*f));
	f->handle = t->tcm_handle;
	f->prio = TC_H_MAJ(t->tcm_info) >> 16;
	if (ob[TCA_BPF_ID])
		f->prog_id = *(__u32 *)RTA_DATA(ob[TCA_BPF_ID]);
	if (ob[TCA_BPF_NAME])
		snprintf(f->name, sizeof(f->name), "%s", (char *)RTA_DATA(ob[TCA_BPF_NAME]));
	return 0;
}

int vtg_nl_tc_bpf_filters(int ifindex, bool egress, struct vtg_nl_tc_filter *out, int max)
{
	struct nl_req req = {};
	struct filter_ctx c = { .ifindex = ifindex, .out = out, .max = max };
	int err;

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
	req.nh.nlmsg_type = RTM_GETTFILTER;
	req.tc.tcm_family = AF_UNSPEC;
	req.tc.tcm_ifindex = ifindex;
	req.tc.tcm_parent = TC_H_MAKE(TC_H_CLSACT, egress ? TC_H_MIN_EGRESS : TC_H_MIN_INGRESS);
	err = nl_dump(&req.nh, filter_cb, &c);
	/* No clsact qdisc: no filters (the kernel answers EINVAL or ENOENT). */
	if (err == -EINVAL || err == -ENOENT)
		return 0;
	return err ? err : c.n;
}

struct qdisc_ctx {
	int ifindex;
	int found;
};

static int qdisc_cb(struct nlmsghdr *h, void *arg)
{
	struct qdisc_ctx *c = arg;
	struct tcmsg *t = NLMSG_DATA(h);
	struct rtattr *tb[TCA_MAX + 1];

	if (h->nlmsg_type != RTM_NEWQDISC || t->tcm_ifindex != c->ifindex)
		return 0;
	parse_rta(tb, TCA_MAX, TCA_RTA(t), h->nlmsg_len - NLMSG_LENGTH(sizeof(*t)));
	if (tb[TCA_KIND] && !strcmp(RTA_DATA(tb[TCA_KIND]), "clsact"))
		c->found = 1;
	return 0;
}

int vtg_nl_has_clsact(int ifindex)
{
	struct nl_req req = {};
	struct qdisc_ctx c = { .ifindex = ifindex };
	int err;

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
	req.nh.nlmsg_type = RTM_GETQDISC;
	req.tc.tcm_family = AF_UNSPEC;
	req.tc.tcm_ifindex = ifindex;
	err = nl_dump(&req.nh, qdisc_cb, &c);
	return err ? err : c.found;
}
