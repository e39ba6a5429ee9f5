/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd run [--allow E]... [--allow-file F]... [--preset P]... [--audit]
 *             [--log FILE] -- CMD [ARG]...
 *
 * CMD runs in a fresh network namespace whose only way out is a veth pair
 * to the calling namespace, where this process runs egressd in gateway mode
 * for that veth alone (FORWARD hook, its own nft table and queue number) and
 * masquerades what it allows. Everything is torn down afterwards, also on
 * Ctrl-C and SIGTERM; the exit status of CMD is passed through.
 *
 * Several runs at once: each takes a free slot (flock on
 * /run/egressd/run/slot-N.lock) that names its table, queue, veth and /30.
 *
 *   calling namespace                       CMD's namespace
 *   egr<N>h  NET+4N+1/30  <---- veth ---->  egr<N>c  NET+4N+2/30
 *   DNS listener NET+4N+1:(20000+N)          /etc/resolv.conf -> NET+4N+1 (bind mount)
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "egressd.h"
#include "../nfq/ruleset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RUN_DIR "/run/egressd/run"
#define RUN_SLOTS 64              /* /30s in a /24 */
#define RUN_NET_DEFAULT "100.64.77.0" /* shared address space (RFC 6598), a /24 of it */
#define RUN_QUEUE_BASE 30000
#define RUN_DNS_PORT_BASE 20000

struct run_slot {
	int n;
	int lock_fd;
	char dir[64];
	char table[32];
	char nat_table[32];
	char veth_host[16], veth_child[16];
	char host_addr[INET_ADDRSTRLEN], child_addr[INET_ADDRSTRLEN], net_addr[INET_ADDRSTRLEN];
};

static volatile int run_stop;
static volatile pid_t run_child = -1;

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: egressd run [--allow ENTRY]... [--allow-file FILE]... [--preset NAME]...\n"
		"                   [--audit] [--log FILE] -- CMD [ARG]...\n"
		"\n"
		"Run CMD in a fresh network namespace whose only way out is through egressd.\n"
		"\n"
		"  --allow ENTRY       allow an allowlist entry (name, *.name, name:80,443, CIDR:port)\n"
		"  --allow-file FILE   allow the entries of an allowlist file\n"
		"  --preset NAME       allow a shipped preset (debian, pypi, npm, trivy, ...)\n"
		"  --audit             deny nothing; log what would have been denied\n"
		"  --log FILE          write the JSON event log to FILE (default: a summary only)\n"
		"\n"
		"The exit status is CMD's. Denied flows are summarised on stderr at the end.\n"
		"Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN); under sudo, CMD runs as the\n"
		"invoking user. Environment: EGRESSD_RUN_NET=A.B.C.0 picks the /24 the per-run\n"
		"/30s come from (default " RUN_NET_DEFAULT ").\n"
		"\n"
		"example: sudo egressd run --preset pypi -- pip download requests\n");
}

/* Run a helper program (no shell) and wait; 0 when it exited 0. */
static int run_cmd(const char *const argv[], bool quiet)
{
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "egressd run: %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	int st;
	while (waitpid(pid, &st, 0) == -1) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
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

/* Remove what a previous run of this slot may have left (crash), quietly. */
static void run_slot_cleanup(const struct run_slot *s)
{
	char err[256];
	const char *del_link[] = {"ip", "link", "del", s->veth_host, NULL};
	run_cmd(del_link, true);
	rules_delete(s->table, err, sizeof err);
	const char *del_nat[] = {"nft", "delete", "table", "ip", s->nat_table, NULL};
	run_cmd(del_nat, true);
}

/*
 * The child: wait until the parent made the veth, configure its side, point
 * DNS at egressd, wait for "ready", drop to the invoking user, exec CMD.
 */
static void run_child_main(const struct run_slot *s, int go_fd, int veth_fd, char **cmd)
{
	char c;
	/* 1. veth exists (the parent writes a byte; EOF alone: it failed). */
	if (read(veth_fd, &c, 1) != 1)
		_exit(126);
	close(veth_fd);
	char cidr[32];
	snprintf(cidr, sizeof cidr, "%s/30", s->child_addr);
	const char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
	const char *addr[] = {"ip", "addr", "add", cidr, "dev", s->veth_child, NULL};
	const char *up[] = {"ip", "link", "set", s->veth_child, "up", NULL};
	const char *route[] = {"ip", "route", "add", "default", "via", s->host_addr, NULL};
	if (run_cmd(lo_up, false) || run_cmd(addr, false) || run_cmd(up, false) ||
	    run_cmd(route, false)) {
		fprintf(stderr, "egressd run: cannot configure the namespace\n");
		_exit(126);
	}
	/* DNS: a private resolv.conf in this mount namespace. */
	char resolv[128], text[64];
	snprintf(resolv, sizeof resolv, "%s/resolv.conf", s->dir);
	snprintf(text, sizeof text, "nameserver %s\n", s->host_addr);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == -1 ||
	    run_write_file(resolv, text) != 0 ||
	    mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) == -1) {
		fprintf(stderr, "egressd run: cannot set up DNS: %s\n", strerror(errno));
		_exit(126);
	}
	/* 2. egressd ready. */
	if (read(go_fd, &c, 1) != 1) {
		fprintf(stderr, "egressd run: egressd did not start; not running the command\n");
		_exit(126);
	}
	close(go_fd);
	/* Run as the invoking user under sudo. */
	const char *sudo_uid = getenv("SUDO_UID"), *sudo_gid = getenv("SUDO_GID");
	if (getuid() == 0 && sudo_uid && sudo_gid) {
		char *end;
		unsigned long uid = strtoul(sudo_uid, &end, 10), gid;
		if (*end == '\0' && uid > 0) {
			gid = strtoul(sudo_gid, &end, 10);
			const char *user = getenv("SUDO_USER");
			if (*end != '\0' || (user ? initgroups(user, (gid_t)gid)
						  : setgroups(0, NULL)) == -1 ||
			    setgid((gid_t)gid) == -1 || setuid((uid_t)uid) == -1) {
				fprintf(stderr, "egressd run: cannot become uid %lu: %s\n", uid,
					strerror(errno));
				_exit(126);
			}
		}
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	execvp(cmd[0], cmd);
	fprintf(stderr, "egressd run: %s: %s\n", cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static void run_on_signal(int sig)
{
	if (sig == SIGCHLD) {
		/* Only CMD's exit ends the run (not ip/nft helpers). */
		siginfo_t si = {0};
		if (run_child > 0 &&
		    waitid(P_PID, (id_t)run_child, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == run_child)
			run_stop = 1;
		return;
	}
	/* Ctrl-C / SIGTERM: pass it to CMD; its exit ends the daemon. */
	if (run_child > 0)
		kill(run_child, sig);
	run_stop = 1;
}

/* Denied flows from the event log, summarised on stderr. */
static void run_summary(const char *log_path, int status)
{
	FILE *f = fopen(log_path, "r");
	if (!f)
		return;
	struct json_object *agg = json_object_new_object();
	unsigned denied = 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) != -1) {
		struct json_object *o = json_tokener_parse(line), *v;
		if (!o)
			continue;
		const char *ev = json_object_object_get_ex(o, "event", &v) ? json_object_get_string(v)
									: "";
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
			int count = 1;
			if (json_object_object_get_ex(o, "count", &v))
				count = json_object_get_int(v);
			struct json_object *prev;
			if (json_object_object_get_ex(agg, key, &prev))
				count += json_object_get_int(prev);
			json_object_object_add(agg, key, json_object_new_int(count));
			denied += (unsigned)(count > 0 ? count : 1);
		}
		json_object_put(o);
	}
	free(line);
	fclose(f);
	if (denied == 0) {
		fprintf(stderr, "egressd run: no flow denied; exit status %d\n", status);
	} else {
		fprintf(stderr, "egressd run: %u denied (exit status %d):\n", denied, status);
		json_object_object_foreach(agg, key, val)
		{
			fprintf(stderr, "  %5d  %s\n", json_object_get_int(val), key);
		}
	}
	json_object_put(agg);
}

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
	const char *log_path = NULL;
	bool audit = false;
	unsigned nallow = 0;
	int opt, ret = 125;
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

	struct run_slot s = {.lock_fd = -1};
	if (run_slot_take(&s) != 0)
		goto out;
	run_slot_cleanup(&s);

	/* The daemon's configuration: gateway mode for our veth only. */
	char own_log[128];
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

	struct policy *policy = policy_builder_finish(b);
	b = NULL;
	if (!policy) {
		fprintf(stderr, "egressd run: out of memory\n");
		goto out_slot;
	}

	/* Namespace for CMD: a child that unshares and waits for us. */
	int veth_pipe[2], go_pipe[2];
	if (pipe2(veth_pipe, O_CLOEXEC) == -1 || pipe2(go_pipe, O_CLOEXEC) == -1) {
		policy_free(policy);
		goto out_slot;
	}
	struct sigaction sa = {.sa_handler = run_on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* The child is created in its own namespaces by unshare after fork. */
	int ns_pipe[2];
	if (pipe2(ns_pipe, O_CLOEXEC) == -1) {
		policy_free(policy);
		goto out_slot;
	}
	pid_t pid = fork();
	if (pid == -1) {
		fprintf(stderr, "egressd run: fork: %s\n", strerror(errno));
		policy_free(policy);
		goto out_slot;
	}
	if (pid == 0) {
		close(veth_pipe[1]);
		close(go_pipe[1]);
		close(ns_pipe[0]);
		if (unshare(CLONE_NEWNET | CLONE_NEWNS) == -1) {
			fprintf(stderr, "egressd run: unshare: %s\n", strerror(errno));
			_exit(126);
		}
		if (write(ns_pipe[1], "n", 1) != 1)
			_exit(126);
		close(ns_pipe[1]);
		run_child_main(&s, go_pipe[0], veth_pipe[0], cmd);
	}
	run_child = pid;
	close(veth_pipe[0]);
	close(go_pipe[0]);
	close(ns_pipe[1]);
	char c;
	bool ok = read(ns_pipe[0], &c, 1) == 1;
	close(ns_pipe[0]);

	/* veth to the child's namespace, NAT for what egressd lets through. */
	char pidstr[16], host_cidr[32], nat[512];
	snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
	snprintf(host_cidr, sizeof host_cidr, "%s/30", s.host_addr);
	snprintf(nat, sizeof nat,
		 "table ip %s {\n"
		 "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
		 "    ip saddr %s/30 oifname != \"%s\" masquerade\n"
		 "  }\n"
		 "}\n",
		 s.nat_table, s.net_addr, s.veth_host);
	char nat_path[128];
	snprintf(nat_path, sizeof nat_path, "%s/nat.nft", s.dir);
	const char *mk[] = {"ip", "link", "add", s.veth_host, "type", "veth", "peer", "name",
			    s.veth_child, "netns", pidstr, NULL};
	const char *addr[] = {"ip", "addr", "add", host_cidr, "dev", s.veth_host, NULL};
	const char *up[] = {"ip", "link", "set", s.veth_host, "up", NULL};
	const char *natload[] = {"nft", "-f", nat_path, NULL};
	ok = ok && run_cmd(mk, false) == 0 && run_cmd(addr, false) == 0 &&
	     run_cmd(up, false) == 0 && run_write_file(nat_path, nat) == 0 &&
	     run_cmd(natload, false) == 0 &&
	     run_write_file("/proc/sys/net/ipv4/ip_forward", "1\n") == 0;
	/* Tell the child the veth is there (EOF without a byte: give up). */
	if (ok && write(veth_pipe[1], "v", 1) != 1)
		ok = false;
	close(veth_pipe[1]);
	if (!ok) {
		fprintf(stderr, "egressd run: cannot set up the network for the command\n");
		close(go_pipe[1]);
		policy_free(policy);
		conf_free(conf);
		conf = NULL;
	} else {
		/* egressd itself, until CMD exits (SIGCHLD) or we are told to stop. */
		struct daemon_opts dopts = {
			.conf_path = NULL,
			.apply_rules = true,
			.table = s.table,
			.ready_fd = go_pipe[1],
			.stop_flag = &run_stop,
		};
		int drc = daemon_run(conf, policy, &dopts);
		conf = NULL; /* owned by daemon_run */
		if (drc != 0)
			fprintf(stderr, "egressd run: egressd stopped with an error\n");
	}
	/* Collect CMD: ask it to stop if it outlived egressd, then insist. */
	int st = 0;
	pid_t w = waitpid(pid, &st, WNOHANG);
	if (w == 0) {
		kill(pid, SIGTERM);
		for (int i = 0; i < 50 && (w = waitpid(pid, &st, WNOHANG)) == 0; i++)
			usleep(100 * 1000); /* bounded grace period for CMD to exit */
		if (w == 0) {
			kill(pid, SIGKILL);
			w = waitpid(pid, &st, 0);
		}
	}
	if (w == -1)
		st = 0;
	run_child = -1;
	if (WIFEXITED(st))
		ret = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		ret = 128 + WTERMSIG(st);
	run_slot_cleanup(&s);
	run_summary(log_path ? log_path : own_log, ret);
	unlink(nat_path);
	unlink(own_log);
	char resolv[128];
	snprintf(resolv, sizeof resolv, "%s/resolv.conf", s.dir);
	unlink(resolv);
	rmdir(s.dir);
out_slot:
	if (s.lock_fd >= 0)
		close(s.lock_fd);
out:
	diag_clear(&d);
	policy_builder_free(b);
	conf_free(conf);
	return ret;
}
