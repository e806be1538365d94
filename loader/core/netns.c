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
#include <net/if.h>
#include <sys/stat.h>
#include "core/vtg_core.h"

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

	/* thread-self: a thread that entered another namespace (setns) asks about that one */
	if (stat("/proc/thread-self/ns/net", &st))
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
	if (!stat(vtg_netns_init_path(), &st)) {
		err = add_ns(&arr, &n, &cap, st.st_ino, "init", vtg_netns_init_path());
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

int vtg_netns_enter_spec(const char *spec, int *saved)
{
	int fd, err;

	*saved = -1;
	if (!spec)
		return 0;
	fd = vtg_netns_open(spec);
	if (fd < 0) {
		vtg_err("network namespace '%s' not found: %s", spec, strerror(-fd));
		return fd;
	}
	err = vtg_netns_enter(fd, saved);
	close(fd);
	if (err)
		vtg_err("cannot enter network namespace '%s': %s", spec, strerror(-err));
	return err;
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

/* ---- names of namespaces and of devices inside them, cached ---- */

struct ifname_ent {
	uint32_t ino, ifindex;
	char name[IF_NAMESIZE];
};
static struct ifname_ent *ifcache;
static int ifcache_n;
static struct vtg_netns *nscache;
static int nscache_n;
static double nscache_when;

static void refresh_ns_cache(bool force)
{
	double now = vtg_now_s();

	/* A miss triggers a rescan of /proc, at most twice a second. */
	if (!force && nscache && now - nscache_when < 0.5)
		return;
	free(nscache);
	nscache = NULL;
	nscache_n = vtg_netns_list(&nscache);
	if (nscache_n < 0)
		nscache_n = 0;
	nscache_when = now;
}

static const struct vtg_netns *find_ns(uint32_t ino)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < nscache_n; i++)
			if ((uint32_t)nscache[i].ino == ino)
				return &nscache[i];
		refresh_ns_cache(false);
	}
	return NULL;
}

const char *vtg_netns_name(uint32_t ino)
{
	const struct vtg_netns *ns = find_ns(ino);

	return ns ? ns->name : NULL;
}

const char *vtg_netns_ifname(uint32_t ino, uint32_t ifindex)
{
	const struct vtg_netns *ns;
	char name[IF_NAMESIZE] = "";
	int fd, saved;

	for (int i = 0; i < ifcache_n; i++)
		if (ifcache[i].ino == ino && ifcache[i].ifindex == ifindex)
			return ifcache[i].name;
	ns = find_ns(ino);
	if (!ns)
		return NULL;
	fd = open(ns->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (!vtg_netns_enter(fd, &saved)) {
		if (!if_indextoname(ifindex, name))
			name[0] = 0;
		vtg_netns_leave(saved);
	}
	close(fd);
	if (!name[0])
		return NULL;
	struct ifname_ent *na = realloc(ifcache, (ifcache_n + 1) * sizeof(*na));

	if (!na)
		return NULL;
	ifcache = na;
	ifcache[ifcache_n].ino = ino;
	ifcache[ifcache_n].ifindex = ifindex;
	memcpy(ifcache[ifcache_n].name, name, sizeof(name));
	return ifcache[ifcache_n++].name;
}

const char *vtg_netns_init_path(void)
{
	struct stat st;

	if (!stat("/proc/1/ns/net", &st))
		return "/proc/1/ns/net";
	return "/proc/2/ns/net";
}
