/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command line (SPEC.md "Command line"):
 *
 *   egressd [-c FILE] [-u USER] [--apply-rules]     the daemon, in the foreground
 *   egressd check | rules | match | run | learn | status | report | help
 *   egressd --version | --help
 *
 * Exit status: 0 success; 1 failure (bad config, denied endpoint, ruleset
 * error); 2 usage error (unknown option or command, missing argument).
 * Every error goes to stderr; only results go to stdout.
 */
#include "daemon.h"
#include "egressd.h"
#include "log.h"
#include "status.h"
#include "report.h"
#include "../nfq/ruleset.h"
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static const char *prog = EGRESSD_PROGRAM;

/* ---- help texts ---- */

static void help_main(FILE *f)
{
	fprintf(
	    f, "Usage: egressd [-c FILE] [-u USER] [--apply-rules]\n"
	       "       egressd COMMAND [OPTIONS] [ARGS]\n"
	       "\n"
	       "egressd is a default-deny egress filter: outbound flows pass only to the\n"
	       "names, addresses and ports of its allowlists, checked against DNS, TLS SNI,\n"
	       "HTTP Host and QUIC SNI. Denied flows are logged as JSON lines.\n"
	       "\n"
	       "Without a command, egressd runs the daemon in the foreground.\n"
	       "  -c, --config FILE    configuration (default " CONF_DEFAULT_PATH ")\n"
	       "  -u, --user USER      run as USER after start-up, keeping only CAP_NET_ADMIN\n"
	       "                       and CAP_NET_BIND_SERVICE (default: env EGRESSD_USER)\n"
	       "      --apply-rules    install the netfilter ruleset before serving\n"
	       "\n"
	       "Commands:\n"
	       "  check [-c FILE]                 validate config and allowlists, print a summary\n"
	       "  rules [-c FILE] [--apply [--force]|--delete] [--backend auto|nft|xt]\n"
	       "                                  print, apply or remove the netfilter ruleset\n"
	       "  match [-c FILE] ENDPOINT        is NAME[:PORT] or IP[:PORT] allowed, and by "
	       "which line?\n"
	       "  run [--allow E]... [--allow-file F]... [--preset P]... [--audit] [--log FILE]\n"
	       "      -- CMD [ARG]...             run CMD in a network namespace behind egressd\n"
	       "  learn [LOG]...                  turn event logs (level = all) into an allowlist\n"
	       "  status [-c FILE] [--url URL] [--interval S] [--once]\n"
	       "                                  live view of the metrics endpoint\n"
	       "  report [LOG]... [-o FILE]       event logs -> one self-contained HTML report\n"
	       "  help [COMMAND]                  this text, or the help of COMMAND\n"
	       "\n"
	       "  -h, --help       show help (also after any command: egressd check -h)\n"
	       "  -V, --version    show the version\n"
	       "\n"
	       "Examples:\n"
	       "  egressd check -c /etc/egressd/egressd.conf\n"
	       "  egressd match deb.debian.org:80\n"
	       "  egressd rules --apply && egressd -u egressd\n"
	       "  egressd run --allow pypi.org --allow files.pythonhosted.org -- pip install "
	       "requests\n"
	       "\n"
	       "Signals: SIGHUP reloads config and allowlists (a bad file keeps the old\n"
	       "policy) and reopens the log; SIGTERM exits and leaves the ruleset in place.\n"
	       "See egressd(8) for the configuration file, the allowlist syntax and the log.\n");
}

static void help_check(FILE *f)
{
	fprintf(f, "Usage: egressd check [-c FILE]\n"
	           "\n"
	           "Validate the configuration and every allowlist it names. Problems are\n"
	           "printed to stderr as FILE:LINE: error|warning: MESSAGE; a summary (mode,\n"
	           "enforcement, entry counts, files read, warnings) goes to stdout.\n"
	           "A wildcard over a public or multi-tenant suffix (*.github.io,\n"
	           "*.blob.core.windows.net) is an error unless its line ends in \"shared\".\n"
	           "Exit status: 0 valid (warnings allowed), 1 errors, 2 usage error.\n"
	           "\n"
	           "  -c, --config FILE   configuration (default " CONF_DEFAULT_PATH ")\n"
	           "  -h, --help          this text\n"
	           "\n"
	           "Example: egressd check -c ./egressd.conf\n");
}

static void help_rules(FILE *f)
{
	fprintf(f, "Usage: egressd rules [-c FILE] [--apply [--force] | --delete] "
	           "[--backend auto|nft|xt]\n"
	           "\n"
	           "Print the netfilter ruleset (table inet egressd) for the configuration, or\n"
	           "apply it atomically (replacing a previous one), or delete it. The ruleset\n"
	           "queues the first packets of new flows to egressd: without the daemon\n"
	           "running, new flows are dropped (fail closed).\n"
	           "\n"
	           "  -c, --config FILE      configuration (default " CONF_DEFAULT_PATH ")\n"
	           "      --apply            install the ruleset (needs CAP_NET_ADMIN); refused\n"
	           "                         when other nftables rules use [queue] mark_mask bits\n"
	           "      --force            with --apply: install despite such rules\n"
	           "      --delete           remove the ruleset\n"
	           "  -b, --backend NAME     auto (default: probe the kernel), nft (native queue\n"
	           "                         statement) or xt (NFQUEUE target via nft_compat)\n"
	           "      --table NAME       nft table name (default egressd)\n"
	           "  -h, --help             this text\n"
	           "\n"
	           "Examples:\n"
	           "  egressd rules -c ./egressd.conf | less\n"
	           "  egressd rules --apply --backend xt\n");
}

static void help_match(FILE *f)
{
	fprintf(f, "Usage: egressd match [-c FILE] ENDPOINT\n"
	           "\n"
	           "Say whether the allowlists allow ENDPOINT, and by which FILE:LINE.\n"
	           "ENDPOINT is NAME[:PORT], IPV4[:PORT] or [IPV6]:PORT (a bare IPv6 address\n"
	           "too); the port defaults to 443. Names are matched like the daemon does:\n"
	           "case-insensitively, without a trailing dot, IDNs in their xn-- form.\n"
	           "An address outside every range may still be reached at run time through a\n"
	           "name that DNS resolved to it; this command checks the allowlists only.\n"
	           "Exit status: 0 allowed, 1 denied, 2 usage or configuration error.\n"
	           "\n"
	           "  -c, --config FILE   configuration (default " CONF_DEFAULT_PATH ")\n"
	           "  -h, --help          this text\n"
	           "\n"
	           "Examples:\n"
	           "  egressd match updates.example.com\n"
	           "  egressd match deb.debian.org:80\n"
	           "  egressd match '[2001:db8::1]:443'\n");
}

/* ---- option parsing helpers ---- */

static int bad_option(const char *cmd, int argc, char **argv, int c)
{
	const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
	const char *sp = cmd ? " " : "";

	if (c == ':')
		fprintf(stderr, "%s%s%s: option '%s' needs an argument\n", prog, sp, cmd ? cmd : "",
		        arg);
	else if (optopt && optopt != '?')
		fprintf(stderr, "%s%s%s: unknown option '-%c'\n", prog, sp, cmd ? cmd : "", optopt);
	else
		fprintf(stderr, "%s%s%s: unknown option '%s'\n", prog, sp, cmd ? cmd : "", arg);
	fprintf(stderr, "Try '%s%s%s --help'.\n", prog, sp, cmd ? cmd : "");
	return EXIT_USAGE;
}

static void print_diag(const struct diag *d)
{
	diag_print(d, stderr);
}

/* Load config and policy; diagnostics to stderr. 0, or -1 (errors printed). */
static int load_all(const char *path, struct conf **conf, struct policy **policy, struct diag *dg,
                    bool warnings)
{
	*conf = NULL;
	if (policy)
		*policy = NULL;
	if (conf_load(path, conf, dg) == -1 || !*conf) {
		print_diag(dg);
		if (dg->errors == 0)
			fprintf(stderr, "%s: %s: cannot load the configuration\n", prog, path);
		return -1;
	}
	if (!policy)
		return 0;
	*policy = conf_load_policy(*conf, dg);
	if (warnings || dg->errors || !*policy)
		print_diag(dg);
	if (!*policy) {
		if (dg->errors == 0)
			fprintf(stderr, "%s: %s: cannot build the allowlist policy\n", prog, path);
		conf_free(*conf);
		*conf = NULL;
		return -1;
	}
	return 0;
}

/* ---- egressd [-c FILE]: the daemon ---- */

struct command;
static const struct command *find_command(const char *name);

static int cmd_daemon(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'}, {"user", required_argument, NULL, 'u'},
	    {"apply-rules", no_argument, NULL, 'A'},  {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	const char *path = CONF_DEFAULT_PATH;
	struct daemon_opts opts = {.ready_fd = -1};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:u:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'u':
			opts.user = optarg;
			break;
		case 'A':
			opts.apply_rules = true;
			break;
		case 'h':
			help_main(stdout);
			return 0;
		case 'V':
			printf("egressd %s\n", EGRESSD_VERSION);
			return 0;
		default:
			return bad_option(NULL, argc, argv, c);
		}
	}
	if (optind < argc) {
		if (find_command(argv[optind]))
			fprintf(stderr, "%s: options go after the command: '%s %s %s...'\n", prog,
			        prog, argv[optind], argv[1]);
		else
			fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[optind]);
		fprintf(stderr, "Try '%s --help'.\n", prog);
		return EXIT_USAGE;
	}
	struct diag dg;
	struct conf *conf;
	struct policy *policy;
	memset(&dg, 0, sizeof(dg));
	int rc = load_all(path, &conf, &policy, &dg, true);
	diag_clear(&dg);
	if (rc == -1)
		return 1;
	opts.conf_path = path;
	return daemon_run(conf, policy, &opts);
}

/* ---- check ---- */

/* The allowlist files a config reads (globs expanded), printed and counted. */
static size_t list_files(const struct conf *conf, FILE *f)
{
	size_t n = 0;

	for (size_t i = 0; i < conf->nallow; i++) {
		const char *a = conf->allow[i];
		if (strncmp(a, "preset:", 7) == 0) {
			const char *dir = getenv("EGRESSD_PRESET_DIR");
			fprintf(f, "  %s (%s/%s.list)\n", a, dir && *dir ? dir : EGRESSD_PRESET_DIR,
			        a + 7);
			n++;
			continue;
		}
		glob_t g;
		memset(&g, 0, sizeof(g));
		if (glob(a, GLOB_NOSORT | GLOB_ERR, NULL, &g) == 0) {
			for (size_t j = 0; j < g.gl_pathc; j++) {
				fprintf(f, "  %s\n", g.gl_pathv[j]);
				n++;
			}
		}
		globfree(&g);
	}
	return n;
}

/*
 * The options of check and match: -c FILE and -h. Returns -1 to go on (the
 * arguments left start at optind), else the exit code. optstring decides
 * whether options may follow the arguments ("+" stops at the first one).
 */
static int config_options(int argc, char **argv, const char *cmd, const char *optstring,
                          void (*help)(FILE *), const char **path)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*path = CONF_DEFAULT_PATH;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			*path = optarg;
			break;
		case 'h':
			help(stdout);
			return 0;
		default:
			return bad_option(cmd, argc, argv, c);
		}
	}
	return -1;
}

static int cmd_check(int argc, char **argv)
{
	const char *path;
	int orc = config_options(argc, argv, "check", "+:c:h", help_check, &path);
	if (orc != -1)
		return orc;
	if (optind < argc) {
		fprintf(stderr, "%s check: unexpected argument '%s'\nTry '%s check --help'.\n",
		        prog, argv[optind], prog);
		return EXIT_USAGE;
	}
	struct diag dg;
	struct conf *conf;
	struct policy *policy;
	memset(&dg, 0, sizeof(dg));
	if (load_all(path, &conf, &policy, &dg, true) == -1) {
		fprintf(stderr, "%s: %s: %u error(s), %u warning(s)\n", prog, path, dg.errors,
		        dg.warnings);
		diag_clear(&dg);
		return 1;
	}
	struct policy_stats st;
	memset(&st, 0, sizeof(st));
	policy_stats(policy, &st);
	printf("config:   %s\n", path);
	printf("mode:     %s%s%s\n", conf->mode == CONF_MODE_GATEWAY ? "gateway" : "host",
	       conf->mode == CONF_MODE_GATEWAY && conf->inside[0] ? ", inside " : "",
	       conf->mode == CONF_MODE_GATEWAY ? conf->inside : "");
	printf("enforce:  %s\n", conf->enforce ? "yes" : "no (audit: log, deny nothing)");
	printf("entries:  %zu exact names, %zu wildcards, %zu ranges\n", st.exact_names,
	       st.wildcards, st.ranges);
	if (st.shared)
		printf("shared:   %zu wildcard(s) marked shared: anyone can register names they "
		       "allow (egressd match NAME shows which)\n",
		       st.shared);
	char *files = NULL;
	size_t flen = 0;
	FILE *mf = open_memstream(&files, &flen);
	size_t nfiles = mf ? list_files(conf, mf) : 0;
	if (mf)
		fclose(mf);
	printf("files:    %zu read\n%s", nfiles, files ? files : "");
	free(files);
	printf("warnings: %u\n", dg.warnings);
	diag_clear(&dg);
	policy_free(policy);
	conf_free(conf);
	return 0;
}

/* ---- rules ---- */

static int cmd_rules(int argc, char **argv)
{
	enum { OPT_APPLY = 256, OPT_DELETE, OPT_TABLE, OPT_FORCE };
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"apply", no_argument, NULL, OPT_APPLY},
	    {"delete", no_argument, NULL, OPT_DELETE},
	    {"backend", required_argument, NULL, 'b'},
	    {"table", required_argument, NULL, OPT_TABLE},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = CONF_DEFAULT_PATH;
	const char *table = NULL;
	bool apply = false, del = false, force = false;
	enum rules_backend backend = RULES_AUTO;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:b:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case OPT_APPLY:
			apply = true;
			break;
		case OPT_DELETE:
			del = true;
			break;
		case OPT_TABLE:
			table = optarg;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case 'b':
			if (strcmp(optarg, "auto") == 0)
				backend = RULES_AUTO;
			else if (strcmp(optarg, "nft") == 0)
				backend = RULES_NFT;
			else if (strcmp(optarg, "xt") == 0)
				backend = RULES_XT;
			else {
				fprintf(stderr,
				        "%s rules: unknown backend '%s' (auto, nft or xt)\n"
				        "Try '%s rules --help'.\n",
				        prog, optarg, prog);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			help_rules(stdout);
			return 0;
		default:
			return bad_option("rules", argc, argv, c);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s rules: unexpected argument '%s'\nTry '%s rules --help'.\n",
		        prog, argv[optind], prog);
		return EXIT_USAGE;
	}
	if (apply && del) {
		fprintf(stderr, "%s rules: --apply and --delete exclude each other\n", prog);
		return EXIT_USAGE;
	}
	char err[512] = "";
	if (del) {
		/* Needs no config: a broken config must not keep the rules stuck. */
		if (rules_delete(table, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s rules: delete failed: %s\n", prog, err);
			return 1;
		}
		fprintf(stderr, "%s: ruleset deleted (table inet %s)\n", prog,
		        table ? table : "egressd");
		return 0;
	}

	struct diag dg;
	struct conf *conf;
	struct policy *policy = NULL;
	memset(&dg, 0, sizeof(dg));
	/* Applying validates the allowlists too: nothing is half-applied. */
	int rc = load_all(path, &conf, apply ? &policy : NULL, &dg, true);
	diag_clear(&dg);
	if (rc == -1)
		return 1;
	policy_free(policy);

	struct conf_endpoint listen[CONF_MAX_LISTEN_ALL];
	size_t nlisten = 0;
	if (daemon_dns_listen(conf, listen, CONF_MAX_LISTEN_ALL, &nlisten, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s rules: %s: %s\n", prog, path, err);
		conf_free(conf);
		return 1;
	}
	struct rules_params rp;
	daemon_rules_params(conf, listen, nlisten, table, &rp);

	if (backend == RULES_AUTO) {
		char why[256] = "";
		enum rules_backend b = RULES_AUTO;
		if (rules_detect(&b, why, sizeof(why)) < 0 || b == RULES_AUTO) {
			if (apply) {
				fprintf(stderr, "%s rules: cannot detect a backend: %s\n", prog,
				        why[0] ? why : "unknown error");
				conf_free(conf);
				return 1;
			}
			fprintf(stderr,
			        "%s: backend nft (detection failed: %s; choose with --backend)\n",
			        prog, why[0] ? why : "unknown error");
			backend = RULES_NFT;
		} else {
			backend = b;
			fprintf(stderr, "%s: backend %s (%s)\n", prog, rules_backend_name(b), why);
		}
	} else {
		fprintf(stderr, "%s: backend %s (from --backend)\n", prog,
		        rules_backend_name(backend));
	}

	rc = 0;
	if (apply) {
		/* Another user of our mark bits would misread ours or clobber them:
		 * refuse, unless told that the overlap is known and harmless. */
		int mc = rules_mark_conflicts(&rp, err, sizeof(err));
		if (mc != 0 && !force) {
			if (mc > 0)
				fprintf(stderr,
				        "%s rules: %s: [queue] mark_mask = 0x%08x is used by other "
				        "nftables rules: %s; choose other bits, or --force\n",
				        prog, path, conf->mark_mask, err);
			else
				fprintf(stderr, "%s rules: cannot check the mark bits: %s (--force "
				                "applies without the check)\n",
				        prog, err);
			conf_free(conf);
			return 1;
		}
		if (mc != 0)
			fprintf(stderr, "%s: warning: %s (--force: applying anyway)\n", prog, err);
		if (rules_apply(&rp, backend, err, sizeof(err)) == -1) {
			fprintf(stderr, "%s rules: apply failed: %s\n", prog, err);
			rc = 1;
		} else {
			fprintf(stderr, "%s: ruleset applied (table inet %s)\n", prog,
			        table ? table : "egressd");
		}
	} else {
		char *text = rules_render(&rp, backend);
		if (!text) {
			fprintf(stderr, "%s rules: cannot render the ruleset\n", prog);
			rc = 1;
		} else {
			fputs(text, stdout);
			if (fflush(stdout) == EOF) {
				fprintf(stderr, "%s rules: write: %s\n", prog, strerror(errno));
				rc = 1;
			}
			free(text);
		}
	}
	conf_free(conf);
	return rc;
}

/* ---- match ---- */

static bool parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/*
 * NAME[:PORT] | IPV4[:PORT] | [IPV6][:PORT] | IPV6. host receives the name
 * or address text; is_addr and a say which. false with err on bad syntax.
 */
static bool parse_endpoint(const char *s, char *host, size_t hcap, uint16_t *port, bool *is_addr,
                           struct addr *a, char *err, size_t errlen)
{
	const char *port_s = NULL;
	size_t hlen;

	*port = 443;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end) {
			snprintf(err, errlen, "missing ']' in \"%s\"", s);
			return false;
		}
		hlen = (size_t)(end - s - 1);
		if (end[1] == ':')
			port_s = end + 2;
		else if (end[1] != '\0') {
			snprintf(err, errlen, "unexpected \"%s\" after ']'", end + 1);
			return false;
		}
		s++;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':')) {
			hlen = strlen(s); /* a bare IPv6 address */
		} else if (colon) {
			hlen = (size_t)(colon - s);
			port_s = colon + 1;
		} else {
			hlen = strlen(s);
		}
	}
	if (hlen == 0 || hlen >= hcap) {
		snprintf(err, errlen, hlen ? "name too long" : "empty name");
		return false;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (port_s && !parse_port(port_s, port)) {
		snprintf(err, errlen, "bad port \"%s\"", port_s);
		return false;
	}
	*is_addr = addr_parse(host, a);
	if (!*is_addr && strchr(host, ':')) {
		snprintf(err, errlen, "bad IPv6 address \"%s\"", host);
		return false;
	}
	return true;
}

/*
 * UTF-8 or ASCII name -> normalised A-label form, exactly as config reads
 * an allowlist entry (IDNA, case, trailing dot), by asking config to parse it.
 */
static bool normalise_name(const char *in, char *out, char *err, size_t errlen)
{
	struct allow_entry e;
	struct diag dg;

	memset(&dg, 0, sizeof(dg));
	int rc = allowlist_parse_line(in, NULL, 0, &e, &dg);
	if (rc < 0 || e.kind != ALLOW_NAME || e.wildcard) {
		snprintf(err, errlen, "bad name \"%s\"%s%s", in, dg.n ? ": " : "",
		         dg.n ? dg.lines[0] : "");
		diag_clear(&dg);
		return false;
	}
	diag_clear(&dg);
	snprintf(out, NAME_MAX_LEN + 1, "%s", e.name);
	return true;
}

static int cmd_match(int argc, char **argv)
{
	const char *path;
	int orc = config_options(argc, argv, "match", ":c:h", help_match, &path);
	if (orc != -1)
		return orc;
	if (argc - optind != 1) {
		fprintf(stderr, "%s match: %s\nTry '%s match --help'.\n", prog,
		        argc - optind ? "give exactly one ENDPOINT" : "missing ENDPOINT", prog);
		return EXIT_USAGE;
	}
	const char *ep = argv[optind];
	char host[512], err[1024], name[NAME_MAX_LEN + 1];
	uint16_t port;
	bool is_addr;
	struct addr a;
	if (!parse_endpoint(ep, host, sizeof(host), &port, &is_addr, &a, err, sizeof(err))) {
		fprintf(stderr, "%s match: %s\n", prog, err);
		return EXIT_USAGE;
	}
	if (!is_addr) {
		if (host[0] == '*') {
			fprintf(stderr, "%s match: give a concrete name, not a wildcard (\"%s\")\n",
			        prog, host);
			return EXIT_USAGE;
		}
		if (!normalise_name(host, name, err, sizeof(err))) {
			fprintf(stderr, "%s match: %s\n", prog, err);
			return EXIT_USAGE;
		}
	}

	struct diag dg;
	struct conf *conf;
	struct policy *policy;
	memset(&dg, 0, sizeof(dg));
	int rc = load_all(path, &conf, &policy, &dg, false);
	diag_clear(&dg);
	if (rc == -1)
		return EXIT_USAGE;

	bool known = false;
	const struct policy_rule *r = is_addr ? policy_match_addr(policy, &a, port, &known)
	                                      : policy_match_name(policy, name, port, &known);
	char abuf[ADDR_STRLEN + 1];
	const char *what = is_addr ? addr_str(&a, abuf) : name;
	if (r) {
		printf("allowed by %s:%u (%s)\n", r->file, r->line, r->text);
		if (r->shared)
			printf("shared: the entry covers a public or multi-tenant suffix, so anyone "
			       "can register names it allows\n");
		rc = 0;
	} else if (known) {
		printf("denied: port_not_allowed (%s is allowed, but not on port %u)\n", what,
		       port);
		rc = 1;
	} else if (is_addr) {
		printf("denied: ip_not_allowed (no range holds %s; the addresses of allowed "
		       "names are only known at run time, from DNS)\n",
		       what);
		rc = 1;
	} else {
		printf("denied: name_not_allowed (no entry covers %s)\n", what);
		rc = 1;
	}
	policy_free(policy);
	conf_free(conf);
	return rc;
}

/* ---- dispatch ---- */

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	void (*help)(FILE *f);
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"check", cmd_check, help_check}, {"rules", cmd_rules, help_rules},
    {"match", cmd_match, help_match}, {"run", cmd_run, NULL},
    {"learn", cmd_learn, NULL},       {"help", cmd_help, NULL},
    {"status", cmd_status, NULL},
    {"report", cmd_report, NULL},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		help_main(stdout);
		return 0;
	}
	const struct command *c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "%s help: unknown command '%s'\nTry '%s --help'.\n", prog, argv[1],
		        prog);
		return EXIT_USAGE;
	}
	if (c->help) {
		c->help(stdout);
		return 0;
	}
	if (c->fn == cmd_help) {
		help_main(stdout);
		return 0;
	}
	/* run, learn, status and report own their help text: ask them. */
	char *args[] = {argv[1], (char *)"--help", NULL};
	optind = 0;
	return c->fn(2, args);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && argv[1][0] != '-') {
		const struct command *c = find_command(argv[1]);
		if (!c) {
			fprintf(stderr, "%s: unknown command '%s'\nTry '%s --help'.\n", prog,
			        argv[1], prog);
			return EXIT_USAGE;
		}
		optind = 0;
		return c->fn(argc - 1, argv + 1);
	}
	return cmd_daemon(argc, argv);
}
