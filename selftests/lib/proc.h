/* SPDX-License-Identifier: GPL-2.0 */
/* Running commands from tests: build/vantage and friends, with stdout and stderr apart. */
#ifndef VANTAGE_TEST_PROC_H
#define VANTAGE_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct vproc {
	int status;      /* exit status, 128+signal if killed, -errno if it could not run */
	char out[65536]; /* stdout, NUL-terminated, truncated */
	char err[16384]; /* stderr */
};

/* Runs argv (argv[0] searched in PATH) and waits up to timeout_ms (then SIGKILL). */
int vproc_run(const char *const argv[], int timeout_ms, struct vproc *r);
/* Runs build/vantage with the given arguments (NULL-terminated list). */
int vproc_vantage(struct vproc *r, int timeout_ms, ...);
/* Path of build/vantage. */
const char *vproc_vantage_path(void);

/* Starts argv in the background; its stdout is readable from *out_fd (stderr is
 * inherited). Returns the pid or -errno. */
pid_t vproc_spawn(const char *const argv[], int *out_fd);
/* Reads one line from fd within timeout_ms; returns its length, 0 on EOF, -ETIMEDOUT. */
int vproc_read_line(int fd, char *buf, size_t len, int timeout_ms);
/* Waits for pid (reaping it) up to timeout_ms; returns exit status as vproc_run. */
int vproc_wait(pid_t pid, int timeout_ms);

/* Evaluates a jq expression with `jq -e -s`: json (one or more values, e.g. a JSON
 * Lines stream) is slurped into one array, so expressions read like
 * `map(select(.type=="count")) | length == 3`. Returns 1 if the result is truthy,
 * 0 if false/null, negative if jq failed (invalid JSON, bad expression). */
int vjson_true(const char *json, const char *expr);
/* jq -r expression output (first line) into buf, json not slurped; 0 or negative. */
int vjson_get(const char *json, const char *expr, char *buf, size_t len);

/* A request to a unix stream socket (the agent's): its answer goes to outfile for ms
 * milliseconds or until the peer closes. arg is a struct vsock_reader, so it can run in
 * a namespace through nsh_spawn(). Returns the bytes read, -1 if it could not ask. */
struct vsock_reader {
	const char *path, *req, *outfile;
	int ms;
};
int vsock_read(void *arg);

#endif
