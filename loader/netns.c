// SPDX-License-Identifier: GPL-2.0
/* Network namespaces: resolving names, listing every reachable one, entering and leaving. */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <ctype.h>
#include <sys/stat.h>
#include "vantage.h"

/* Where named namespaces live: iproute2's, and Docker's. */
static const char *const netns_dirs[] = { "/var/run/netns", "/run/netns", "/run/docker/netns" };

int vtg_netns_open(const char *spec)
{
	char path[512];
	int fd;

	if (!spec || !*spec)
		return -EINVAL;
	if (strchr(spec, '/')) {
		fd = open(spec, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	for (size_t i = 0; i < sizeof(netns_dirs) / sizeof(netns_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", netns_dirs[i], spec);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

int vtg_netns_open_pid(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

uint64_t vtg_netns_ino_fd(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return 0;
	return st.st_ino;
}

uint64_t vtg_netns_self_ino(void)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return 0;
	return st.st_ino;
}

static int add_ns(struct vtg_netns **arr, int *n, int *cap, uint64_t ino, const char *name,
		  const char *path)
{
	for (int i = 0; i < *n; i++)
		if ((*arr)[i].ino == ino)
			return 0;
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		struct vtg_netns *na = realloc(*arr, ncap * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = ncap;
	}
	struct vtg_netns *e = &(*arr)[(*n)++];

	memset(e, 0, sizeof(*e));
	e->ino = ino;
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->path, sizeof(e->path), "%s", path);
	return 0;
}

int vtg_netns_list(struct vtg_netns **out)
{
	struct vtg_netns *arr = NULL;
	int n = 0, cap = 0, err = 0;
	struct stat st;
	DIR *d;
	struct dirent *de;
	char path[512];

	/* The caller's own namespace first, so it is named "self" unless it has a name. */
	for (size_t i = 0; i < sizeof(netns_dirs) / sizeof(netns_dirs[0]); i++) {
		d = opendir(netns_dirs[i]);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", netns_dirs[i], de->d_name);
			if (stat(path, &st) || !S_ISREG(st.st_mode))
				continue; /* a mount point not bound to a namespace */
			/* An unbound file under /var/run/netns has the tmpfs inode; nsfs has dev 0:4 */
			err = add_ns(&arr, &n, &cap, st.st_ino, de->d_name, path);
			if (err)
				goto fail;
		}
		closedir(d);
	}
	if (!stat("/proc/1/ns/net", &st)) {
		err = add_ns(&arr, &n, &cap, st.st_ino, "init", "/proc/1/ns/net");
		if (err)
			goto fail;
	}
	d = opendir("/proc");
	if (d) {
		while ((de = readdir(d))) {
			char name[64];

			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
			if (stat(path, &st))
				continue;
			snprintf(name, sizeof(name), "pid:%.32s", de->d_name);
			err = add_ns(&arr, &n, &cap, st.st_ino, name, path);
			if (err) {
				closedir(d);
				goto fail;
			}
		}
		closedir(d);
	}
	*out = arr;
	return n;
fail:
	free(arr);
	return err;
}

int vtg_netns_enter(int nsfd, int *saved)
{
	int cur = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (cur < 0)
		return -errno;
	if (setns(nsfd, CLONE_NEWNET)) {
		int err = -errno;

		close(cur);
		return err;
	}
	*saved = cur;
	return 0;
}

int vtg_netns_leave(int saved)
{
	int err = 0;

	if (saved < 0)
		return 0;
	if (setns(saved, CLONE_NEWNET))
		err = -errno;
	close(saved);
	return err;
}
