// SPDX-License-Identifier: GPL-2.0
/* vantage clean: removes what vantage attached or pinned, also after a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <getopt.h>
#include <dirent.h>
#include <errno.h>
#include <sys/file.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "agent/vtg_agent.h"

static const char help[] =
	"Usage: vantage [-j] clean [--force] [--dry-run]\n\n"
	"Removes every XDP program and TC filter of vantage's (programs named vtg_*) from\n"
	"every interface of every network namespace reachable from here, the clsact qdiscs\n"
	"vantage created, and every pin under " VTG_PIN_ROOT ". Attachments owned by a\n"
	"vantage process that is still running, and the pins of a running agent, are left\n"
	"to them unless --force is given. Removing the agent's pins detaches its tracing\n"
	"programs.\n\n"
	"Options:\n"
	"  -f, --force     also remove attachments of running vantage processes\n"
	"  -n, --dry-run   only say what would be removed\n\n"
	"EXAMPLES\n"
	"  vantage clean              after a crash or kill -9\n"
	"  vantage clean --dry-run\n";

/* One line per attachment handled: text, or a JSON record with -j. */
static void say(const char *action, const struct vtg_found *f, const char *why)
{
	struct jw *w = vtg_jw_stdout();

	if (!w) {
		printf("%-12s netns %s %s %s %s%s%s\n", action, f->ns.name, f->at.ifname,
		       vtg_hook_name(f->at.hook), f->prog_name, why ? ": " : "", why ? why : "");
		return;
	}
	jw_record(w, "clean", vtg_mono_ns());
	jw_kstr(w, "action", action);
	jw_kstr(w, "netns", f->ns.name);
	jw_kstr(w, "dev", f->at.ifname);
	jw_kstr(w, "hook", vtg_hook_name(f->at.hook));
	jw_kstr(w, "prog", f->prog_name);
	jw_ku64(w, "prog_id", f->at.prog_id);
	if (why)
		jw_kstr(w, "why", why);
	jw_obj_end(w);
	jw_free(w);
}

/* The running agent's pin directory (from its state file), or "". */
static void agent_pin_dir(char *buf, size_t len)
{
	char line[300], key[32], val[256];
	FILE *f;

	buf[0] = 0;
	if (!vtg_agent_running())
		return;
	f = fopen(VTG_AGENT_STATE, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%31s %255s", key, val) == 2 && !strcmp(key, "pin_dir"))
			snprintf(buf, len, "%s", val);
	fclose(f);
}

struct live {
	uint64_t netns;
	char ifname[16];
};

/* Is child (a pin directory "<netns inode>_<ifname>") used by a live owner? Children
 * named otherwise are kept while any live owner exists. */
static bool child_in_use(const char *child, const struct live *lv, int nlv)
{
	char *end;
	unsigned long long ino = strtoull(child, &end, 10);

	if (*end != '_')
		return nlv > 0;
	for (int i = 0; i < nlv; i++)
		if (lv[i].netns == ino && !strcmp(lv[i].ifname, end + 1))
			return true;
	return false;
}

/* Removes the pins under VTG_PIN_ROOT but those still in use: the running agent's
 * directory, and the per-interface pin directories of attachments whose owner runs.
 * Returns how many were removed. */
static int remove_pins(bool force, const struct live *lv, int nlv, int *failed)
{
	char agent[256], path[512], sub[1024];
	DIR *d = opendir(VTG_PIN_ROOT);
	struct dirent *de;
	int removed = 0, n;

	if (!d)
		return 0;
	agent_pin_dir(agent, sizeof(agent));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), VTG_PIN_ROOT "/%s", de->d_name);
		if (!force && agent[0] && !strncmp(agent, path, strlen(path)) &&
		    (agent[strlen(path)] == 0 || agent[strlen(path)] == '/')) {
			if (!vtg.json)
				printf("kept     %s: the running agent's (--force removes it)\n", path);
			continue;
		}
		DIR *cd = force ? NULL : opendir(path);

		if (cd) {
			/* A capability's directory: its children one by one. */
			struct dirent *ce;

			while ((ce = readdir(cd))) {
				if (!strcmp(ce->d_name, ".") || !strcmp(ce->d_name, "..") ||
				    child_in_use(ce->d_name, lv, nlv))
					continue;
				snprintf(sub, sizeof(sub), "%s/%s", path, ce->d_name);
				n = vtg_rm_tree(sub);
				if (n < 0) {
					vtg_err("cannot remove %s: %s", sub, strerror(-n));
					(*failed)++;
				} else {
					removed += n;
				}
			}
			closedir(cd);
			rmdir(path); /* only if nothing is left in it */
			continue;
		}
		n = vtg_rm_tree(path);
		if (n < 0) {
			vtg_err("cannot remove %s: %s", path, strerror(-n));
			(*failed)++;
			continue;
		}
		removed += n;
	}
	closedir(d);
	rmdir(VTG_PIN_ROOT); /* only if nothing is left in it */
	return removed;
}

/* Lock files of warm-start cache entries that are gone and that nobody holds. */
static void remove_cache_locks(void)
{
	DIR *d = opendir(VTG_REGISTRY_DIR);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char lock[512], entry[512], kind[32];
		unsigned long long key;
		int fd;

		if (sscanf(de->d_name, "cache-%31[a-z]-%16llx.lock", kind, &key) != 2)
			continue;
		snprintf(entry, sizeof(entry), VTG_PIN_ROOT "/cache/%s-%016llx", kind, key);
		if (!access(entry, F_OK))
			continue;
		snprintf(lock, sizeof(lock), VTG_REGISTRY_DIR "/%s", de->d_name);
		fd = open(lock, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!flock(fd, LOCK_EX | LOCK_NB))
			unlink(lock);
		close(fd);
	}
	closedir(d);
}

int cmd_clean(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	bool force = false, dry = false;
	struct vtg_found *at = NULL;
	struct live lv[256];
	int nlv = 0;
	int opt, na, removed = 0, kept = 0, failed = 0, pins = 0;

	if (!vtg_help_requested(argc, argv, help))
		return VTG_EXIT_OK;
	while ((opt = getopt_long(argc, argv, "fn", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			force = true;
			break;
		case 'n':
			dry = true;
			break;
		default:
			return vtg_usage_err("clean", "unknown option or missing value: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vtg_usage_err("clean", "unexpected argument '%s'", argv[optind]);
	if (vtg_env_setup())
		return VTG_EXIT_FAIL;

	na = vtg_scan_attachments(&at);
	if (na < 0) {
		vtg_err("cannot list attachments: %s", strerror(-na));
		return VTG_EXIT_FAIL;
	}
	for (int i = 0; i < na; i++) {
		struct vtg_found *f = &at[i];
		int fd, saved, err;

		if (f->owner_alive && !force) {
			char why[80];

			snprintf(why, sizeof(why), "owner pid %d is running; --force removes it", (int)f->owner);
			say("kept", f, why);
			if (nlv < 256) {
				lv[nlv].netns = f->at.netns_ino;
				snprintf(lv[nlv++].ifname, sizeof(lv[0].ifname), "%s", f->at.ifname);
			}
			kept++;
			continue;
		}
		if (dry) {
			say("would-remove", f, NULL);
			continue;
		}
		fd = open(f->ns.path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || vtg_netns_enter(fd, &saved)) {
			vtg_warn("network namespace %s went away before its %s could be removed", f->ns.name,
				 f->at.ifname);
			if (fd >= 0)
				close(fd);
			continue;
		}
		err = vtg_detach(&f->at);
		vtg_netns_leave(saved);
		close(fd);
		if (err) {
			vtg_err("cannot remove %s from %s (netns %s): %s", vtg_hook_name(f->at.hook),
				f->at.ifname, f->ns.name, strerror(-err));
			failed++;
			continue;
		}
		say("removed", f, NULL);
		removed++;
	}
	free(at);

	/* Registry records whose attachment is gone (a namespace deleted, say) are dropped. */
	if (!dry) {
		struct vtg_attachment *reg = NULL;
		int nreg = vtg_registry_load(&reg);

		for (int i = 0; i < nreg; i++)
			if (force || !vtg_owner_alive(reg[i].pid))
				vtg_registry_remove(&reg[i]);
		free(reg);
		pins = remove_pins(force, lv, nlv, &failed);
		remove_cache_locks();
	}
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_record(w, "clean_summary", vtg_mono_ns());
		jw_ku64(w, "removed", removed);
		jw_ku64(w, "kept", kept);
		jw_ku64(w, "pins_removed", pins);
		jw_ku64(w, "errors", failed);
		jw_obj_end(w);
		jw_free(w);
	} else {
		if (kept && !dry)
			printf("pins under %s kept while vantage processes are running\n", VTG_PIN_ROOT);
		printf("%d attachments removed, %d kept, %d pins removed%s\n", removed, kept, pins,
		       failed ? ", with errors" : "");
	}
	return failed ? VTG_EXIT_FAIL : VTG_EXIT_OK;
}
