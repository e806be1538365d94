// SPDX-License-Identifier: GPL-2.0
/* The environment vantage needs: root, bpffs, tracefs, clocks, pin trees. */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include "core/vtg_core.h"

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif

int vtg_require_root(void)
{
	if (geteuid() != 0) {
		vtg_err("must run as root (needs CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN): try 'sudo vantage ...'");
		return -EPERM;
	}
	return 0;
}

static int mount_if_missing(const char *dir, const char *type, long magic)
{
	struct statfs st;

	if (statfs(dir, &st) == 0 && (long)st.f_type == magic)
		return 0;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (mount(type, dir, type, 0, "mode=0700"))
		return -errno;
	return 0;
}

int vtg_mount_bpffs(void)
{
	int err = mount_if_missing("/sys/fs/bpf", "bpf", BPF_FS_MAGIC);

	if (err)
		vtg_err("cannot mount bpffs on /sys/fs/bpf: %s", strerror(-err));
	return err;
}

int vtg_mount_tracefs(void)
{
	int err = mount_if_missing("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC);

	if (err)
		vtg_err("cannot mount tracefs on /sys/kernel/tracing: %s", strerror(-err));
	return err;
}

int vtg_env_setup(void)
{
	int err;

	vtg_libbpf_log_setup();
	err = vtg_require_root();
	if (err)
		return err;
	err = vtg_mount_bpffs();
	if (err)
		return err;
	/* Tracepoint attach reads event ids from tracefs; only those programs need it. */
	if (mount_if_missing("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC))
		vtg_info("tracefs not mounted and cannot be: tracepoint programs will fail");
	return 0;
}

int vtg_mkdir_p(const char *path, mode_t mode)
{
	char buf[512];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int vtg_rm_tree(const char *path)
{
	struct stat st;
	int removed = 0;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			return -errno;
		while ((de = readdir(d))) {
			char sub[1024];
			int r;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			r = vtg_rm_tree(sub);
			if (r < 0) {
				closedir(d);
				return r;
			}
			removed += r;
		}
		closedir(d);
		if (rmdir(path))
			return -errno;
		return removed;
	}
	if (unlink(path))
		return -errno;
	return removed + 1;
}

double vtg_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t vtg_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* RFC 3339 UTC with nanoseconds; the formatted second is cached: this runs for every
 * record of a stream. */
void vtg_format_wall(uint64_t wall_ns, char *buf, size_t len)
{
	static time_t last_sec = -1;
	static char prefix[32];
	time_t sec = (time_t)(wall_ns / 1000000000);
	uint32_t ns = (uint32_t)(wall_ns % 1000000000);
	char out[48];
	size_t n;

	if (sec != last_sec) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = sec;
	}
	n = strlen(prefix);
	memcpy(out, prefix, n);
	out[n++] = '.';
	for (int i = 8; i >= 0; i--, ns /= 10)
		out[n + i] = (char)('0' + ns % 10);
	n += 9;
	out[n++] = 'Z';
	out[n] = 0;
	if (len) {
		if (n >= len)
			n = len - 1;
		memcpy(buf, out, n);
		buf[n] = 0;
	}
}

uint64_t vtg_wall_now_ns(void)
{
	struct timespec r;

	clock_gettime(CLOCK_REALTIME, &r);
	return (uint64_t)r.tv_sec * 1000000000ull + r.tv_nsec;
}

void vtg_wallclock_iso(char *buf, size_t len)
{
	vtg_format_wall(vtg_wall_now_ns(), buf, len);
}

/* CLOCK_REALTIME of a CLOCK_MONOTONIC time. The offset between the clocks is read
 * again every 4096 calls or 1 s of record time, so NTP steps show up soon. */
uint64_t vtg_wall_of_mono(uint64_t mono_ns)
{
	static int64_t offset;
	static uint64_t next_mono;
	static unsigned calls;

	if (!next_mono || mono_ns >= next_mono || ++calls >= 4096) {
		uint64_t m = vtg_mono_ns();

		offset = (int64_t)vtg_wall_now_ns() - (int64_t)m;
		next_mono = m + 1000000000ull;
		calls = 0;
	}
	return (uint64_t)((int64_t)mono_ns + offset);
}

void vtg_wallclock_of_mono(uint64_t mono_ns, char *buf, size_t len)
{
	vtg_format_wall(vtg_wall_of_mono(mono_ns), buf, len);
}
