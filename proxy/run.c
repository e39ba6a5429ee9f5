/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd run [--allow E]... [--allow-file F]... [--preset P]... [--audit]
 *             [--log FILE] -- CMD [ARG]...
 *
 * CMD runs in a fresh network namespace whose only way out is a veth pair
 * to the calling namespace, where a child of this process runs egressd in
 * gateway mode for that veth alone (FORWARD hook, its own nft table and
 * queue number) and the traffic it allows is masqueraded. This process stays
 * root to tear everything down afterwards, also on Ctrl-C and SIGTERM; the
 * exit status of CMD is passed through (125: the run itself failed).
 *
 * Several runs at once: each takes a free slot (flock on
 * /run/egressd/run/slot-N.lock) that names its table, queue, veth and /30.
 *
 * No helper programs: links, addresses and routes are made with rtnetlink
 * (nfq/rtnl.c), the tables with libnftables (nfq/ruleset.c). What was changed in
 * the calling namespace is undone when CMD ends, however it ends: the veth
 * and both tables go, and net.ipv4.ip_forward gets back the value it had
 * before the first of the runs that share the namespace (the last one to
 * end restores it; see run_forward_on).
 *
 *   calling namespace                       CMD's namespace
 *   egr<N>h  NET+4N+1/30  <---- veth ---->  egr<N>c  NET+4N+2/30
 *   DNS listener NET+4N+1:(20000+N)          /etc/resolv.conf -> NET+4N+1 (bind mount)
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "egressd.h"
#include "../nfq/rtnl.h"
#include "../nfq/ruleset.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#define RUN_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RUN_LSAN 1
#endif
#endif
#ifdef RUN_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define RUN_DIR "/run/egressd/run"
#define RUN_SLOTS 64                  /* /30s in a /24 */
#define RUN_NET_DEFAULT "100.64.77.0" /* shared address space (RFC 6598), a /24 of it */
#define RUN_QUEUE_BASE 30000
#define RUN_DNS_PORT_BASE 20000
#define RUN_EXIT_FAILED 125 /* the run itself failed (as env(1) and timeout(1) say it) */
#define RUN_GRACE_MS 5000   /* after a signal we passed on, CMD's time to exit before SIGKILL */
#define RUN_TICK_MS 50
#define RUN_PREFIX 30 /* each run's veth network */
#define RUN_IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define RUN_SYSCTL_LOCK RUN_DIR "/sysctl.lock" /* serialises the ip_forward records */

struct run_slot {
	pid_t supervisor; /* the process that owns the slot (children check their parent) */
	int n;
	int lock_fd;
	char dir[64];
	char table[32];
	char nat_table[32];
	char veth_host[16], veth_child[16];
	char host_addr[INET_ADDRSTRLEN], child_addr[INET_ADDRSTRLEN], net_addr[INET_ADDRSTRLEN];
	struct addr host, child, net;
	bool forward_set; /* run_forward_on wrote ip_forward: run_forward_restore undoes it */
};

static void run_usage(FILE *f)
{
	fprintf(f,
	        "usage: egressd run [--allow ENTRY]... [--allow-file FILE]... [--preset NAME]...\n"
	        "                   [--audit] [--log FILE] -- CMD [ARG]...\n"
	        "\n"
	        "Run CMD in a fresh network namespace whose only way out is through egressd.\n"
	        "\n"
	        "  --allow ENTRY       allow an allowlist entry (name, *.name, name:80,443, "
	        "CIDR:port)\n"
	        "  --allow-file FILE   allow the entries of an allowlist file\n"
	        "  --preset NAME       allow a shipped preset (debian, pypi, npm, trivy, ...)\n"
	        "  --audit             deny nothing; log what would have been denied\n"
	        "  --log FILE          write the JSON event log to FILE (default: a summary only)\n"
	        "\n"
	        "The exit status is CMD's (125 if the run itself failed). Denied flows are\n"
	        "summarised on stderr at the end. SIGTERM, SIGINT or SIGHUP sent to egressd run\n"
	        "is passed to CMD, which gets 5 s to exit (a second signal: at once) before\n"
	        "SIGKILL; processes CMD leaves in its namespace are killed when it exits.\n"
	        "Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN); under sudo, CMD runs as the\n"
	        "invoking user. Environment: EGRESSD_RUN_NET=A.B.C.0 picks the /24 the per-run\n"
	        "/30s come from (default " RUN_NET_DEFAULT ").\n"
	        "\n"
	        "example: sudo egressd run --preset pypi -- pip download requests\n");
}

static int run_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -errno;
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	int err = (w == (ssize_t)len) ? 0 : -EIO;
	if (close(fd) == -1 && err == 0)
		err = -errno;
	return err;
}

static int run_slot_take(struct run_slot *s)
{
	const char *net = getenv("EGRESSD_RUN_NET");
	struct in_addr base;
	if (!net || !*net)
		net = RUN_NET_DEFAULT;
	if (inet_pton(AF_INET, net, &base) != 1 || (ntohl(base.s_addr) & 0xff) != 0) {
		fprintf(stderr, "egressd run: EGRESSD_RUN_NET=%s: not an A.B.C.0 address\n", net);
		return -1;
	}
	if (mkdir("/run/egressd", 0755) == -1 && errno != EEXIST)
		goto fail_dir;
	if (mkdir(RUN_DIR, 0755) == -1 && errno != EEXIST)
		goto fail_dir;
	for (int n = 0; n < RUN_SLOTS; n++) {
		char lock[96];
		snprintf(lock, sizeof lock, RUN_DIR "/slot-%d.lock", n);
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd == -1)
			goto fail_dir;
		if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
			close(fd);
			continue;
		}
		s->n = n;
		s->lock_fd = fd;
		snprintf(s->dir, sizeof s->dir, RUN_DIR "/slot-%d", n);
		snprintf(s->table, sizeof s->table, "egressd_run%d", n);
		snprintf(s->nat_table, sizeof s->nat_table, "egressd_runnat%d", n);
		snprintf(s->veth_host, sizeof s->veth_host, "egr%dh", n);
		snprintf(s->veth_child, sizeof s->veth_child, "egr%dc", n);
		uint32_t b = ntohl(base.s_addr) + 4u * (uint32_t)n;
		struct in_addr a;
		a.s_addr = htonl(b);
		inet_ntop(AF_INET, &a, s->net_addr, sizeof s->net_addr);
		a.s_addr = htonl(b + 1);
		inet_ntop(AF_INET, &a, s->host_addr, sizeof s->host_addr);
		a.s_addr = htonl(b + 2);
		inet_ntop(AF_INET, &a, s->child_addr, sizeof s->child_addr);
		if (!addr_parse(s->net_addr, &s->net) || !addr_parse(s->host_addr, &s->host) ||
		    !addr_parse(s->child_addr, &s->child)) {
			fprintf(stderr, "egressd run: slot %d: bad addresses from %s\n", n, net);
			close(fd);
			return -1;
		}
		if (mkdir(s->dir, 0755) == -1 && errno != EEXIST)
			goto fail_dir;
		return 0;
	}
	fprintf(stderr, "egressd run: all %d run slots are busy\n", RUN_SLOTS);
	return -1;
fail_dir:
	fprintf(stderr, "egressd run: %s: %s\n", RUN_DIR, strerror(errno));
	return -1;
}

/* The slot's file of that name. */
static void run_slot_path(char *buf, size_t len, int n, const char *file)
{
	snprintf(buf, len, RUN_DIR "/slot-%d/%s", n, file);
}

/*
 * Remove the slot's veth and tables: what this run made, or what a previous
 * run of the slot left (crash). Quietly; 0 when none is left, else -1 (said).
 */
static int run_slot_cleanup(const struct run_slot *s, bool verbose)
{
	char err[256];
	int rc = 0, e = rtnl_link_del(s->veth_host);
	if (e != 0 && e != -ENODEV) {
		if (verbose)
			fprintf(stderr, "egressd run: cannot delete %s: %s\n", s->veth_host,
			        strerror(-e));
		rc = -1;
	}
	if (rules_delete(s->table, err, sizeof err) != 0) {
		if (verbose)
			fprintf(stderr, "egressd run: table %s: %s\n", s->table, err);
		rc = -1;
	}
	if (rules_delete_run_nat(s->nat_table, err, sizeof err) != 0) {
		if (verbose)
			fprintf(stderr, "egressd run: table %s: %s\n", s->nat_table, err);
		rc = -1;
	}
	return rc;
}

/* ------------------------------------------------------------ ip_forward */

/*
 * Forwarding is on while any run of this network namespace needs it and back
 * to what it was when the last one ends. Each run records, in its slot
 * directory, "<netns inode> <value before>" where the value before is the
 * one an earlier run still going in the same namespace recorded (it saw the
 * original), or else the current one. All of it under RUN_SYSCTL_LOCK.
 */
static ino_t run_netns_self(void)
{
	struct stat st;
	return stat("/proc/self/ns/net", &st) == -1 ? 0 : st.st_ino;
}

static int run_sysctl_lock(void)
{
	int fd = open(RUN_SYSCTL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Is slot n held by a run (its lock taken)? Never our own slot. */
static bool run_slot_busy(int n)
{
	char lock[96];
	snprintf(lock, sizeof lock, RUN_DIR "/slot-%d.lock", n);
	int fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd == -1)
		return false;
	bool busy = flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	close(fd); /* releases the lock if we took it */
	return busy;
}

/* Slot n's record: 0 and its netns and value, or -1. */
static int run_forward_record(int n, ino_t *ns, char *val, size_t vlen)
{
	char path[128], line[64];
	unsigned long long ino;
	char v[8];
	run_slot_path(path, sizeof path, n, "ip_forward");
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	bool ok = fgets(line, sizeof line, f) && sscanf(line, "%llu %7s", &ino, v) == 2;
	fclose(f);
	if (!ok || (v[0] != '0' && v[0] != '1') || v[1] != '\0')
		return -1;
	*ns = (ino_t)ino;
	snprintf(val, vlen, "%s", v);
	return 0;
}

/* A run other than slot `self` going on in netns ns: its recorded value (0), or -1. */
static int run_forward_other(int self, ino_t ns, char *val, size_t vlen)
{
	for (int m = 0; m < RUN_SLOTS; m++) {
		ino_t ons;
		char v[8];
		if (m == self || run_forward_record(m, &ons, v, sizeof v) != 0 || ons != ns ||
		    !run_slot_busy(m))
			continue;
		snprintf(val, vlen, "%s", v);
		return 0;
	}
	return -1;
}

static int run_forward_on(struct run_slot *s)
{
	char cur[16] = "", old[8], path[128], rec[64];
	ino_t ns = run_netns_self();
	int lock = run_sysctl_lock(), rc = -1;
	if (lock == -1 || ns == 0) {
		fprintf(stderr, "egressd run: %s: %s\n", RUN_SYSCTL_LOCK, strerror(errno));
		if (lock != -1)
			close(lock);
		return -1;
	}
	FILE *f = fopen(RUN_IP_FORWARD, "re");
	if (!f || !fgets(cur, sizeof cur, f)) {
		fprintf(stderr, "egressd run: %s: %s\n", RUN_IP_FORWARD, strerror(errno));
		goto out;
	}
	if (run_forward_other(s->n, ns, old, sizeof old) != 0)
		snprintf(old, sizeof old, "%c", cur[0] == '0' ? '0' : '1');
	run_slot_path(path, sizeof path, s->n, "ip_forward");
	snprintf(rec, sizeof rec, "%llu %s\n", (unsigned long long)ns, old);
	if (run_write_file(path, rec) != 0) {
		fprintf(stderr, "egressd run: %s: cannot write\n", path);
		goto out;
	}
	s->forward_set = true; /* from here on, undone at the end */
	if (run_write_file(RUN_IP_FORWARD, "1\n") != 0) {
		fprintf(stderr, "egressd run: cannot enable %s\n", RUN_IP_FORWARD);
		goto out;
	}
	rc = 0;
out:
	if (f)
		fclose(f);
	close(lock);
	return rc;
}

/* Undo run_forward_on: the value before, unless another run here still needs forwarding. */
static void run_forward_restore(struct run_slot *s)
{
	char path[128], old[8], other[8];
	ino_t ns = 0;
	if (!s->forward_set)
		return;
	s->forward_set = false;
	int lock = run_sysctl_lock();
	if (lock == -1) {
		fprintf(stderr, "egressd run: %s: %s; %s left as it is\n", RUN_SYSCTL_LOCK,
		        strerror(errno), RUN_IP_FORWARD);
		return;
	}
	run_slot_path(path, sizeof path, s->n, "ip_forward");
	int have = run_forward_record(s->n, &ns, old, sizeof old);
	unlink(path);
	if (have == 0 && ns == run_netns_self() &&
	    run_forward_other(s->n, ns, other, sizeof other) != 0) {
		snprintf(path, sizeof path, "%s\n", old);
		if (run_write_file(RUN_IP_FORWARD, path) != 0)
			fprintf(stderr, "egressd run: cannot restore %s to %s\n", RUN_IP_FORWARD,
			        old);
	}
	close(lock);
}

/*
 * The child: wait until the parent made the veth, configure its side, point
 * DNS at egressd, wait for "ready", drop to the invoking user, exec CMD.
 * Exit 125 before CMD: the run could not be set up (the parent says why).
 */
static void run_child_main(const struct run_slot *s, int go_fd, int veth_fd, char **cmd)
{
	char c;
	/* 1. veth exists (the parent writes a byte; EOF alone: it failed). */
	if (read(veth_fd, &c, 1) != 1)
		_exit(RUN_EXIT_FAILED);
	close(veth_fd);
	int e;
	const char *what = "lo up";
	if ((e = rtnl_link_up("lo")) == 0 &&
	    (what = "address", e = rtnl_addr_add(s->veth_child, &s->child, RUN_PREFIX)) == 0 &&
	    (what = "link up", e = rtnl_link_up(s->veth_child)) == 0)
		what = "default route", e = rtnl_route_default(&s->host);
	if (e != 0) {
		fprintf(stderr, "egressd run: cannot configure the namespace (%s: %s)\n", what,
		        strerror(-e));
		_exit(RUN_EXIT_FAILED);
	}
	/* DNS: a private resolv.conf in this mount namespace. */
	char resolv[128], text[64];
	snprintf(resolv, sizeof resolv, "%s/resolv.conf", s->dir);
	snprintf(text, sizeof text, "nameserver %s\n", s->host_addr);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == -1 ||
	    run_write_file(resolv, text) != 0 ||
	    mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) == -1) {
		fprintf(stderr, "egressd run: cannot set up DNS: %s\n", strerror(errno));
		_exit(RUN_EXIT_FAILED);
	}
	/* 2. egressd ready (EOF without the byte: it did not start; the parent says why). */
	if (read(go_fd, &c, 1) != 1)
		_exit(RUN_EXIT_FAILED);
	close(go_fd);
	/* Run as the invoking user under sudo. */
	const char *sudo_uid = getenv("SUDO_UID"), *sudo_gid = getenv("SUDO_GID");
	if (getuid() == 0 && sudo_uid && sudo_gid) {
		char *end;
		unsigned long uid = strtoul(sudo_uid, &end, 10), gid;
		if (*end == '\0' && uid > 0) {
			gid = strtoul(sudo_gid, &end, 10);
			const char *user = getenv("SUDO_USER");
			if (*end != '\0' ||
			    (user ? initgroups(user, (gid_t)gid) : setgroups(0, NULL)) == -1 ||
			    setgid((gid_t)gid) == -1 || setuid((uid_t)uid) == -1) {
				fprintf(stderr, "egressd run: cannot become uid %lu: %s\n", uid,
				        strerror(errno));
				_exit(RUN_EXIT_FAILED);
			}
		}
	}
	/* Should the supervisor die (SIGKILL), CMD goes too (cleared by the uid change: set after
	 * it). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != s->supervisor)
		_exit(RUN_EXIT_FAILED);
	execvp(cmd[0], cmd);
	fprintf(stderr, "egressd run: %s: %s\n", cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* egressd itself, in its own process: it drops its privileges, the supervisor keeps them. */
static void run_daemon_main(const struct run_slot *s, struct conf *conf, struct policy *policy,
                            int ready_fd)
{
	/* Not in the terminal's process group: Ctrl-C goes to CMD, whose exit stops us. */
	if (setpgid(0, 0) == -1 || prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
	    getppid() != s->supervisor)
		_exit(1);
	struct daemon_opts dopts = {
	    .conf_path = NULL,
	    .apply_rules = true,
	    .table = s->table,
	    .ready_fd = ready_fd,
	    .stop_flag = NULL,
	    /* CMD reaches this namespace's own addresses only for DNS to egressd */
	    .inside_local_dns_only = true,
	};
	int rc = daemon_run(conf, policy, &dopts) == 0 ? 0 : 1;
#ifdef RUN_LSAN
	/* _exit skips LeakSanitizer's atexit check: run it here (exits non-zero
	 * with its report on stderr if anything leaked). */
	__lsan_do_leak_check();
#endif
	_exit(rc);
}

/* Denied flows from the event log (from byte offset `from`), summarised on stderr. */
static void run_summary(const char *log_path, off_t from, bool audit, int status)
{
	FILE *f = fopen(log_path, "r");
	if (!f)
		return;
	if (from > 0 && fseeko(f, from, SEEK_SET) == -1) {
		fclose(f);
		return;
	}
	struct json_object *agg = json_object_new_object();
	unsigned denied = 0;
	char *line = NULL;
	size_t cap = 0;
	while (agg && getline(&line, &cap, f) != -1) {
		struct json_object *o = json_tokener_parse(line), *v;
		if (!o)
			continue;
		const char *ev =
		    json_object_object_get_ex(o, "event", &v) ? json_object_get_string(v) : "";
		if (strcmp(ev, "deny") == 0 || strcmp(ev, "dns_deny") == 0) {
			char key[512];
			const char *what = "", *reason = "";
			int port = 0;
			if (json_object_object_get_ex(o, "name", &v) && *json_object_get_string(v))
				what = json_object_get_string(v);
			else if (json_object_object_get_ex(o, "qname", &v))
				what = json_object_get_string(v);
			else if (json_object_object_get_ex(o, "dst", &v))
				what = json_object_get_string(v);
			if (json_object_object_get_ex(o, "dport", &v))
				port = json_object_get_int(v);
			if (json_object_object_get_ex(o, "reason", &v))
				reason = json_object_get_string(v);
			if (port)
				snprintf(key, sizeof key, "%s %s:%d (%s)", ev, what, port, reason);
			else
				snprintf(key, sizeof key, "%s %s (%s)", ev, what, reason);
			/* Identical repeats come as one line with their number in "count". */
			int count = 1;
			if (json_object_object_get_ex(o, "count", &v) && json_object_get_int(v) > 1)
				count = json_object_get_int(v);
			denied += (unsigned)count;
			struct json_object *prev;
			if (json_object_object_get_ex(agg, key, &prev))
				count += json_object_get_int(prev);
			json_object_object_add(agg, key, json_object_new_int(count));
		}
		json_object_put(o);
	}
	free(line);
	fclose(f);
	const char *verb = audit ? "would have been denied (audit: nothing was blocked)" : "denied";
	if (denied == 0) {
		fprintf(stderr, "egressd run: no flow %s; exit status %d\n",
		        audit ? "would have been denied (audit)" : "denied", status);
	} else {
		fprintf(stderr, "egressd run: %u %s (exit status %d):\n", denied, verb, status);
		json_object_object_foreach(agg, key, val)
		{
			fprintf(stderr, "  %5d  %s\n", json_object_get_int(val), key);
		}
	}
	json_object_put(agg);
}

/* The inode of pid's network namespace (0 if it is gone). */
static ino_t run_netns_of(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
	return stat(path, &st) == -1 ? 0 : st.st_ino;
}

/*
 * CMD is gone, but what it started may still run in its namespace (a
 * background job, a daemon that double-forked). SIGKILL every process whose
 * network namespace is CMD's, until a scan finds none (bounded).
 */
static void run_kill_leftovers(ino_t netns)
{
	if (netns == 0)
		return;
	for (int round = 0; round < 100; round++) {
		DIR *d = opendir("/proc");
		if (!d)
			return;
		unsigned found = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			char *end;
			long pid = strtol(e->d_name, &end, 10);
			if (*end != '\0' || pid <= 1 || pid == (long)getpid())
				continue;
			if (run_netns_of((pid_t)pid) == netns) {
				kill((pid_t)pid, SIGKILL);
				found++;
			}
		}
		closedir(d);
		if (found == 0)
			return;
		usleep(20 * 1000); /* let the killed ones go before the next scan */
	}
	fprintf(stderr, "egressd run: processes left in the command's namespace\n");
}

static uint64_t run_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait grace_ms for pid to exit; then SIGKILL and reap. Its wait status. */
static int run_reap(pid_t pid, int grace_ms)
{
	int st = 0;
	for (int waited = 0;; waited += 10) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		if (w == -1 && errno != EINTR)
			return 0;
		if (waited >= grace_ms)
			break;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return 0;
	return st;
}

static int run_exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return RUN_EXIT_FAILED;
}

/*
 * The supervisor (this process, root throughout) and its two children:
 *
 *   supervisor --fork--> CMD child: unshare(net, mount), waits for the veth,
 *       |                configures its side, waits for "ready", exec CMD
 *       +------fork--> egressd (gateway mode for the veth, own table and queue,
 *                      drops privileges, own process group)
 *
 * The supervisor blocks SIGCHLD, SIGINT, SIGTERM, SIGHUP and takes them with
 * sigtimedwait: a terminating signal is passed to CMD, which gets
 * RUN_GRACE_MS before SIGKILL. When CMD exits: its namespace's leftovers are
 * killed, egressd is stopped, the veth, the tables and the files go, the
 * summary is printed, and CMD's exit status is ours.
 */
int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"allow", required_argument, NULL, 'a'},
	    {"allow-file", required_argument, NULL, 'f'},
	    {"preset", required_argument, NULL, 'p'},
	    {"audit", no_argument, NULL, 'A'},
	    {"log", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct diag d = {0};
	struct policy_builder *b = policy_builder_new();
	struct conf *conf = conf_new_defaults();
	struct policy *policy = NULL;
	const char *log_path = NULL;
	bool audit = false;
	unsigned nallow = 0;
	int opt, ret = RUN_EXIT_FAILED;
	struct run_slot s = {.lock_fd = -1};
	int veth_pipe[2] = {-1, -1}, go_pipe[2] = {-1, -1}, ns_pipe[2] = {-1, -1};
	pid_t cmd_pid = -1, daemon_pid = -1;
	sigset_t sigs, oldmask;
	char own_log[128] = "";

	if (!b || !conf) {
		fprintf(stderr, "egressd run: out of memory\n");
		goto out;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			allowlist_add_line(b, optarg, "--allow", ++nallow, &d);
			break;
		case 'f':
			allowlist_add_file(b, optarg, &d);
			break;
		case 'p':
			allowlist_add_preset(b, optarg, &d);
			break;
		case 'A':
			audit = true;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 'h':
			run_usage(stdout);
			ret = 0;
			goto out;
		default:
			run_usage(stderr);
			ret = 2;
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "egressd run: no command given (put it after --)\n");
		run_usage(stderr);
		ret = 2;
		goto out;
	}
	diag_print(&d, stderr);
	if (d.errors) {
		fprintf(stderr, "egressd run: %u error(s) in the allowlist; nothing was run\n",
		        d.errors);
		ret = 2;
		goto out;
	}
	char **cmd = argv + optind;

	/* From here on, signals are taken in the loop below, never asynchronously. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, &oldmask);

	if (run_slot_take(&s) != 0)
		goto out;
	s.supervisor = getpid();
	run_slot_cleanup(&s, false);
	char rec[128];
	run_slot_path(rec, sizeof rec, s.n, "ip_forward");
	unlink(rec); /* a crashed run's record: never taken for this one's */

	/* The daemon's configuration: gateway mode for our veth only. */
	snprintf(own_log, sizeof own_log, "%s/events.jsonl", s.dir);
	unlink(own_log);
	conf->mode = CONF_MODE_GATEWAY;
	conf->enforce = !audit;
	conf->engine.enforce = !audit;
	snprintf(conf->inside, sizeof conf->inside, "%s", s.veth_host);
	conf->queue_num = RUN_QUEUE_BASE + (unsigned)s.n;
	conf->queue_threads = 1;
	conf->ndns_listen = 1;
	addr_parse(s.host_addr, &conf->dns_listen[0].addr);
	conf->dns_listen[0].port = (uint16_t)(RUN_DNS_PORT_BASE + s.n);
	conf->metrics_enabled = false;
	conf->log_level = CONF_LOG_ALL;
	free(conf->log_file);
	conf->log_file = strdup(log_path ? log_path : own_log);
	if (!conf->log_file)
		goto out_slot;
	/* The summary reads what this run appends to the log, not what was there. */
	struct stat lst;
	off_t log_from =
	    log_path && stat(log_path, &lst) == 0 && S_ISREG(lst.st_mode) ? lst.st_size : 0;

	policy = policy_builder_finish(b);
	b = NULL;
	if (!policy) {
		fprintf(stderr, "egressd run: out of memory\n");
		goto out_slot;
	}

	if (pipe2(veth_pipe, O_CLOEXEC) == -1 || pipe2(go_pipe, O_CLOEXEC) == -1 ||
	    pipe2(ns_pipe, O_CLOEXEC) == -1) {
		fprintf(stderr, "egressd run: pipe: %s\n", strerror(errno));
		goto out_slot;
	}
	/* CMD's child: its own network and mount namespaces, waiting for us. */
	cmd_pid = fork();
	if (cmd_pid == -1) {
		fprintf(stderr, "egressd run: fork: %s\n", strerror(errno));
		goto out_slot;
	}
	if (cmd_pid == 0) {
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		close(veth_pipe[1]);
		close(go_pipe[1]);
		close(ns_pipe[0]);
		if (unshare(CLONE_NEWNET | CLONE_NEWNS) == -1) {
			fprintf(stderr, "egressd run: unshare: %s\n", strerror(errno));
			_exit(RUN_EXIT_FAILED);
		}
		if (write(ns_pipe[1], "n", 1) != 1)
			_exit(RUN_EXIT_FAILED);
		close(ns_pipe[1]);
		run_child_main(&s, go_pipe[0], veth_pipe[0], cmd);
	}
	close(veth_pipe[0]);
	close(go_pipe[0]);
	close(ns_pipe[1]);
	veth_pipe[0] = go_pipe[0] = ns_pipe[1] = -1;
	char c;
	bool ok = read(ns_pipe[0], &c, 1) == 1;
	ino_t cmd_netns = ok ? run_netns_of(cmd_pid) : 0;
	ok = ok && cmd_netns != 0;

	/* veth to the child's namespace, NAT for what egressd lets through. */
	if (ok) {
		char err[512];
		int e;
		const char *what = "veth";
		if ((e = rtnl_veth_add(s.veth_host, s.veth_child, cmd_pid)) == 0 &&
		    (what = "address", e = rtnl_addr_add(s.veth_host, &s.host, RUN_PREFIX)) == 0)
			what = "link up", e = rtnl_link_up(s.veth_host);
		if (e != 0) {
			fprintf(stderr, "egressd run: %s %s: %s\n", what, s.veth_host,
			        strerror(-e));
			ok = false;
		} else if (rules_apply_run_nat(s.nat_table, &s.net, RUN_PREFIX, s.veth_host, err,
		                               sizeof err) != 0) {
			fprintf(stderr, "egressd run: table %s: %s\n", s.nat_table, err);
			ok = false;
		} else if (run_forward_on(&s) != 0) {
			ok = false;
		}
	}
	/* Tell the child the veth is there (EOF without a byte: give up). */
	if (ok && write(veth_pipe[1], "v", 1) != 1)
		ok = false;
	close(veth_pipe[1]);
	veth_pipe[1] = -1;
	if (!ok) {
		fprintf(stderr, "egressd run: cannot set up the network for the command\n");
	} else {
		daemon_pid = fork();
		if (daemon_pid == -1)
			fprintf(stderr, "egressd run: fork: %s\n", strerror(errno));
		if (daemon_pid == 0) {
			sigprocmask(SIG_SETMASK, &oldmask, NULL);
			close(ns_pipe[0]);
			run_daemon_main(&s, conf, policy, go_pipe[1]);
		}
	}
	/* egressd's copies are its own now; without egressd, CMD's child sees EOF. */
	close(go_pipe[1]);
	go_pipe[1] = -1;
	policy_free(policy);
	policy = NULL;
	conf_free(conf);
	conf = NULL;

	/*
	 * Until CMD exits. A terminating signal sent to us (kill) is passed on to
	 * CMD, which then has RUN_GRACE_MS; a second one, or the end of the grace,
	 * is SIGKILL. One from the terminal (Ctrl-C) reached CMD's process group
	 * already: not sent twice. egressd dying ends the run (fail closed).
	 */
	int cmd_st = 0, daemon_st = 0;
	bool cmd_done = false, daemon_done = daemon_pid <= 0, failed = !ok || daemon_pid <= 0;
	bool passed_on = false;
	uint64_t kill_at = 0; /* monotonic ms; 0: no SIGKILL scheduled */
	if (failed)
		kill(cmd_pid, SIGKILL);
	while (!cmd_done) {
		struct timespec tick = {0, RUN_TICK_MS * 1000000L};
		siginfo_t si;
		int sig = sigtimedwait(&sigs, &si, &tick);
		if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && si.si_code != SI_KERNEL) {
			kill(cmd_pid, passed_on ? SIGKILL : sig);
			if (!passed_on)
				kill_at = run_now_ms() + RUN_GRACE_MS;
			passed_on = true;
		}
		pid_t w = waitpid(cmd_pid, &cmd_st, WNOHANG);
		if (w == cmd_pid || (w == -1 && errno == ECHILD))
			cmd_done = true;
		if (!daemon_done && waitpid(daemon_pid, &daemon_st, WNOHANG) == daemon_pid) {
			daemon_done = true;
			if (!cmd_done) {
				fprintf(stderr,
				        "egressd run: egressd stopped (status %d); stopping the "
				        "command\n",
				        run_exit_code(daemon_st));
				failed = true;
				kill(cmd_pid, SIGTERM);
				kill_at = run_now_ms() + RUN_GRACE_MS;
			}
		}
		if (!cmd_done && kill_at && run_now_ms() >= kill_at) {
			kill(cmd_pid, SIGKILL);
			kill_at = 0;
		}
	}
	ret = failed ? RUN_EXIT_FAILED : run_exit_code(cmd_st);
	run_kill_leftovers(cmd_netns);
	if (!daemon_done) {
		kill(daemon_pid, SIGTERM);
		daemon_st = run_reap(daemon_pid, RUN_GRACE_MS);
		if (run_exit_code(daemon_st) != 0)
			fprintf(stderr, "egressd run: egressd stopped with an error (status %d)\n",
			        run_exit_code(daemon_st));
	}
	run_slot_cleanup(&s, true);
	run_forward_restore(&s);
	if (ok && daemon_pid > 0)
		run_summary(log_path ? log_path : own_log, log_from, audit, ret);
out_slot:
	for (int i = 0; i < 2; i++) {
		if (veth_pipe[i] >= 0)
			close(veth_pipe[i]);
		if (go_pipe[i] >= 0)
			close(go_pipe[i]);
		if (ns_pipe[i] >= 0)
			close(ns_pipe[i]);
	}
	if (own_log[0])
		unlink(own_log);
	if (s.lock_fd >= 0) {
		char resolv[128];
		snprintf(resolv, sizeof resolv, "%s/resolv.conf", s.dir);
		unlink(resolv);
		rmdir(s.dir);
		close(s.lock_fd);
	}
out:
	diag_clear(&d);
	policy_builder_free(b);
	policy_free(policy);
	conf_free(conf);
	return ret;
}
