// SPDX-License-Identifier: GPL-2.0
/*
 * The client side of the agent's protocol (loader/agent/client.c), in-process on a
 * socketpair standing in for the agent: frames whole, cut short, oversized and
 * absent; a subscription's frames dispatched to a sink (records filtered by protocol,
 * losses, namespaces gone, frames of unknown types skipped); the request line of a
 * trace on demand.
 */
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "test.h"
#include "agent/vtg_agent.h"
#include "latency/vtg_latency.h"

static bool send_frame(int fd, uint32_t type, const void *payload, uint32_t len)
{
	struct vtg_agent_frame h = { type, len };

	return write(fd, &h, sizeof(h)) == sizeof(h) && (!len || write(fd, payload, len) == (ssize_t)len);
}

TEST(agent_client_frames)
{
	struct vtg_agent_frame h;
	char buf[64];
	int sv[2];

	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
		return;
	if (SUBTEST("good")) {
		ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_GONE, "\x01\x02\x03\x04", 4), "write");
		ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_END, NULL, 0), "write");
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), 0, "a frame");
		ASSERT_TRUE(h.type == VTG_AGENT_FRAME_GONE && h.len == 4 && !memcmp(buf, "\x01\x02\x03\x04", 4),
			    "its type, length and payload");
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), 0, "an empty frame");
		ASSERT_TRUE(h.type == VTG_AGENT_FRAME_END && h.len == 0, "with no payload");
	}
	if (SUBTEST("none_yet")) {
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 50), -ETIMEDOUT,
			  "nothing within the timeout");
		ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_READY, NULL, 0), "write");
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), 0,
			  "the stream intact after a timeout");
		ASSERT_EQ(h.type, VTG_AGENT_FRAME_READY, "the frame after it");
	}
	if (SUBTEST("oversized")) {
		char big[200] = { 0 };

		ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_LAT, big, sizeof(big)), "write");
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), -EMSGSIZE,
			  "a payload over the buffer is refused");
		ASSERT_EQ(h.len, sizeof(big), "its length told");
		/* out of step now: a fresh pair for what follows */
		close(sv[0]);
		close(sv[1]);
		if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
	}
	if (SUBTEST("short")) {
		struct vtg_agent_frame cut = { VTG_AGENT_FRAME_LOST, 8 };

		ASSERT_EQ(write(sv[1], &cut, sizeof(cut)), sizeof(cut), "a header");
		ASSERT_EQ(write(sv[1], "abc", 3), 3, "3 of its 8 bytes");
		close(sv[1]);
		sv[1] = -1;
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), -EPROTO,
			  "a frame cut short");
		close(sv[0]);
		if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
		ASSERT_EQ(write(sv[1], &cut, 5), 5, "half a header");
		close(sv[1]);
		sv[1] = -1;
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), -EPROTO,
			  "a header cut short");
		close(sv[0]);
		if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
	}
	if (SUBTEST("closed")) {
		close(sv[1]);
		sv[1] = -1;
		ASSERT_EQ(vtg_agent_frame_read(sv[0], &h, buf, sizeof(buf), 1000), -ECONNRESET,
			  "the agent gone between frames");
	}
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

struct seen {
	int events, lost_calls, gone_calls;
	uint64_t lost;
	uint32_t gone, last_proto;
};

static int on_event(const struct vtg_lat_event *ev, void *ctx)
{
	struct seen *s = ctx;

	s->events++;
	s->last_proto = ev->key.proto;
	return 0;
}

static void on_lost(uint64_t n, void *ctx)
{
	struct seen *s = ctx;

	s->lost_calls++;
	s->lost += n;
}

static void on_gone(uint32_t netns, void *ctx)
{
	struct seen *s = ctx;

	s->gone_calls++;
	s->gone = netns;
}

TEST(agent_client_subscription)
{
	struct seen seen = {};
	const struct vtg_lat_sink sink = { on_event, on_lost, on_gone, &seen };
	struct vtg_lat_event udp = { .netns = 7 }, icmp = { .netns = 7 };
	uint64_t lost = 5;
	uint32_t ns = 4242;
	char odd[16] = "newer agent";
	int sv[2];

	udp.key.proto = IPPROTO_UDP;
	icmp.key.proto = IPPROTO_ICMP;
	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
		return;
	ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_LAT, &udp, sizeof(udp)) &&
		    send_frame(sv[1], VTG_AGENT_FRAME_LAT, &icmp, sizeof(icmp)) &&
		    send_frame(sv[1], 99, odd, sizeof(odd)) &&
		    send_frame(sv[1], VTG_AGENT_FRAME_LOST, &lost, sizeof(lost)) &&
		    send_frame(sv[1], VTG_AGENT_FRAME_GONE, &ns, sizeof(ns)), "the agent's frames");
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(vtg_agent_lat_read(sv[0], VTG_LAT_PROTO_ICMP, &sink, 1000), 0, "a frame");
	ASSERT_EQ(seen.events, 1, "the UDP record filtered out, the ICMP one through");
	ASSERT_EQ(seen.last_proto, IPPROTO_ICMP, "the ICMP one");
	ASSERT_TRUE(seen.lost_calls == 1 && seen.lost == 5, "the loss");
	ASSERT_TRUE(seen.gone_calls == 1 && seen.gone == 4242, "the namespace gone");
	ASSERT_EQ(vtg_agent_lat_read(sv[0], 0, &sink, 20), -ETIMEDOUT, "nothing more");
	/* a record frame of the wrong size is not a record */
	ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_LAT, odd, sizeof(odd)), "a short record frame");
	ASSERT_EQ(vtg_agent_lat_read(sv[0], 0, &sink, 1000), 0, "read");
	ASSERT_EQ(seen.events, 1, "not handed on");
	/* a record frame larger than any record: the stream is out of step */
	{
		char big[sizeof(struct vtg_lat_event) + 64] = { 0 };

		ASSERT_TRUE(send_frame(sv[1], VTG_AGENT_FRAME_LAT, big, sizeof(big)), "an oversized frame");
		ASSERT_EQ(vtg_agent_lat_read(sv[0], 0, &sink, 1000), -EMSGSIZE, "refused");
	}
	close(sv[1]);
	close(sv[0]);
}

TEST(agent_client_trace_request)
{
	char buf[512];
	char *args[] = { "--netns", "c 1", "-q", "1", "192.0.2.1", "%", "\n" };
	int n = vtg_agent_trace_request(buf, sizeof(buf), args, 7, true, false);

	if (!ASSERT_GT(n, 0, "request"))
		return;
	ASSERT_STREQ(buf, "VANTAGE/1 trace -j -- --netns c%201 -q 1 192.0.2.1 %25 %0A\n",
		     "global flags, '--', each argument percent-encoded");
	ASSERT_EQ(n, (int)strlen(buf), "its length");
	n = vtg_agent_trace_request(buf, sizeof(buf), args, 0, false, true);
	ASSERT_STREQ(buf, "VANTAGE/1 trace -v --\n", "no arguments");
	ASSERT_EQ(vtg_agent_trace_request(buf, 30, args, 7, true, false), -E2BIG, "too long for the buffer");
}
