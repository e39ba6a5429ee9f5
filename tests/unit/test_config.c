/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config/: egressd.conf keys and defaults, every error with its exact
 * FILE:LINE text, allowlist forms, presets, globs, and the shipped files.
 * Files are written under a fresh mkdtemp directory per test.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../config/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SRCDIR
#error "SRCDIR must name the source tree"
#endif

static char tdir[PATH_MAX];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof tdir, "/tmp/egx-conf-XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/allow.d", tdir);
	if (mkdir(p, 0700) == -1)
		return -1;
	setenv("EGRESSD_PRESET_DIR", SRCDIR "/config/presets", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* tdir/rel; returns a static path buffer (one of two, alternating). */
static const char *tpath(const char *rel)
{
	static char bufs[2][PATH_MAX + 64];
	static int k;
	k ^= 1;
	snprintf(bufs[k], sizeof bufs[k], "%s/%s", tdir, rel);
	return bufs[k];
}

static const char *write_file(const char *rel, const char *text)
{
	const char *p = tpath(rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

/* Does d hold exactly this line? Prints what it holds when not. */
static bool has_line(const struct diag *d, const char *fmt, ...)
{
	char want[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof want, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->lines[i], want))
			return true;
	fprintf(stderr, "wanted: %s\nhave:\n", want);
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->lines[i]);
	return false;
}

static struct conf *load_ok(const char *text)
{
	struct diag d = {0};
	struct conf *c = NULL;
	const char *p = write_file("egressd.conf", text);
	int rc = conf_load(p, &c, &d);
	if (rc != 0)
		diag_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_non_null(c);
	assert_int_equal(d.errors, 0);
	diag_clear(&d);
	return c;
}

/* Load text expecting failure; d receives the messages. */
static void load_bad(const char *text, struct diag *d)
{
	struct conf *c = (struct conf *)0x1;
	const char *p = write_file("egressd.conf", text);
	assert_int_equal(conf_load(p, &c, d), -1);
	assert_null(c);
	assert_true(d->errors > 0);
}

static void ep_is(const struct conf_endpoint *ep, const char *addr, uint16_t port)
{
	char buf[ADDR_STRLEN];
	assert_non_null(inet_ntop(ep->addr.family == ADDR_V4 ? AF_INET : AF_INET6, ep->addr.b, buf,
	                          sizeof buf));
	assert_string_equal(buf, addr);
	assert_int_equal(ep->port, port);
}

/* ---- egressd.conf ------------------------------------------------------ */

static void test_defaults(void **state)
{
	(void)state;
	struct conf *c = load_ok("[gateway]\ninside = eth1\n");
	assert_int_equal(c->mode, CONF_MODE_GATEWAY);
	assert_true(c->enforce);
	assert_true(c->engine.enforce);
	assert_true(c->revoke);
	assert_false(c->engine.metadata_allow); /* metadata = deny */
	assert_int_equal(c->nallow, 1);
	assert_string_equal(c->allow[0], "/etc/egressd/allow.d/*.list");
	assert_int_equal(c->allow_line[0], 0);
	assert_string_equal(c->inside, "eth1");
	assert_int_equal(c->queue_num, 0);
	/* [queue] threads = auto: one worker per online CPU */
	assert_true(c->queue_threads_auto);
	assert_int_equal(c->queue_threads, conf_auto_threads());
	assert_int_equal(c->ndns_listen, 0);
	assert_int_equal(c->ndns_upstream, 0);
	assert_int_equal(c->dns_deny_rcode, DNS_RCODE_REFUSED);
	assert_int_equal(c->engine.bind_grace_ns, 60ULL * 1000000000ULL);
	assert_int_equal(c->dns_timeout_ms, 1500);
	assert_int_equal(c->dns_tries, 2);
	assert_int_equal(c->engine.unknown_ip, UNKNOWN_IP_DENY);
	assert_int_equal(c->engine.ech, ECH_OUTER);
	assert_false(c->engine.quic_inspect);
	assert_string_equal(c->log_file, "-");
	assert_int_equal(c->log_level, CONF_LOG_DENY);
	assert_null(c->log_host); /* default: the hostname */
	assert_true(c->metrics_enabled);
	ep_is(&c->metrics_listen, "127.0.0.1", 9469);
	assert_string_equal(c->path, tpath("egressd.conf"));
	conf_free(c);

	c = conf_new_defaults();
	assert_non_null(c);
	assert_int_equal(c->nallow, 0);
	assert_int_equal(c->mode, CONF_MODE_GATEWAY);
	assert_true(c->enforce);
	conf_free(c);
	conf_free(NULL);
}

static void test_every_key(void **state)
{
	(void)state;
	struct conf *c =
	    load_ok("; full config\n"
	            "# hash comment\n"
	            "[egressd]\n"
	            "mode = host            ; inline\n"
	            "enforce = no           # inline hash\n"
	            "allow = a.list preset:debian /abs/*.list\n"
	            "  allow.d/more.list\n"
	            "[gateway]\n"
	            "inside = eth9\n"
	            "[queue]\n"
	            "num = 100\n"
	            "threads = 16\n"
	            "[dns]\n"
	            "listen = 198.51.100.1:5353 [2001:db8::1]:53 192.0.2.1\n"
	            "upstream = 203.0.113.53 2001:db8::53 [2001:db8::54]:5300 203.0.113.54:10053\n"
	            "deny = nxdomain\n"
	            "grace = 5\n"
	            "timeout = 400\n"
	            "tries = 3\n"
	            "[tls]\n"
	            "unknown_ip = verify\n"
	            "ech = allow\n"
	            "[quic]\n"
	            "policy = inspect\n"
	            "[log]\n"
	            "file = /var/log/egressd.json\n"
	            "level = all\n"
	            "host = gw-a.example\n"
	            "[metrics]\n"
	            "listen = [2001:db8::9]:9000\n");
	assert_int_equal(c->mode, CONF_MODE_HOST);
	assert_false(c->enforce);
	assert_false(c->engine.enforce);
	assert_int_equal(c->nallow, 4);
	assert_string_equal(c->allow[0], "a.list");
	assert_string_equal(c->allow[1], "preset:debian");
	assert_string_equal(c->allow[2], "/abs/*.list");
	assert_string_equal(c->allow[3], "allow.d/more.list");
	assert_int_equal(c->allow_line[0], 6);
	assert_int_equal(c->allow_line[3], 7);
	assert_string_equal(c->inside, "eth9");
	assert_int_equal(c->queue_num, 100);
	assert_int_equal(c->queue_threads, 16);
	assert_int_equal(c->ndns_listen, 3);
	ep_is(&c->dns_listen[0], "198.51.100.1", 5353);
	ep_is(&c->dns_listen[1], "2001:db8::1", 53);
	ep_is(&c->dns_listen[2], "192.0.2.1", 53);
	assert_int_equal(c->ndns_upstream, 4);
	ep_is(&c->dns_upstream[0], "203.0.113.53", 53);
	ep_is(&c->dns_upstream[1], "2001:db8::53", 53);
	ep_is(&c->dns_upstream[2], "2001:db8::54", 5300);
	ep_is(&c->dns_upstream[3], "203.0.113.54", 10053);
	assert_int_equal(c->dns_deny_rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(c->engine.bind_grace_ns, 5ULL * 1000000000ULL);
	assert_int_equal(c->dns_timeout_ms, 400);
	assert_int_equal(c->dns_tries, 3);
	assert_int_equal(c->engine.unknown_ip, UNKNOWN_IP_VERIFY);
	assert_int_equal(c->engine.ech, ECH_ALLOW);
	assert_true(c->engine.quic_inspect);
	assert_string_equal(c->log_file, "/var/log/egressd.json");
	assert_int_equal(c->log_level, CONF_LOG_ALL);
	assert_string_equal(c->log_host, "gw-a.example");
	assert_true(c->metrics_enabled);
	ep_is(&c->metrics_listen, "2001:db8::9", 9000);
	conf_free(c);
}

static void test_values(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		bool b;
	} bools[] = {{"yes", true}, {"no", false}, {"true", true}, {"false", false},
	             {"1", true},   {"0", false},  {"YES", true},  {"False", false}};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "[egressd]\nmode = host\nenforce = %s\n", bools[i].v);
		struct conf *c = load_ok(text);
		assert_int_equal(c->enforce, bools[i].b);
		assert_int_equal(c->engine.enforce, bools[i].b);
		conf_free(c);
		snprintf(text, sizeof text, "[egressd]\nmode = host\nrevoke = %s\n", bools[i].v);
		c = load_ok(text);
		assert_int_equal(c->revoke, bools[i].b);
		assert_true(c->enforce);
		conf_free(c);
	}
	struct conf *mc = load_ok("[egressd]\nmode = host\nmetadata = allow\n");
	assert_true(mc->engine.metadata_allow);
	conf_free(mc);
	mc = load_ok("[egressd]\nmode = host\nmetadata = DENY\n");
	assert_false(mc->engine.metadata_allow);
	conf_free(mc);
	/* empty metrics listen disables; empty allow means no allowlist at all */
	struct conf *c = load_ok("[egressd]\nmode = host\nallow =\n[metrics]\nlisten =\n"
	                         "[queue]\nnum = 65520\nthreads = 16\n");
	assert_false(c->metrics_enabled);
	assert_int_equal(c->nallow, 0);
	assert_int_equal(c->queue_num, 65520);
	assert_int_equal(c->queue_threads, 16);
	assert_false(c->queue_threads_auto);
	conf_free(c);
	/* threads = auto: online CPUs, 1..16, and never past queue 65535 */
	c = load_ok("[egressd]\nmode = host\n[queue]\nthreads = auto\n");
	assert_true(c->queue_threads_auto);
	assert_int_equal(c->queue_threads, conf_auto_threads());
	assert_true(c->queue_threads >= 1 && c->queue_threads <= 16);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[queue]\nnum = 65535\nthreads = auto\n");
	assert_int_equal(c->queue_threads, 1);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[queue]\nnum = 65535\n");
	assert_int_equal(c->queue_threads, 1);
	conf_free(c);
	/* CRLF and a BOM */
	c = load_ok("\xEF\xBB\xBF[egressd]\r\nmode = host\r\n[dns]\r\ndeny = refused\r\n");
	assert_int_equal(c->mode, CONF_MODE_HOST);
	conf_free(c);
	/* metrics without port takes 9469 */
	c = load_ok("[egressd]\nmode = host\n[metrics]\nlisten = 192.0.2.9\n");
	ep_is(&c->metrics_listen, "192.0.2.9", 9469);
	conf_free(c);
}

static void test_conf_errors(void **state)
{
	(void)state;
	const char *p = tpath("egressd.conf");
	struct diag d = {0};

	load_bad("[egressd]\nmode = host\n[dns]\n\n\n\n\n\n\n\n\nfoo = 1\n", &d);
	assert_true(has_line(&d, "%s:12: unknown key \"foo\" in [dns]", p));
	assert_int_equal(d.errors, 1);
	diag_clear(&d);

	load_bad("[egressd]\nmode = maybe\n", &d);
	assert_true(
	    has_line(&d, "%s:2: bad value \"maybe\" for mode (expected gateway or host)", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\nenforce = perhaps\n", &d);
	assert_true(
	    has_line(&d, "%s:3: bad value \"perhaps\" for enforce (expected yes or no)", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\nrevoke = later\n", &d);
	assert_true(has_line(&d, "%s:3: bad value \"later\" for revoke (expected yes or no)", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\nmetadata = yes\n", &d);
	assert_true(
	    has_line(&d, "%s:3: bad value \"yes\" for metadata (expected deny or allow)", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\n[bogus]\nx = 1\n", &d);
	assert_true(has_line(&d, "%s:3: unknown section \"[bogus]\"", p));
	assert_int_equal(d.errors, 1);
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\n[empty_unknown]\n", &d);
	assert_true(has_line(&d, "%s:3: unknown section \"[empty_unknown]\"", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = gateway\n", &d);
	assert_true(has_line(&d,
	                     "%s:2: mode = gateway needs [gateway] inside (the interface facing "
	                     "the protected clients)",
	                     p));
	diag_clear(&d);

	load_bad("[egressd]\n", &d); /* gateway by default, no mode line */
	assert_true(has_line(&d,
	                     "%s: mode = gateway needs [gateway] inside (the interface facing "
	                     "the protected clients)",
	                     p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\n[queue]\nthreads = 17\n", &d);
	assert_true(has_line(&d, "%s:4: bad value \"17\" for threads (expected auto or 1..16)", p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[queue]\nthreads = 0\n", &d);
	assert_true(has_line(&d, "%s:4: bad value \"0\" for threads (expected auto or 1..16)", p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[queue]\nnum = -1\n", &d);
	assert_true(
	    has_line(&d, "%s:4: bad value \"-1\" for num (expected a queue number 0..65535)", p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[queue]\nnum = 65535\nthreads = 2\n", &d);
	assert_true(has_line(&d,
	                     "%s:5: queues num..num+threads-1 go past 65535 (num = 65535, "
	                     "threads = 2)",
	                     p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\nmode = gateway\n", &d);
	assert_true(
	    has_line(&d, "%s:3: duplicate key \"mode\" in [egressd] (first set on line 2)", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\n  gateway\n", &d);
	assert_true(has_line(&d,
	                     "%s:3: indented line continues \"mode\", which takes one value (only "
	                     "allow may go on over several lines)",
	                     p));
	diag_clear(&d);

	load_bad("mode = host\n", &d);
	assert_true(has_line(&d, "%s:1: key \"mode\" outside a section", p));
	diag_clear(&d);

	load_bad("[egressd]\nmode = host\nthis is not ini\n", &d);
	assert_true(
	    has_line(&d, "%s:3: syntax error (expected \"[section]\" or \"key = value\")", p));
	diag_clear(&d);

	load_bad("[dns]\nlisten = 198.51.100.1:0\n[egressd]\nmode = host\n", &d);
	assert_true(has_line(&d,
	                     "%s:2: bad value \"198.51.100.1:0\" for listen (expected ADDR, "
	                     "ADDR:PORT or [V6]:PORT)",
	                     p));
	diag_clear(&d);
	load_bad("[dns]\nupstream = resolver.example\n[egressd]\nmode = host\n", &d);
	assert_true(has_line(&d,
	                     "%s:2: bad value \"resolver.example\" for upstream (expected ADDR, "
	                     "ADDR:PORT or [V6]:PORT)",
	                     p));
	diag_clear(&d);
	load_bad("[dns]\nlisten = 192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5\n"
	         "[egressd]\nmode = host\n",
	         &d);
	assert_true(has_line(&d, "%s:2: too many addresses for listen (at most 4)", p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[dns]\ndeny = drop\ngrace = 1m\ntimeout = 5\ntries = 0\n",
	         &d);
	assert_true(
	    has_line(&d, "%s:4: bad value \"drop\" for deny (expected refused or nxdomain)", p));
	assert_true(
	    has_line(&d, "%s:5: bad value \"1m\" for grace (expected seconds, 0..86400)", p));
	assert_true(
	    has_line(&d, "%s:6: bad value \"5\" for timeout (expected milliseconds, 100..30000)", p));
	assert_true(has_line(&d, "%s:7: bad value \"0\" for tries (expected 1..10)", p));
	assert_int_equal(d.errors, 4);
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[tls]\nunknown_ip = allow\nech = yes\n[quic]\npolicy = "
	         "allow\n[log]\nlevel = debug\nfile =\n",
	         &d);
	assert_true(
	    has_line(&d, "%s:4: bad value \"allow\" for unknown_ip (expected deny or verify)", p));
	assert_true(has_line(&d, "%s:5: bad value \"yes\" for ech (expected outer, deny or allow)", p));
	assert_true(
	    has_line(&d, "%s:7: bad value \"allow\" for policy (expected deny or inspect)", p));
	assert_true(has_line(&d, "%s:9: bad value \"debug\" for level (expected deny or all)", p));
	assert_true(has_line(
	    &d, "%s:10: bad value \"\" for file (expected a path or \"-\" for stdout)", p));
	diag_clear(&d);
	load_bad("[gateway]\ninside = this-name-is-too-long0\n", &d);
	assert_true(has_line(&d,
	                     "%s:2: bad value \"this-name-is-too-long0\" for inside (expected an "
	                     "interface name of 1 to 15 characters)",
	                     p));
	diag_clear(&d);
	load_bad("[metrics]\nlisten = localhost:9469\n[egressd]\nmode = host\n", &d);
	assert_true(
	    has_line(&d,
	             "%s:2: bad value \"localhost:9469\" for listen (expected ADDR:PORT, or "
	             "nothing to disable)",
	             p));
	diag_clear(&d);

	/* an over-long line is refused, not split */
	char big[400];
	memset(big, 'x', sizeof big);
	snprintf(big, sizeof big, "[egressd]\nmode = host\nallow = %0300d\n", 1);
	load_bad(big, &d);
	assert_true(d.n == 1 && strstr(d.lines[0], ":3: line too long"));
	diag_clear(&d);

	/* a missing file, a directory */
	struct conf *c = (struct conf *)0x1;
	assert_int_equal(conf_load(tpath("nope.conf"), &c, &d), -1);
	assert_null(c);
	assert_true(has_line(&d, "%s: cannot open: No such file or directory", tpath("nope.conf")));
	diag_clear(&d);
	c = (struct conf *)0x1;
	assert_int_equal(conf_load(tdir, &c, &d), -1);
	assert_null(c);
	diag_clear(&d);

	/* several errors in one file: all of them reported, nothing returned */
	load_bad("[egressd]\nmode = x\nenforce = y\n[nope]\n[dns]\nzap = 1\n", &d);
	assert_int_equal(d.errors, 5); /* mode, enforce, section, key, gateway needs inside */
	diag_clear(&d);
}

static void test_endpoint(void **state)
{
	(void)state;
	struct conf_endpoint ep;
	assert_int_equal(conf_parse_endpoint("192.0.2.1", 53, &ep), 0);
	ep_is(&ep, "192.0.2.1", 53);
	assert_int_equal(conf_parse_endpoint("192.0.2.1:65535", 53, &ep), 0);
	ep_is(&ep, "192.0.2.1", 65535);
	assert_int_equal(conf_parse_endpoint("[2001:db8::1]", 53, &ep), 0);
	ep_is(&ep, "2001:db8::1", 53);
	assert_int_equal(conf_parse_endpoint("2001:db8::1", 53, &ep), 0);
	ep_is(&ep, "2001:db8::1", 53);
	assert_int_equal(conf_parse_endpoint("192.0.2.1", 0, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("192.0.2.1:65536", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("192.0.2.1:", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("[192.0.2.1]:53", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("[2001:db8::1]x", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("[2001:db8::1", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("", 53, &ep), -EINVAL);
	assert_int_equal(conf_parse_endpoint("999.0.2.1", 53, &ep), -EINVAL);
}

/* ---- allowlist lines ---------------------------------------------------- */

static void parse_ok(const char *line, struct allow_entry *e)
{
	struct diag d = {0};
	int rc = allowlist_parse_line(line, "t.list", 1, e, &d);
	if (rc != 0 || d.n)
		diag_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	diag_clear(&d);
}

static void parse_bad(const char *line, const char *want)
{
	struct diag d = {0};
	struct allow_entry e;
	assert_int_equal(allowlist_parse_line(line, "allow.d/ci.list", 7, &e, &d), -EINVAL);
	assert_int_equal(d.errors, 1);
	assert_true(has_line(&d, "allow.d/ci.list:7: %s", want));
	diag_clear(&d);
}

static void range_is(const struct allow_entry *e, const char *net, unsigned prefix)
{
	char buf[ADDR_STRLEN];
	assert_int_equal(e->kind, ALLOW_RANGE);
	assert_non_null(
	    inet_ntop(e->net.family == ADDR_V4 ? AF_INET : AF_INET6, e->net.b, buf, sizeof buf));
	assert_string_equal(buf, net);
	assert_int_equal(e->prefix, prefix);
}

static void test_allow_forms(void **state)
{
	(void)state;
	struct allow_entry e;

	parse_ok("", &e);
	assert_int_equal(e.kind, ALLOW_BLANK);
	parse_ok("   # only a comment\r\n", &e);
	assert_int_equal(e.kind, ALLOW_BLANK);

	parse_ok("updates.example.com", &e);
	assert_int_equal(e.kind, ALLOW_NAME);
	assert_string_equal(e.name, "updates.example.com");
	assert_false(e.wildcard);
	assert_int_equal(e.nports, 1);
	assert_int_equal(e.ports[0], 443);
	assert_string_equal(e.text, "updates.example.com");

	parse_ok("  *.CDN.Example.COM.   # trailing dot, case, comment\r\n", &e);
	assert_int_equal(e.kind, ALLOW_NAME);
	assert_string_equal(e.name, "cdn.example.com");
	assert_true(e.wildcard);
	assert_string_equal(e.text, "*.CDN.Example.COM.");

	parse_ok("deb.debian.org:443,80,443,8080", &e);
	assert_string_equal(e.name, "deb.debian.org");
	assert_int_equal(e.nports, 3);
	assert_int_equal(e.ports[0], 80);
	assert_int_equal(e.ports[1], 443);
	assert_int_equal(e.ports[2], 8080);

	parse_ok("bücher.example", &e);
	assert_string_equal(e.name, "xn--bcher-kva.example");
	parse_ok("*.Bücher.example:8443", &e);
	assert_string_equal(e.name, "xn--bcher-kva.example");
	assert_true(e.wildcard);
	assert_int_equal(e.ports[0], 8443);
	parse_ok("xn--bcher-kva.example", &e);
	assert_string_equal(e.name, "xn--bcher-kva.example");
	parse_ok("_acme.example.org:1", &e);
	assert_string_equal(e.name, "_acme.example.org");
	assert_int_equal(e.ports[0], 1);

	parse_ok("203.0.113.0/24:443", &e);
	range_is(&e, "203.0.113.0", 24);
	assert_int_equal(e.ports[0], 443);
	parse_ok("192.0.2.7", &e);
	range_is(&e, "192.0.2.7", 32);
	assert_int_equal(e.nports, 1);
	assert_int_equal(e.ports[0], 443);
	parse_ok("192.0.2.7:22,65535", &e);
	range_is(&e, "192.0.2.7", 32);
	assert_int_equal(e.nports, 2);
	assert_int_equal(e.ports[1], 65535);
	parse_ok("[2001:db8::/32]:443", &e);
	range_is(&e, "2001:db8::", 32);
	parse_ok("[2001:db8::1]:443,80", &e);
	range_is(&e, "2001:db8::1", 128);
	assert_int_equal(e.nports, 2);
	parse_ok("[2001:DB8:1::/48]", &e);
	range_is(&e, "2001:db8:1::", 48);
	assert_int_equal(e.ports[0], 443);

	/* 64 distinct ports is the most */
	char many[600] = "many.example:";
	for (int i = 1; i <= 64; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%s%d", i > 1 ? "," : "",
		         i);
	parse_ok(many, &e);
	assert_int_equal(e.nports, 64);
	strcat(many, ",65");
	parse_bad(many, "too many ports (at most 64)");
}

static void test_allow_errors(void **state)
{
	(void)state;
	parse_bad("ci.example.com:44x", "bad port \"44x\"");
	parse_bad("ci.example.com:443,44x", "bad port \"44x\"");
	parse_bad("ci.example.com:0", "bad port \"0\"");
	parse_bad("ci.example.com:65536", "bad port \"65536\"");
	parse_bad("ci.example.com:", "bad port \"\"");
	parse_bad("ci.example.com:443,", "bad port \"\"");
	parse_bad("[2001:db8::1]:x", "bad port \"x\"");
	parse_bad("203.0.113.1/24",
	          "\"203.0.113.1/24\" has host bits set: the network is 203.0.113.0/24");
	parse_bad("[2001:db8::1/32]:443",
	          "\"[2001:db8::1/32]:443\" has host bits set: the network is [2001:db8::/32]");
	parse_bad("203.0.113.0/33", "bad prefix length \"/33\" (0..32)");
	parse_bad("203.0.113.0/", "bad prefix length \"/\" (0..32)");
	parse_bad("[2001:db8::/129]", "bad prefix length \"/129\" (0..128)");
	parse_bad("203.0.113.256", "bad IPv4 address \"203.0.113.256\"");
	parse_bad("1.2.3", "bad IPv4 address \"1.2.3\"");
	parse_bad("[2001:db8::zz]", "bad IPv6 address \"2001:db8::zz\"");
	parse_bad("2001:db8::1:443",
	          "IPv6 goes in brackets: \"[2001:db8::1:443]\", or \"[ADDR]:PORT\"");
	parse_bad("[192.0.2.1]:443", "brackets are for IPv6 addresses, not \"192.0.2.1\"");
	parse_bad("[2001:db8::1", "missing \"]\" in \"[2001:db8::1\"");
	parse_bad("[2001:db8::1]443",
	          "unexpected \"443\" after \"]\" (expected \":PORT[,PORT...]\")");
	parse_bad("*", "wildcard \"*\" would allow every name; write \"*.example.com\"");
	parse_bad("*:443", "wildcard \"*\" would allow every name; write \"*.example.com\"");
	parse_bad("a.*.b", "bad wildcard \"a.*.b\": \"*\" may only be the whole leftmost label, as "
	                   "in \"*.example.com\"");
	parse_bad("*foo.b", "bad wildcard \"*foo.b\": \"*\" may only be the whole leftmost label, "
	                    "as in \"*.example.com\"");
	parse_bad("*.*.b", "bad wildcard \"*.*.b\": \"*\" may only be the whole leftmost label, as "
	                   "in \"*.example.com\"");
	parse_bad("*.", "bad name \"*.\": empty name");
	parse_bad("a..example", "bad name \"a..example\": empty label or label longer than 63 "
	                        "characters");
	parse_bad("exa$mple.com", "bad name \"exa$mple.com\": only letters, digits, '-', '_' and "
	                          "'.' are allowed");
	parse_bad("updates.example.com exactly this name",
	          "unexpected \"exactly\" after \"updates.example.com\" (one entry per line, "
	          "then optionally the word \"shared\"; comments start with \"#\")");
	/* the shared word: after the entry (ports included), once, spelt so */
	parse_bad("shared *.blob.core.windows.net",
	          "\"shared\" goes after the entry, as in \"*.blob.core.windows.net shared\"");
	parse_bad("*.blob.core.windows.net shared shared", "\"shared\" given twice");
	parse_bad("*.blob.core.windows.net Shared",
	          "unexpected \"Shared\" after \"*.blob.core.windows.net\" (one entry per line, "
	          "then optionally the word \"shared\"; comments start with \"#\")");
	parse_bad("*.blob.core.windows.net shared:443",
	          "unexpected \"shared:443\" after \"*.blob.core.windows.net\" (one entry per "
	          "line, then optionally the word \"shared\"; comments start with \"#\")");
	parse_bad("*.blob.core.windows.net,shared", "bad name \"*.blob.core.windows.net,shared\": "
	                                            "only letters, digits, '-', '_' and '.' are "
	                                            "allowed");
	parse_bad("*.blob.core.windows.net:shared", "bad port \"shared\"");
	parse_bad("*.blob.core.windows.net:443 shared all", "unexpected \"all\" after "
	          "\"*.blob.core.windows.net:443\" (one entry per line, then optionally the word "
	          "\"shared\"; comments start with \"#\")");
}

/* A wildcard over a suffix anyone can register below: an error naming the fix. */
static void covers_bad(const char *line, const char *what)
{
	char want[1024];
	snprintf(want, sizeof want,
	         "wildcard \"%s\" covers %s: anyone can register a name below it, an attacker "
	         "too. List the exact names you need, or write \"%s shared\" to allow every "
	         "tenant",
	         line, what, line);
	parse_bad(line, want);
}

static void test_allow_warnings(void **state)
{
	(void)state;
	/* public suffixes (libpsl, ICANN and private sections) */
	covers_bad("*.github.io", "the public suffix \"github.io\"");
	covers_bad("*.co.uk", "the public suffix \"co.uk\"");
	covers_bad("*.com", "the public suffix \"com\"");
	covers_bad("*.GitHub.IO.", "the public suffix \"github.io\"");
	covers_bad("*.githubusercontent.com", "the public suffix \"githubusercontent.com\"");
	/* the multi-tenant list: the suffix itself, an ancestor, a "*" label */
	covers_bad("*.blob.core.windows.net", "the multi-tenant suffix \"blob.core.windows.net\"");
	covers_bad("*.core.windows.net", "the multi-tenant suffix \"blob.core.windows.net\"");
	covers_bad("*.windows.net", "the multi-tenant suffix \"blob.core.windows.net\"");
	covers_bad("*.amazonaws.com", "the multi-tenant suffix \"s3.amazonaws.com\"");
	covers_bad("*.s3.eu-west-1.amazonaws.com", "the multi-tenant suffix \"s3.*.amazonaws.com\"");
	covers_bad("*.dkr.ecr.us-east-1.amazonaws.com",
	           "the multi-tenant suffix \"dkr.ecr.*.amazonaws.com\"");
	covers_bad("*.z13.web.core.windows.net", "the multi-tenant suffix \"*.web.core.windows.net\"");
	covers_bad("*.azurecr.io", "the multi-tenant suffix \"azurecr.io\"");

	/* not shared: no warning, no error */
	struct allow_entry e;
	parse_ok("*.cdn.example.com", &e);
	parse_ok("*.actions.githubusercontent.com", &e); /* only GitHub names hosts there */
	parse_ok("*.debian.org", &e);
	parse_ok("*.myaccount.blob.core.windows.net", &e); /* one tenant's own names */
	parse_ok("evilstorage.blob.core.windows.net", &e); /* one exact tenant */
	parse_ok("blob.core.windows.net", &e);
	assert_false(e.shared);

	/* marked shared: accepted, kept in the entry and its text */
	parse_ok("*.blob.core.windows.net shared", &e);
	assert_true(e.shared && e.wildcard);
	assert_string_equal(e.name, "blob.core.windows.net");
	assert_string_equal(e.text, "*.blob.core.windows.net shared");
	parse_ok("  *.github.io:443,8443\tshared   # pages of anyone ", &e);
	assert_true(e.shared);
	assert_int_equal(e.nports, 2);
	assert_string_equal(e.text, "*.github.io:443,8443 shared");

	/* shared where it changes nothing: a warning */
	struct diag d = {0};
	assert_int_equal(allowlist_parse_line("*.example.com shared", "w.list", 5, &e, &d), 0);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has_line(&d, "w.list:5: warning: \"*.example.com\" is marked shared, but "
	                         "\"example.com\" is not a known public or multi-tenant suffix: "
	                         "the word changes nothing"));
	diag_clear(&d);
	assert_int_equal(allowlist_parse_line("a.example.com shared", "w.list", 6, &e, &d), 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has_line(&d, "w.list:6: warning: \"shared\" is for wildcards (\"*.name "
	                         "shared\"); \"a.example.com\" is one name, the word changes "
	                         "nothing"));
	diag_clear(&d);

	assert_int_equal(allowlist_parse_line("[2001:db8::/32]:443 shared", "w.list", 7, &e, &d), 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has_line(&d, "w.list:7: warning: \"shared\" is for wildcards (\"*.name "
	                         "shared\"); on the range \"[2001:db8::/32]:443\" the word changes "
	                         "nothing"));
	diag_clear(&d);

	assert_int_equal(allowlist_parse_line("0.0.0.0/0:53", "w.list", 4, &e, &d), 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has_line(&d, "w.list:4: warning: \"0.0.0.0/0:53\" covers every IPv4 address"));
	diag_clear(&d);
}

/* The built-in list is config/multitenant.list, every entry well-formed. */
static void test_multitenant_list(void **state)
{
	(void)state;
	const char *const *mt;
	size_t n = allowlist_builtin_multitenant(&mt);
	assert_true(n >= 50);
	FILE *f = fopen(SRCDIR "/config/multitenant.list", "r");
	assert_non_null(f);
	char line[512];
	size_t k = 0;
	while (fgets(line, sizeof line, f)) {
		char *h = strchr(line, '#');
		if (h)
			*h = '\0';
		char *w = strtok(line, " \t\r\n");
		if (!w)
			continue;
		assert_null(strtok(NULL, " \t\r\n")); /* one suffix per line */
		assert_true(k < n);
		assert_string_equal(mt[k], w);
		k++;
	}
	fclose(f);
	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++) {
		char what[512];
		struct diag d = {0};
		/* each entry refuses the wildcard over itself (with "*" labels made concrete) */
		char base[300];
		size_t o = 0;
		for (const char *p = mt[i]; *p && o + 8 < sizeof base; p++) {
			if (*p == '*') {
				memcpy(base + o, "region1", 7);
				o += 7;
			} else {
				assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				            *p == '-' || *p == '.' || *p == '_');
				base[o++] = *p;
			}
		}
		base[o] = '\0';
		assert_int_equal(allowlist_shared_suffix(base, what, sizeof what, &d), 1);
		assert_int_equal(d.errors, 0);
	}
}

/* The local list ($EGRESSD_MULTITENANT) adds suffixes; its mistakes are errors at its lines. */
static void test_multitenant_local(void **state)
{
	(void)state;
	write_file("mt.list", "# local\n"
	                      "tenants.example.net   # our own PaaS\n"
	                      "*.apps.example.org\n"
	                      "\n");
	setenv("EGRESSD_MULTITENANT", tpath("mt.list"), 1);
	write_file("allow.d/a.list", "*.tenants.example.net\n"
	                             "*.eu.apps.example.org\n"
	                             "*.example.net shared\n"
	                             "*.x.tenants.example.net\n");
	struct diag d = {0};
	struct conf *c = load_ok("[egressd]\nmode = host\nallow = allow.d/a.list\n");
	assert_null(conf_load_policy(c, &d));
	assert_int_equal(d.errors, 2);
	assert_true(has_line(&d, "%s:1: wildcard \"*.tenants.example.net\" covers the multi-tenant "
	                         "suffix \"tenants.example.net\" (listed locally): anyone can "
	                         "register a name below it, an attacker too. List the exact names "
	                         "you need, or write \"*.tenants.example.net shared\" to allow "
	                         "every tenant",
	                     tpath("allow.d/a.list")));
	assert_true(has_line(&d, "%s:2: wildcard \"*.eu.apps.example.org\" covers the multi-tenant "
	                         "suffix \"*.apps.example.org\" (listed locally): anyone can "
	                         "register a name below it, an attacker too. List the exact names "
	                         "you need, or write \"*.eu.apps.example.org shared\" to allow "
	                         "every tenant",
	                     tpath("allow.d/a.list")));
	diag_clear(&d);

	/* a bad local list fails the load even without any wildcard */
	write_file("mt.list", "ok.example\n"
	                      "two words.example\n"
	                      "*.*\n"
	                      "a*.example\n"
	                      "bad$.example\n");
	write_file("allow.d/a.list", "exact.example.com\n");
	assert_null(conf_load_policy(c, &d));
	assert_int_equal(d.errors, 4);
	assert_true(has_line(&d, "%s:2: bad multi-tenant suffix \"two words.example\": one suffix "
	                         "per line", tpath("mt.list")));
	assert_true(has_line(&d, "%s:3: bad multi-tenant suffix \"*.*\": a pattern of \"*\" labels "
	                         "only would cover every name", tpath("mt.list")));
	assert_true(has_line(&d, "%s:4: bad multi-tenant suffix \"a*.example\": \"*\" must be a "
	                         "whole label", tpath("mt.list")));
	assert_true(has_line(&d, "%s:5: bad multi-tenant suffix \"bad$.example\": only letters, "
	                         "digits, '-', '_', '.' and whole-label \"*\" are allowed",
	                     tpath("mt.list")));
	diag_clear(&d);

	/* no local list: only the built-in one */
	setenv("EGRESSD_MULTITENANT", tpath("none.list"), 1);
	write_file("allow.d/a.list", "*.tenants.example.net\n*.blob.core.windows.net shared\n");
	struct policy *p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_int_equal(d.errors + d.warnings, 0);
	struct policy_stats st;
	policy_stats(p, &st);
	assert_int_equal(st.wildcards, 2);
	assert_int_equal(st.shared, 1);
	const struct policy_rule *r = policy_match_name(p, "evil.blob.core.windows.net", 443, NULL);
	assert_non_null(r);
	assert_true(r->shared);
	assert_string_equal(r->text, "*.blob.core.windows.net shared");
	r = policy_match_name(p, "a.tenants.example.net", 443, NULL);
	assert_non_null(r);
	assert_false(r->shared);
	policy_free(p);
	conf_free(c);
	diag_clear(&d);
}

/* ---- files, presets, globs, policy ---------------------------------------- */

static void test_allow_file_lines(void **state)
{
	(void)state;
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	write_file("allow.d/ci.list", "# CI endpoints\n"
	                              "\n"
	                              "deb.debian.org:80,443\n"
	                              "*.cdn.example.com\r\n"
	                              "203.0.113.0/24:443\n"
	                              "[2001:db8::/32]:443\n"
	                              "ci.example.com:44x\n");
	write_file("egressd.conf", "[egressd]\nmode = host\nallow = allow.d/ci.list\n");
	/* relative config path: messages carry the SPEC's exact shape */
	assert_int_equal(chdir(tdir), 0);
	struct diag d = {0};
	struct conf *c = NULL;
	assert_int_equal(conf_load("egressd.conf", &c, &d), 0);
	assert_null(conf_load_policy(c, &d));
	assert_int_equal(d.errors, 1);
	assert_true(has_line(&d, "allow.d/ci.list:7: bad port \"44x\""));
	diag_clear(&d);
	conf_free(c);

	/* fixed: builds, and each entry answers with its FILE:LINE */
	write_file("allow.d/ci.list", "# CI endpoints\n"
	                              "\n"
	                              "deb.debian.org:80,443\n"
	                              "*.cdn.example.com\r\n"
	                              "203.0.113.0/24:443\n"
	                              "[2001:db8::/32]:443\n"
	                              "ci.example.com:443  # fixed\n"
	                              "Bücher.example\n");
	assert_int_equal(conf_load("egressd.conf", &c, &d), 0);
	struct policy *p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_int_equal(d.errors + d.warnings, 0);
	const struct policy_rule *r;
	bool known = false;
	r = policy_match_name(p, "deb.debian.org", 80, NULL);
	assert_non_null(r);
	assert_string_equal(r->file, "allow.d/ci.list");
	assert_int_equal(r->line, 3);
	assert_string_equal(r->text, "deb.debian.org:80,443");
	assert_null(policy_match_name(p, "deb.debian.org", 22, &known));
	assert_true(known);
	r = policy_match_name(p, "a.cdn.example.com", 443, NULL);
	assert_non_null(r);
	assert_int_equal(r->line, 4);
	assert_null(policy_match_name(p, "cdn.example.com", 443, NULL));
	r = policy_match_name(p, "xn--bcher-kva.example", 443, NULL);
	assert_non_null(r);
	assert_int_equal(r->line, 8);
	struct addr a = {.family = ADDR_V4, .b = {203, 0, 113, 77}};
	r = policy_match_addr(p, &a, 443, NULL);
	assert_non_null(r);
	assert_int_equal(r->line, 5);
	assert_null(policy_match_addr(p, &a, 80, NULL));
	struct addr a6 = {.family = ADDR_V6};
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:5::1", a6.b), 1);
	r = policy_match_addr(p, &a6, 443, NULL);
	assert_non_null(r);
	assert_int_equal(r->line, 6);
	policy_free(p);
	conf_free(c);
	assert_int_equal(chdir(cwd), 0);

	/* allowlist_add_file directly; a missing file */
	struct policy_builder *b = policy_builder_new();
	assert_non_null(b);
	assert_int_equal(allowlist_add_file(b, tpath("allow.d/ci.list"), &d), 0);
	assert_true(allowlist_add_file(b, tpath("allow.d/none.list"), &d) < 0);
	assert_true(
	    has_line(&d, "%s: cannot open: No such file or directory", tpath("allow.d/none.list")));
	assert_true(allowlist_add_file(b, "/dev/null", &d) < 0);
	assert_true(has_line(&d, "/dev/null: not a regular file"));
	assert_int_equal(allowlist_add_line(b, "  # nothing", "x", 1, &d), 0);
	assert_int_equal(allowlist_add_line(b, "x.example:1,2", "x", 2, &d), 0);
	assert_int_equal(allowlist_add_line(b, "x.example:1,2x", "x", 3, &d), -EINVAL);
	assert_true(has_line(&d, "x:3: bad port \"2x\""));
	p = policy_builder_finish(b);
	assert_non_null(p);
	r = policy_match_name(p, "x.example", 2, NULL);
	assert_non_null(r);
	assert_string_equal(r->file, "x");
	assert_int_equal(r->line, 2);
	policy_free(p);
	diag_clear(&d);
}

static void test_allow_items(void **state)
{
	(void)state;
	struct diag d = {0};
	struct conf *c;

	/* globs: sorted expansion; a glob matching nothing warns; a named missing file errs */
	write_file("allow.d/a.list", "a.example\n");
	write_file("allow.d/b.list", "b.example\n");
	write_file("allow.d/c.txt", "c.example\n");
	c = load_ok("[egressd]\nmode = host\nallow = allow.d/*.list\n  nothing/*.list\n");
	struct policy *p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has_line(&d, "%s:4: warning: \"%s\" matches no file", tpath("egressd.conf"),
	                     tpath("nothing/*.list")));
	assert_non_null(policy_match_name(p, "a.example", 443, NULL));
	assert_non_null(policy_match_name(p, "b.example", 443, NULL));
	assert_null(policy_match_name(p, "c.example", 443, NULL));
	policy_free(p);
	conf_free(c);
	diag_clear(&d);

	c = load_ok("[egressd]\nmode = host\nallow = allow.d/a.list allow.d/missing.list\n");
	assert_null(conf_load_policy(c, &d));
	assert_int_equal(d.errors, 1);
	assert_true(has_line(&d, "%s:3: cannot open \"%s\": No such file or directory",
	                     tpath("egressd.conf"), tpath("allow.d/missing.list")));
	conf_free(c);
	diag_clear(&d);

	/* absolute paths are taken as they are */
	char text[PATH_MAX + 64];
	snprintf(text, sizeof text, "[egressd]\nmode = host\nallow = %s\n",
	         tpath("allow.d/b.list"));
	c = load_ok(text);
	p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_non_null(policy_match_name(p, "b.example", 443, NULL));
	assert_null(policy_match_name(p, "a.example", 443, NULL));
	policy_free(p);
	conf_free(c);

	/* presets, from EGRESSD_PRESET_DIR */
	write_file("allow.d/p1.list", "preset-one.example\n");
	write_file("allow.d/p2.list", "*.example.org shared\n");
	setenv("EGRESSD_PRESET_DIR", tpath("allow.d"), 1);
	c = load_ok("[egressd]\nmode = host\nallow = preset:p1 preset:p2\n");
	p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1); /* the needless "shared", at its own line */
	assert_true(has_line(&d,
	                     "%s:1: warning: \"*.example.org\" is marked shared, but "
	                     "\"example.org\" is not a known public or multi-tenant suffix: the "
	                     "word changes nothing",
	                     tpath("allow.d/p2.list")));
	assert_non_null(policy_match_name(p, "preset-one.example", 443, NULL));
	policy_free(p);
	conf_free(c);
	diag_clear(&d);

	c = load_ok("[egressd]\nmode = host\nallow = preset:nosuch\n");
	assert_null(conf_load_policy(c, &d));
	assert_true(has_line(&d, "%s:3: unknown preset \"nosuch\" (available: a, b, p1, p2)",
	                     tpath("egressd.conf")));
	conf_free(c);
	diag_clear(&d);
	c = load_ok("[egressd]\nmode = host\nallow = preset:../etc/passwd\n");
	assert_null(conf_load_policy(c, &d));
	assert_int_equal(d.errors, 1);
	conf_free(c);
	diag_clear(&d);

	struct policy_builder *b = policy_builder_new();
	assert_int_equal(allowlist_add_preset(b, "p1", &d), 0);
	assert_true(allowlist_add_preset(b, "zz", &d) < 0);
	assert_true(has_line(&d, "unknown preset \"zz\" (available: a, b, p1, p2)"));
	policy_builder_free(b);
	diag_clear(&d);
	setenv("EGRESSD_PRESET_DIR", SRCDIR "/config/presets", 1);

	/* no allow at all: an empty policy that denies everything */
	c = load_ok("[egressd]\nmode = host\nallow =\n");
	p = conf_load_policy(c, &d);
	assert_non_null(p);
	assert_null(policy_match_name(p, "a.example", 443, NULL));
	policy_free(p);
	conf_free(c);
}

static void test_presets_clean(void **state)
{
	(void)state;
	static const char *const want[] = {"debian",         "ubuntu",     "pypi", "npm",
	                                   "github-actions", "docker-hub", "ghcr", "trivy"};
	glob_t g;
	assert_int_equal(glob(SRCDIR "/config/presets/*.list", 0, NULL, &g), 0);
	assert_true(g.gl_pathc >= sizeof want / sizeof want[0]);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct diag d = {0};
		struct policy_builder *b = policy_builder_new();
		assert_non_null(b);
		int rc = allowlist_add_file(b, g.gl_pathv[i], &d);
		if (rc != 0 || d.n)
			diag_print(&d, stderr);
		assert_int_equal(rc, 0);
		assert_int_equal(d.errors, 0);
		assert_int_equal(d.warnings, 0);
		struct policy *p = policy_builder_finish(b);
		assert_non_null(p);
		struct policy_stats st;
		policy_stats(p, &st);
		assert_true(st.exact_names + st.wildcards + st.ranges > 0);
		policy_free(p);
		diag_clear(&d);
	}
	globfree(&g);
	struct diag d = {0};
	/* the GitHub Action's runner list: clean, and no storage account but GitHub's */
	struct policy_builder *rb = policy_builder_new();
	assert_int_equal(allowlist_add_file(rb, SRCDIR "/packaging/github-action/runner.list", &d), 0);
	assert_int_equal(d.errors + d.warnings, 0);
	struct policy *rp = policy_builder_finish(rb);
	assert_non_null(rp);
	assert_non_null(policy_match_name(rp, "productionresultssa0.blob.core.windows.net", 443, NULL));
	assert_null(policy_match_name(rp, "evilstorage.blob.core.windows.net", 443, NULL));
	assert_null(policy_match_name(rp, "productionresultssa22.blob.core.windows.net", 443, NULL));
	struct policy_stats rst;
	policy_stats(rp, &rst);
	assert_int_equal(rst.shared, 0);
	policy_free(rp);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct policy_builder *b = policy_builder_new();
		assert_int_equal(allowlist_add_preset(b, want[i], &d), 0);
		policy_builder_free(b);
	}
	assert_int_equal(d.errors, 0);

	/* trivy: its update hosts, and deliberately not the code-hosting API / upload hosts */
	struct policy_builder *b = policy_builder_new();
	assert_int_equal(allowlist_add_preset(b, "trivy", &d), 0);
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	assert_non_null(policy_match_name(p, "mirror.gcr.io", 443, NULL));
	assert_non_null(policy_match_name(p, "ghcr.io", 443, NULL));
	assert_non_null(policy_match_name(p, "pkg-containers.githubusercontent.com", 443, NULL));
	assert_null(policy_match_name(p, "api.github.com", 443, NULL));
	assert_null(policy_match_name(p, "uploads.github.com", 443, NULL));
	assert_null(policy_match_name(p, "github.com", 443, NULL));
	policy_free(p);
	diag_clear(&d);
}

static void test_shipped_conf(void **state)
{
	(void)state;
	struct diag d = {0};
	struct conf *c = NULL;
	int rc = conf_load(SRCDIR "/config/egressd.conf", &c, &d);
	if (rc != 0)
		diag_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(d.errors + d.warnings, 0);
	assert_int_equal(c->mode, CONF_MODE_GATEWAY);
	assert_true(c->enforce);
	assert_true(c->revoke);
	assert_int_equal(c->nallow, 1);
	assert_string_equal(c->allow[0], "/etc/egressd/allow.d/*.list");
	assert_int_equal(c->engine.unknown_ip, UNKNOWN_IP_DENY);
	assert_int_equal(c->engine.ech, ECH_OUTER);
	assert_false(c->engine.quic_inspect);
	assert_true(c->metrics_enabled);
	ep_is(&c->metrics_listen, "127.0.0.1", 9469);
	conf_free(c);
}

/* [dns] container_port: host mode's container DNS listener (issue 9, class 5). */
static void test_container_port(void **state)
{
	(void)state;
	const char *p = tpath("egressd.conf");
	struct diag d = {0};
	struct conf *c = load_ok("[egressd]\nmode = host\n");
	assert_int_equal(c->dns_container_port, 5399);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[dns]\ncontainer_port = 0\n");
	assert_int_equal(c->dns_container_port, 0);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[dns]\ncontainer_port = 65535\n");
	assert_int_equal(c->dns_container_port, 65535);
	conf_free(c);
	load_bad("[egressd]\nmode = host\n[dns]\ncontainer_port = 65536\n", &d);
	assert_true(has_line(&d, "%s:4: bad value \"65536\" for container_port (expected a port, "
	                         "1..65535, or 0 to turn it off)",
	                     p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[dns]\ncontainer_port = 53x\n", &d);
	assert_int_equal(d.errors, 1);
	diag_clear(&d);
}

/* [queue] mark_mask: hex, at least MARK_BITS (4) bits, errors at file:line. */
static void test_mark_mask(void **state)
{
	(void)state;
	struct diag d = {0};
	struct conf *c = load_ok("[egressd]\nmode = host\n");
	assert_int_equal(c->mark_mask, 0x0f000000u);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[queue]\nmark_mask = 0x00f00000\n");
	assert_int_equal(c->mark_mask, 0x00f00000u);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[queue]\nmark_mask = 0X80300001\n");
	assert_int_equal(c->mark_mask, 0x80300001u);
	conf_free(c);

	const char *p = tpath("egressd.conf");
	load_bad("[egressd]\nmode = host\n[queue]\nmark_mask = 0x00700000\n", &d);
	assert_true(has_line(&d, "%s:4: mark_mask = 0x00700000 has 3 bit(s); egressd needs at "
	                         "least 4 (e.g. 0x0f000000)", p));
	diag_clear(&d);
	load_bad("[egressd]\nmode = host\n[queue]\nmark_mask = 0\n", &d);
	assert_true(has_line(&d, "%s:4: bad value \"0\" for mark_mask (expected a 32-bit hex mask "
	                         "such as 0x0f000000)", p));
	diag_clear(&d);
	static const char *const bad[] = {"251658240", "0x", "0x1ffffffff", "0xf000000g",
	                                  "-0x0f000000", "0x0f000000 0x1", "0x+f000000", "0x f000000"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "[egressd]\nmode = host\n[queue]\nmark_mask = %s\n", bad[i]);
		load_bad(text, &d);
		assert_true(has_line(&d, "%s:4: bad value \"%s\" for mark_mask (expected a 32-bit "
		                         "hex mask such as 0x0f000000)", p, bad[i]));
		diag_clear(&d);
	}
}

static void test_diag(void **state)
{
	(void)state;
	struct diag d = {0};
	diag_error(&d, "f", 2, "e %d", 1);
	diag_error(&d, "f", 0, "no line");
	diag_error(&d, NULL, 0, "no file");
	diag_warn(&d, "f", 9, "w");
	assert_int_equal(d.errors, 3);
	assert_int_equal(d.warnings, 1);
	assert_int_equal(d.n, 4);
	assert_string_equal(d.lines[0], "f:2: e 1");
	assert_string_equal(d.lines[1], "f: no line");
	assert_string_equal(d.lines[2], "no file");
	assert_string_equal(d.lines[3], "f:9: warning: w");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	diag_print(&d, m);
	fclose(m);
	assert_string_equal(buf, "f:2: e 1\nf: no line\nno file\nf:9: warning: w\n");
	free(buf);
	diag_clear(&d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.errors, 0);
	diag_clear(&d);
}

/* [dns] max_ttl (issue 9, class 6): default 3600, seconds 1..604800. */
static void test_dns_max_ttl(void **state)
{
	(void)state;
	struct conf *c = load_ok("[egressd]\nmode = host\n");
	assert_int_equal(c->engine.bind_max_ttl, 3600);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[dns]\nmax_ttl = 300\n");
	assert_int_equal(c->engine.bind_max_ttl, 300);
	conf_free(c);
	c = load_ok("[egressd]\nmode = host\n[dns]\nmax_ttl = 604800\n");
	assert_int_equal(c->engine.bind_max_ttl, 604800);
	conf_free(c);

	struct diag d = {0};
	const char *p = tpath("egressd.conf");
	const char *bad[] = {"0", "604801", "1h"};
	for (size_t i = 0; i < 3; i++) {
		char text[128];
		snprintf(text, sizeof(text), "[egressd]\nmode = host\n[dns]\nmax_ttl = %s\n", bad[i]);
		load_bad(text, &d);
		assert_true(has_line(&d,
		                     "%s:4: bad value \"%s\" for max_ttl (expected seconds, 1..604800)",
		                     p, bad[i]));
		assert_int_equal(d.errors, 1);
		diag_clear(&d);
	}
}

int main(void)
{
	/* no local multi-tenant list from the machine running the tests */
	setenv("EGRESSD_MULTITENANT", "/nonexistent/egressd-test-multitenant.list", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diag),
	    cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conf_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_container_port, setup, teardown),
	    cmocka_unit_test(test_endpoint),
	    cmocka_unit_test(test_allow_forms),
	    cmocka_unit_test(test_allow_errors),
	    cmocka_unit_test(test_allow_warnings),
	    cmocka_unit_test(test_multitenant_list),
	    cmocka_unit_test_setup_teardown(test_multitenant_local, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allow_file_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allow_items, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_presets_clean, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shipped_conf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_max_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mark_mask, setup, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
