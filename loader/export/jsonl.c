// SPDX-License-Identifier: GPL-2.0
/* The JSON Lines sink: records with their envelope, one per line, to a file or stdout.
 * A record is formatted into a staging area first and queued whole, so a reader that
 * falls behind loses whole records (counted), never half lines, and never blocks us. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include "core/vtg_core.h"
#include "export/vtg_export.h"

#define JSONL_QUEUE (8u << 20)

struct jsonl {
	struct vtg_x_obuf out;
	struct jw *w;           /* memory writer: one record at a time */
	bool own_fd, restore_flags, broken;
	int saved_flags;
};

static int jsonl_open(struct vtg_x_sink *s, const char *target, char *err, size_t errlen)
{
	struct jsonl *j = calloc(1, sizeof(*j));
	int fd;

	if (!j)
		return -1;
	if (!target[0] || !strcmp(target, "-")) {
		fd = STDOUT_FILENO;
		j->saved_flags = fcntl(fd, F_GETFL);
		/* A pipe to a slow reader must not stall the ring buffers. */
		if (j->saved_flags >= 0 && !(j->saved_flags & O_NONBLOCK) && !isatty(fd)) {
			fcntl(fd, F_SETFL, j->saved_flags | O_NONBLOCK);
			j->restore_flags = true;
		}
	} else {
		fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open %s: %s", target, strerror(errno));
			free(j);
			return -1;
		}
		j->own_fd = true;
	}
	j->w = jw_new_mem();
	if (!j->w || vtg_x_obuf_init(&j->out, fd, JSONL_QUEUE)) {
		snprintf(err, errlen, "out of memory");
		jw_free(j->w);
		vtg_x_obuf_free(&j->out);
		if (j->own_fd)
			close(fd);
		free(j);
		return -1;
	}
	s->priv = j;
	return 0;
}

static void jsonl_flush(struct vtg_x_sink *s, struct jsonl *j)
{
	int e;

	if (j->broken)
		return;
	e = vtg_x_obuf_flush(&j->out);
	if (e) {
		/* The reader went away (EPIPE) or the disk failed: count, stop writing. */
		s->st.errors++;
		j->broken = true;
		{
			size_t left = vtg_x_obuf_pending(&j->out);

			s->st.records -= left < s->st.records ? left : s->st.records;
			s->st.dropped += left;
			j->out.ends_n = 0;
		}
		vtg_warn("jsonl sink %s: %s; its records are dropped from now on",
			 s->target[0] ? s->target : "-", strerror(-e));
	}
}

/* Queues a whole record: a stream's line gets its newline in the same reservation. */
static int queue(struct vtg_x_obuf *b, const char *text, size_t len, bool add_newline)
{
	if (!add_newline)
		return vtg_x_obuf_put(b, text, len);
	if (vtg_x_obuf_put(b, text, len - 1))
		return -1;
	if (vtg_x_obuf_put(b, "\n", 1)) {
		b->len -= len - 1; /* take the line back: never half a record */
		return -1;
	}
	return 0;
}

static int jsonl_write(struct vtg_x_sink *s, const struct vtg_x_rec *r)
{
	struct jsonl *j = s->priv;

	if (j->broken) {
		s->st.dropped++;
		return -1;
	}
	const char *text;
	size_t len;
	bool line = r->line != NULL;

	if (line) {
		text = r->line;
		len = r->line_len + 1; /* and its newline, queued together below */
	} else {
		vtg_x_rec_jw(j->w, r);
		text = jw_take(j->w, &len);
	}
	if (!len || queue(&j->out, text, len, line)) {
		/* Queue full: try to make room once, else the record is dropped. */
		jsonl_flush(s, j);
		if (j->broken || !len || queue(&j->out, text, len, line)) {
			s->st.dropped++;
			return -1;
		}
	}
	vtg_x_obuf_mark(&j->out);
	s->st.records++;
	if (j->out.len - j->out.off >= (1u << 16))
		jsonl_flush(s, j);
	return 0;
}

static void jsonl_tick(struct vtg_x_sink *s, uint64_t now_ns)
{
	(void)now_ns;
	jsonl_flush(s, s->priv);
}

static int jsonl_pollfds(struct vtg_x_sink *s, int *fds, short *events, int max)
{
	struct jsonl *j = s->priv;

	if (max < 1 || j->broken || j->out.len == j->out.off)
		return 0;
	fds[0] = j->out.fd;
	events[0] = POLLOUT;
	return 1;
}

static void jsonl_close(struct vtg_x_sink *s)
{
	struct jsonl *j = s->priv;
	uint64_t deadline = vtg_mono_ns() + 2000000000ull;

	/* At the end only, wait a little for a slow reader to take what is queued. */
	while (!j->broken && j->out.len > j->out.off && vtg_mono_ns() < deadline) {
		jsonl_flush(s, j);
		if (j->out.len > j->out.off)
			usleep(1000);
	}
	{
		/* What the reader never took is dropped, counted in records. */
		size_t left = vtg_x_obuf_pending(&j->out);

		s->st.records -= left < s->st.records ? left : s->st.records;
		s->st.dropped += left;
	}
	if (j->restore_flags)
		fcntl(j->out.fd, F_SETFL, j->saved_flags);
	if (j->own_fd)
		close(j->out.fd);
	jw_free(j->w);
	vtg_x_obuf_free(&j->out);
	free(j);
}

const struct vtg_x_sink_ops vtg_x_sink_jsonl = {
	.name = "jsonl",
	.open = jsonl_open,
	.write = jsonl_write,
	.tick = jsonl_tick,
	.pollfds = jsonl_pollfds,
	.close = jsonl_close,
};
