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
#include "vantage.h"

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

void vtg_wallclock_iso(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char tmp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", tmp, ts.tv_nsec / 1000);
}

void vtg_wallclock_of_mono(uint64_t mono_ns, char *buf, size_t len)
{
	/* The offset between the clocks, and the formatted second, are cached: this runs for
	 * every record of a stream. */
	static int64_t offset;
	static double offset_at;
	static time_t last_sec = -1;
	static char prefix[32];
	double now = vtg_now_s();

	if (!offset_at || now - offset_at > 1.0) {
		struct timespec r;

		clock_gettime(CLOCK_REALTIME, &r);
		offset = ((int64_t)r.tv_sec * 1000000000 + r.tv_nsec) - (int64_t)vtg_mono_ns();
		offset_at = now;
	}
	int64_t real = (int64_t)mono_ns + offset;
	time_t sec = (time_t)(real / 1000000000);
	long usec = (long)(real % 1000000000) / 1000;

	if (sec != last_sec) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
		last_sec = sec;
	}
	snprintf(buf, len, "%s.%06ldZ", prefix, usec);
}
