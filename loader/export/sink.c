// SPDX-License-Identifier: GPL-2.0
/* Export core: the sink table, the non-blocking output buffer every stream sink uses,
 * and the envelope's source name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"

/* Sinks live in their own files; a build without one says so rather than failing to link. */
extern const struct vtg_x_sink_ops vtg_x_sink_jsonl __attribute__((weak));
extern const struct vtg_x_sink_ops vtg_x_sink_ipfix __attribute__((weak));
extern const struct vtg_x_sink_ops vtg_x_sink_pcapng __attribute__((weak));
extern const struct vtg_x_sink_ops vtg_x_sink_prom __attribute__((weak));

static const struct vtg_x_sink_ops *sink_ops(const char *kind)
{
	const struct vtg_x_sink_ops *all[] = { &vtg_x_sink_jsonl, &vtg_x_sink_ipfix, &vtg_x_sink_pcapng, &vtg_x_sink_prom };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i] && !strcmp(all[i]->name, kind))
			return all[i];
	if (!strcmp(kind, "prometheus") || !strcmp(kind, "metrics"))
		return &vtg_x_sink_prom;
	return NULL;
}

struct vtg_x_sink *vtg_x_sink_open(const char *kind, const char *target, char *err, size_t errlen)
{
	const struct vtg_x_sink_ops *ops = sink_ops(kind);
	struct vtg_x_sink *s;

	if (!ops) {
		snprintf(err, errlen, "unknown sink '%s' (expected jsonl, ipfix, pcapng or prometheus)", kind);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ops = ops;
	s->sampling = 1;
	snprintf(s->target, sizeof(s->target), "%s", target ? target : "");
	err[0] = 0;
	if (ops->open(s, target ? target : "", err, errlen)) {
		if (!err[0])
			snprintf(err, errlen, "cannot open %s sink '%s'", kind, target ? target : "");
		free(s);
		return NULL;
	}
	return s;
}

void vtg_x_sink_stats_jw(struct jw *w, const struct vtg_x_sink *s)
{
	jw_obj(w);
	jw_kstr(w, "sink", s->ops->name);
	jw_kstr(w, "target", s->target);
	jw_ku64(w, "records", s->st.records);
	jw_ku64(w, "dropped", s->st.dropped);
	jw_ku64(w, "skipped", s->st.skipped);
	jw_ku64(w, "errors", s->st.errors);
	jw_ku64(w, "reconnects", s->st.reconnects);
	jw_obj_end(w);
}

void vtg_x_sink_close(struct vtg_x_sink *s)
{
	if (!s)
		return;
	if (s->ops->tick)
		s->ops->tick(s, vtg_mono_ns());
	s->ops->close(s);
	free(s);
}

/* ---- non-blocking output buffer ---- */

int vtg_x_obuf_init(struct vtg_x_obuf *b, int fd, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = malloc(cap);
	if (!b->buf)
		return -ENOMEM;
	b->cap = cap;
	b->fd = fd;
	return 0;
}

int vtg_x_obuf_put(struct vtg_x_obuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap && b->off) {
		/* Reclaim what was already written before refusing. */
		memmove(b->buf, b->buf + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap)
		return -1;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	b->put_total += n;
	return 0;
}

void vtg_x_obuf_mark(struct vtg_x_obuf *b)
{
	if (b->ends_n == b->ends_cap) {
		size_t cap = b->ends_cap ? b->ends_cap * 2 : 1024;
		uint64_t *ne = malloc(cap * sizeof(*ne));

		if (!ne)
			return; /* the count at close is then short: never wrong the other way */
		for (size_t i = 0; i < b->ends_n; i++)
			ne[i] = b->ends[(b->ends_head + i) % b->ends_cap];
		free(b->ends);
		b->ends = ne;
		b->ends_head = 0;
		b->ends_cap = cap;
	}
	b->ends[(b->ends_head + b->ends_n) % b->ends_cap] = b->put_total;
	b->ends_n++;
}

size_t vtg_x_obuf_pending(const struct vtg_x_obuf *b)
{
	return b->ends_n;
}

static void obuf_written(struct vtg_x_obuf *b, size_t n)
{
	b->written_total += n;
	while (b->ends_n && b->ends[b->ends_head] <= b->written_total) {
		b->ends_head = (b->ends_head + 1) % b->ends_cap;
		b->ends_n--;
	}
}

int vtg_x_obuf_flush(struct vtg_x_obuf *b)
{
	while (b->off < b->len && b->fd >= 0) {
		/* send() with MSG_NOSIGNAL on sockets: a peer that left is an error, not SIGPIPE. */
		ssize_t w = send(b->fd, b->buf + b->off, b->len - b->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == ENOTSOCK)
			w = write(b->fd, b->buf + b->off, b->len - b->off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		b->off += w;
		obuf_written(b, (size_t)w);
	}
	if (b->off == b->len)
		b->off = b->len = 0;
	return 0;
}

void vtg_x_obuf_free(struct vtg_x_obuf *b)
{
	free(b->buf);
	free(b->ends);
	b->ends = NULL;
	b->ends_n = b->ends_cap = 0;
	b->buf = NULL;
	b->len = b->off = b->cap = 0;
}
