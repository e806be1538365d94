// SPDX-License-Identifier: GPL-2.0
/* vantage clean: removes what vantage attached or pinned, also after a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>
#include <sys/file.h>
#include "core/vtg_core.h"
#include "commands.h"
#include "agent/vtg_agent.h"

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
	jw_ku64(w, "netns", f->ns.ino);
	jw_kstr(w, "netns_name", f->ns.name);
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

struct clean_opts {
	bool force, dry_run;
};

struct clean {
	const struct clean_opts *o;
	struct live lv[256];
	int nlv;
	int removed, kept, failed, pins;
};

/* Detaches one attachment in its namespace; 0, or -1 (reported) on failure. */
static int detach_found(struct vtg_found *f)
{
	int fd, saved, err;

	fd = open(f->ns.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || vtg_netns_enter(fd, &saved)) {
		vtg_warn("network namespace %s went away before its %s could be removed", f->ns.name, f->at.ifname);
		if (fd >= 0)
			close(fd);
		return 1; /* gone already: neither removed nor an error */
	}
	err = vtg_detach(&f->at);
	vtg_netns_leave(saved);
	close(fd);
	if (err) {
		vtg_err("cannot remove %s from %s (netns %s): %s", vtg_hook_name(f->at.hook), f->at.ifname,
			f->ns.name, strerror(-err));
		return -1;
	}
	return 0;
}

/* Every attachment of vantage's: removed, or kept while its owner runs. */
static int clean_attachments(struct clean *c)
{
	struct vtg_found *at = NULL;
	int na = vtg_scan_attachments(&at);

	if (na < 0) {
		vtg_err("cannot list attachments: %s", strerror(-na));
		return -1;
	}
	for (int i = 0; i < na; i++) {
		struct vtg_found *f = &at[i];
		int rc;

		if (f->owner_alive && !c->o->force) {
			char why[80];

			snprintf(why, sizeof(why), "owner pid %d is running; --force removes it", (int)f->owner);
			say("kept", f, why);
			if (c->nlv < 256) {
				c->lv[c->nlv].netns = f->at.netns_ino;
				snprintf(c->lv[c->nlv++].ifname, sizeof(c->lv[0].ifname), "%s", f->at.ifname);
			}
			c->kept++;
			continue;
		}
		if (c->o->dry_run) {
			say("would-remove", f, NULL);
			continue;
		}
		rc = detach_found(f);
		if (rc < 0) {
			c->failed++;
		} else if (rc == 0) {
			say("removed", f, NULL);
			c->removed++;
		}
	}
	free(at);
	return 0;
}

/* Registry records whose attachment is gone (a namespace deleted, say), the pins, and
 * the lock files of the warm-start cache. */
static void clean_state(struct clean *c)
{
	struct vtg_attachment *reg = NULL;
	int nreg = vtg_registry_load(&reg);

	for (int i = 0; i < nreg; i++)
		if (c->o->force || !vtg_owner_alive(reg[i].pid))
			vtg_registry_remove(&reg[i]);
	free(reg);
	c->pins = remove_pins(c->o->force, c->lv, c->nlv, &c->failed);
	remove_cache_locks();
}

static void report(const struct clean *c)
{
	struct jw *w = vtg_jw_stdout();

	if (w) {
		jw_summary(w, "clean");
		jw_kbool(w, "dry_run", c->o->dry_run);
		jw_ku64(w, "removed", c->removed);
		jw_ku64(w, "kept", c->kept);
		jw_ku64(w, "pins_removed", c->pins);
		jw_ku64(w, "errors", c->failed);
		jw_obj_end(w);
		jw_free(w);
		return;
	}
	if (c->kept && !c->o->dry_run)
		printf("pins under %s kept while vantage processes are running\n", VTG_PIN_ROOT);
	printf("%d attachments removed, %d kept, %d pins removed%s\n", c->removed, c->kept, c->pins,
	       c->failed ? ", with errors" : "");
}

static int clean_run(void *p)
{
	struct clean c = { .o = p };

	if (vtg_env_setup())
		return VTG_EXIT_FAIL;
	if (clean_attachments(&c))
		return VTG_EXIT_FAIL;
	if (!c.o->dry_run)
		clean_state(&c);
	report(&c);
	return c.failed ? VTG_EXIT_FAIL : VTG_EXIT_OK;
}

static const struct cli_opt clean_table[] = {
	CLI_OPT("force", 0, CLI_FLAG, struct clean_opts, force,
		.help = "also remove attachments and pins of running vantage processes"),
	CLI_OPT("dry-run", 0, CLI_FLAG, struct clean_opts, dry_run, .help = "only say what would be removed"),
	CLI_END
};

const struct cli_cmd vtg_cmd_clean = {
	.name = "clean",
	.summary = "remove everything vantage attached or pinned (also after a crash)",
	.desc = "Removes every XDP program and TC filter of vantage's (programs named vtg_*) from\n"
		"every interface of every network namespace reachable from here, the clsact qdiscs\n"
		"vantage created, and every pin under " VTG_PIN_ROOT ". Attachments owned by a\n"
		"vantage process that is still running, and the pins of a running agent, are left\n"
		"to them unless --force is given. Removing the agent's pins detaches its tracing\n"
		"programs.\n",
	.opts = clean_table,
	.opts_size = sizeof(struct clean_opts),
	.run = clean_run,
	.more = "With -j: one {\"type\":\"clean\",\"action\":..,\"netns\":INODE,\"netns_name\":..,\"dev\":..,\n"
		"\"hook\":..,\"prog\":..,\"prog_id\":..} per attachment, then {\"type\":\"summary\",\n"
		"\"command\":\"clean\",\"dry_run\":..,\"removed\":N,\"kept\":N,\"pins_removed\":N,\"errors\":N},\n"
		"each with the envelope (v, type, ts_ns, time, source).\n"
		"--force and --dry-run have no short letters: -f is --first-ttl and -n is --netns\n"
		"in every command.\n",
	.examples = "  vantage clean              after a crash or kill -9\n"
		    "  vantage clean --dry-run\n"
		    "  vantage clean -j --force   everything, as JSON records\n",
};
