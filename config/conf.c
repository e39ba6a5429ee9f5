/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd.conf: INI read by libinih, every key checked here.
 *
 *   [section]            ; or # comment, also after a value
 *   key = value
 *     continuation       ; (indented) "allow" only: more items
 *
 * libinih hands us keys but not their line numbers, so it reads through
 * conf_reader(), which feeds it exactly one line per call and counts them;
 * the handler runs synchronously for the line just read. The reader also
 * checks section headers (libinih never reports an empty unknown section)
 * and refuses lines too long for libinih's buffer instead of letting it
 * split them. Every problem is collected; any error discards the whole
 * config (nothing half-applied).
 */
#include "conf.h"
#include "../nfq/marks.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define CONF_DEFAULT_ALLOW "/etc/egressd/allow.d/*.list"
#define CONF_DEFAULT_METRICS_PORT 9469
#define CONF_DEFAULT_GRACE_S 60
#define CONF_MAX_GRACE_S 86400
#define CONF_MAX_MAX_TTL_S 604800
#define CONF_DEFAULT_MAX_TTL_S 3600
#define CONF_MAX_THREADS 16

struct conf_parse;
typedef void conf_setter(struct conf_parse *st, const char *key, const char *v);

struct conf_key {
	const char *section;
	const char *key;
	conf_setter *set;
};

struct conf_parse {
	struct conf *c;
	struct diag *d;
	const char *file;
	FILE *f;
	char *buf;
	size_t bufcap;
	unsigned lineno;
	bool indented;         /* the current line starts with blanks (a continuation) */
	bool allow_seen;       /* first allow key replaces the default */
	unsigned key_line[32]; /* per conf_keys[] index: line it was set on */
	unsigned mode_line, num_line, threads_line;
};

static bool conf_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

static void conf_bad(struct conf_parse *st, const char *key, const char *v, const char *expected)
{
	diag_error(st->d, st->file, st->lineno, "bad value \"%s\" for %s (expected %s)", v, key,
	           expected);
}

/* Decimal digits only, no sign, at most max. */
static bool conf_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool conf_parse_addr(const char *s, struct addr *a)
{
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->family = ADDR_V4;
		return true;
	}
	if (inet_pton(AF_INET6, s, a->b) == 1) {
		a->family = ADDR_V6;
		return true;
	}
	memset(a, 0, sizeof *a);
	return false;
}

/*
 * "192.0.2.1", "192.0.2.1:53", "[2001:db8::1]", "[2001:db8::1]:53",
 * "2001:db8::1" (bare IPv6 takes no port).
 */
int conf_parse_endpoint(const char *s, uint16_t default_port, struct conf_endpoint *out)
{
	char host[64];
	const char *port = NULL;
	unsigned long p;
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof host)
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -EINVAL;
		if (!strchr(host, ':'))
			return -EINVAL; /* brackets are for IPv6 */
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* bare IPv6 */
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof host)
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (!conf_parse_addr(host, &out->addr))
		return -EINVAL;
	if (port) {
		if (!conf_parse_uint(port, 65535, &p) || p == 0)
			return -EINVAL;
		out->port = (uint16_t)p;
	} else {
		if (default_port == 0)
			return -EINVAL;
		out->port = default_port;
	}
	return 0;
}

/* yes|no, true|false, on|off, 1|0 */
static int conf_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int conf_add_allow(struct conf *c, const char *item)
{
	char **na = realloc(c->allow, (c->nallow + 1) * sizeof *na);
	if (!na)
		return -ENOMEM;
	c->allow = na;
	unsigned *nl = realloc(c->allow_line, (c->nallow + 1) * sizeof *nl);
	if (!nl)
		return -ENOMEM;
	c->allow_line = nl;
	char *dup = strdup(item);
	if (!dup)
		return -ENOMEM;
	c->allow[c->nallow] = dup;
	c->allow_line[c->nallow] = 0;
	c->nallow++;
	return 0;
}

static void conf_clear_allow(struct conf *c)
{
	for (size_t i = 0; i < c->nallow; i++)
		free(c->allow[i]);
	free(c->allow);
	free(c->allow_line);
	c->allow = NULL;
	c->allow_line = NULL;
	c->nallow = 0;
}

/* ---- setters, one per key ------------------------------------------- */

/* A key that takes one of two words; *second tells which. */
static void set_choice(struct conf_parse *st, const char *key, const char *v, const char *first,
                       const char *second_word, bool *second)
{
	if (!strcasecmp(v, first)) {
		*second = false;
	} else if (!strcasecmp(v, second_word)) {
		*second = true;
	} else {
		char expect[64];
		snprintf(expect, sizeof expect, "%s or %s", first, second_word);
		conf_bad(st, key, v, expect);
	}
}

static void set_mode(struct conf_parse *st, const char *key, const char *v)
{
	bool host = st->c->mode == CONF_MODE_HOST;
	st->mode_line = st->lineno;
	set_choice(st, key, v, "gateway", "host", &host);
	st->c->mode = host ? CONF_MODE_HOST : CONF_MODE_GATEWAY;
}

static void set_enforce(struct conf_parse *st, const char *key, const char *v)
{
	bool b;

	if (conf_parse_bool(v, &b) != 0) {
		conf_bad(st, key, v, "yes or no");
		return;
	}
	st->c->enforce = b;
	st->c->engine.enforce = b;
}

static void set_revoke(struct conf_parse *st, const char *key, const char *v)
{
	bool b;

	if (conf_parse_bool(v, &b) != 0) {
		conf_bad(st, key, v, "yes or no");
		return;
	}
	st->c->revoke = b;
}

/* [egressd] metadata = deny | allow (issue 12): the cloud metadata guard. */
static void set_metadata(struct conf_parse *st, const char *key, const char *v)
{
	bool allow = st->c->engine.metadata_allow;
	set_choice(st, key, v, "deny", "allow", &allow);
	st->c->engine.metadata_allow = allow;
}

static void set_allow(struct conf_parse *st, const char *key, const char *v)
{
	if (!st->allow_seen) {
		conf_clear_allow(st->c); /* the file's allow replaces the default */
		st->allow_seen = true;
	}
	const char *p = v;
	while (*p) {
		while (*p && conf_is_space(*p))
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && !conf_is_space(*e))
			e++;
		char item[PATH_MAX];
		size_t n = (size_t)(e - p);
		if (n >= sizeof item) {
			diag_error(st->d, st->file, st->lineno, "allow item too long");
			return;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (!strncmp(item, "preset:", 7) && item[7] == '\0') {
			diag_error(st->d, st->file, st->lineno,
			           "bad value \"%s\" for allow (expected preset:NAME)", item);
		} else if (conf_add_allow(st->c, item) != 0) {
			diag_error(st->d, st->file, st->lineno, "out of memory");
			return;
		} else {
			st->c->allow_line[st->c->nallow - 1] = st->lineno;
		}
		p = e;
	}
}

static void set_inside(struct conf_parse *st, const char *key, const char *v)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n < sizeof st->c->inside && strcmp(v, ".") && strcmp(v, "..");

	for (size_t i = 0; ok && i < n; i++)
		if (v[i] == '/' || v[i] == ':' || conf_is_space(v[i]) ||
		    (unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			ok = false;
	if (!ok) {
		conf_bad(st, key, v, "an interface name of 1 to 15 characters");
		return;
	}
	memcpy(st->c->inside, v, n + 1);
}

static void set_queue_num(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long n;

	if (!conf_parse_uint(v, 65535, &n)) {
		conf_bad(st, key, v, "a queue number 0..65535");
		return;
	}
	st->c->queue_num = (unsigned)n;
	st->num_line = st->lineno;
}

/* [queue] threads = auto: one worker per online CPU, 1..CONF_MAX_THREADS. */
unsigned conf_auto_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CONF_MAX_THREADS ? CONF_MAX_THREADS : (unsigned)n;
}

static void set_queue_threads(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long n;

	if (strcmp(v, "auto") == 0) {
		st->c->queue_threads = conf_auto_threads();
		st->c->queue_threads_auto = true;
		st->threads_line = st->lineno;
		return;
	}
	if (!conf_parse_uint(v, CONF_MAX_THREADS, &n) || n == 0) {
		conf_bad(st, key, v, "auto or 1..16");
		return;
	}
	st->c->queue_threads = (unsigned)n;
	st->c->queue_threads_auto = false;
	st->threads_line = st->lineno;
}

/* [queue] mark_mask: the packet/conntrack mark bits egressd owns. Its marks
 * are small values placed in these bits (nfq/marks.h), so it needs at least
 * MARK_BITS of them, contiguous or not. */
static void set_queue_mark_mask(struct conf_parse *st, const char *key, const char *v)
{
	char *end = NULL;
	unsigned long long n = 0;

	errno = 0;
	/* strtoull would take blanks and a sign after "0x": digits only */
	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X') && isxdigit((unsigned char)v[2]))
		n = strtoull(v + 2, &end, 16);
	if (!end || end == v + 2 || *end || errno || n > 0xffffffffull) {
		conf_bad(st, key, v, "a 32-bit hex mask such as 0x0f000000");
		return;
	}
	if (marks_bits((uint32_t)n) < MARK_BITS) {
		diag_error(st->d, st->file, st->lineno,
		           "mark_mask = %s has %d bit(s); egressd needs at least %d (e.g. 0x0f000000)",
		           v, marks_bits((uint32_t)n), MARK_BITS);
		return;
	}
	st->c->mark_mask = (uint32_t)n;
}

static void set_endpoints(struct conf_parse *st, const char *key, const char *v,
                          struct conf_endpoint *eps, size_t *n, size_t max)
{
	const char *p = v;
	size_t count = 0;

	while (*p) {
		while (*p && conf_is_space(*p))
			p++;
		if (!*p)
			break;
		const char *e = p;
		while (*e && !conf_is_space(*e))
			e++;
		char tok[80];
		size_t len = (size_t)(e - p);
		struct conf_endpoint ep;
		if (len >= sizeof tok) {
			conf_bad(st, key, v, "ADDR[:PORT] items");
			return;
		}
		memcpy(tok, p, len);
		tok[len] = '\0';
		if (conf_parse_endpoint(tok, 53, &ep) != 0) {
			diag_error(
			    st->d, st->file, st->lineno,
			    "bad value \"%s\" for %s (expected ADDR, ADDR:PORT or [V6]:PORT)", tok,
			    key);
			return;
		}
		if (count == max) {
			diag_error(st->d, st->file, st->lineno,
			           "too many addresses for %s (at most %zu)", key, max);
			return;
		}
		eps[count++] = ep;
		p = e;
	}
	*n = count;
}

static void set_dns_listen(struct conf_parse *st, const char *key, const char *v)
{
	set_endpoints(st, key, v, st->c->dns_listen, &st->c->ndns_listen, CONF_MAX_LISTEN);
}

static void set_dns_upstream(struct conf_parse *st, const char *key, const char *v)
{
	set_endpoints(st, key, v, st->c->dns_upstream, &st->c->ndns_upstream,
	              sizeof st->c->dns_upstream / sizeof st->c->dns_upstream[0]);
}

static void set_dns_deny(struct conf_parse *st, const char *key, const char *v)
{
	bool nx = st->c->dns_deny_rcode == DNS_RCODE_NXDOMAIN;
	set_choice(st, key, v, "refused", "nxdomain", &nx);
	st->c->dns_deny_rcode = nx ? DNS_RCODE_NXDOMAIN : DNS_RCODE_REFUSED;
}

static void set_dns_grace(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long s;

	if (!conf_parse_uint(v, CONF_MAX_GRACE_S, &s)) {
		conf_bad(st, key, v, "seconds, 0..86400");
		return;
	}
	st->c->engine.bind_grace_ns = (uint64_t)s * 1000000000ULL;
}

/* Upstream failure: how long until a client gets SERVFAIL (timeout x tries x servers). */
static void set_dns_timeout(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long ms;

	if (!conf_parse_uint(v, 30000, &ms) || ms < 100) {
		conf_bad(st, key, v, "milliseconds, 100..30000");
		return;
	}
	st->c->dns_timeout_ms = (unsigned)ms;
}

static void set_dns_tries(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long n;

	if (!conf_parse_uint(v, 10, &n) || n < 1) {
		conf_bad(st, key, v, "1..10");
		return;
	}
	st->c->dns_tries = (unsigned)n;
}

/* A binding lives at most this long, whatever TTL the answer claims (then grace). */
static void set_dns_max_ttl(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long s;

	if (!conf_parse_uint(v, CONF_MAX_MAX_TTL_S, &s) || s < 1) {
		conf_bad(st, key, v, "seconds, 1..604800");
		return;
	}
	st->c->engine.bind_max_ttl = (uint32_t)s;
}

/* Host mode: the port of the wildcard listener that DNS forwarded for the
 * namespaces behind the host (containers) is redirected to; 0 = off. */
static void set_dns_container_port(struct conf_parse *st, const char *key, const char *v)
{
	unsigned long n;

	if (!conf_parse_uint(v, 65535, &n)) {
		conf_bad(st, key, v, "a port, 1..65535, or 0 to turn it off");
		return;
	}
	st->c->dns_container_port = (uint16_t)n;
}

static void set_tls_unknown_ip(struct conf_parse *st, const char *key, const char *v)
{
	bool verify = st->c->engine.unknown_ip == UNKNOWN_IP_VERIFY;
	set_choice(st, key, v, "deny", "verify", &verify);
	st->c->engine.unknown_ip = verify ? UNKNOWN_IP_VERIFY : UNKNOWN_IP_DENY;
}

static void set_tls_ech(struct conf_parse *st, const char *key, const char *v)
{
	if (!strcasecmp(v, "outer"))
		st->c->engine.ech = ECH_OUTER;
	else if (!strcasecmp(v, "deny"))
		st->c->engine.ech = ECH_DENY;
	else if (!strcasecmp(v, "allow"))
		st->c->engine.ech = ECH_ALLOW;
	else
		conf_bad(st, key, v, "outer, deny or allow");
}

static void set_quic_policy(struct conf_parse *st, const char *key, const char *v)
{
	set_choice(st, key, v, "deny", "inspect", &st->c->engine.quic_inspect);
}

static void set_log_file(struct conf_parse *st, const char *key, const char *v)
{
	if (!*v) {
		conf_bad(st, key, v, "a path or \"-\" for stdout");
		return;
	}
	char *dup = strdup(v);
	if (!dup) {
		diag_error(st->d, st->file, st->lineno, "out of memory");
		return;
	}
	free(st->c->log_file);
	st->c->log_file = dup;
}

static void set_log_level(struct conf_parse *st, const char *key, const char *v)
{
	bool all = st->c->log_level == CONF_LOG_ALL;
	set_choice(st, key, v, "deny", "all", &all);
	st->c->log_level = all ? CONF_LOG_ALL : CONF_LOG_DENY;
}

static void set_log_host(struct conf_parse *st, const char *key, const char *v)
{
	(void)key;
	char *dup = strdup(v); /* "" is kept: it turns the host key off */
	if (!dup) {
		diag_error(st->d, st->file, st->lineno, "out of memory");
		return;
	}
	free(st->c->log_host);
	st->c->log_host = dup;
}

static void set_metrics_listen(struct conf_parse *st, const char *key, const char *v)
{
	struct conf_endpoint ep;

	if (!*v) {
		st->c->metrics_enabled = false;
		return;
	}
	if (conf_parse_endpoint(v, CONF_DEFAULT_METRICS_PORT, &ep) != 0) {
		conf_bad(st, key, v, "ADDR:PORT, or nothing to disable");
		return;
	}
	st->c->metrics_enabled = true;
	st->c->metrics_listen = ep;
}

static const struct conf_key conf_keys[] = {
    {"egressd", "mode", set_mode},
    {"egressd", "enforce", set_enforce},
    {"egressd", "allow", set_allow},
    {"egressd", "revoke", set_revoke},
    {"egressd", "metadata", set_metadata},
    {"gateway", "inside", set_inside},
    {"queue", "num", set_queue_num},
    {"queue", "threads", set_queue_threads},
    {"queue", "mark_mask", set_queue_mark_mask},
    {"dns", "listen", set_dns_listen},
    {"dns", "upstream", set_dns_upstream},
    {"dns", "deny", set_dns_deny},
    {"dns", "grace", set_dns_grace},
    {"dns", "timeout", set_dns_timeout},
    {"dns", "tries", set_dns_tries},
    {"dns", "max_ttl", set_dns_max_ttl},
    {"dns", "container_port", set_dns_container_port},
    {"tls", "unknown_ip", set_tls_unknown_ip},
    {"tls", "ech", set_tls_ech},
    {"quic", "policy", set_quic_policy},
    {"log", "file", set_log_file},
    {"log", "level", set_log_level},
    {"log", "host", set_log_host},
    {"metrics", "listen", set_metrics_listen},
};
#define CONF_NKEYS (sizeof conf_keys / sizeof conf_keys[0])
_Static_assert(CONF_NKEYS <= sizeof((struct conf_parse *)0)->key_line /
                                 sizeof((struct conf_parse *)0)->key_line[0],
               "key_line too small");

static const char *const conf_sections[] = {
    "egressd", "gateway", "queue", "dns", "tls", "quic", "log", "metrics",
};

static bool conf_section_known(const char *s)
{
	for (size_t i = 0; i < sizeof conf_sections / sizeof conf_sections[0]; i++)
		if (!strcasecmp(s, conf_sections[i]))
			return true;
	return false;
}

/* ---- libinih plumbing ------------------------------------------------ */

/*
 * One whole line per call (so lineno is the line the handler sees), CR
 * removed. A line that does not fit libinih's buffer is reported and
 * replaced by an empty one rather than split into two.
 */
static char *conf_reader(char *str, int num, void *stream)
{
	struct conf_parse *st = stream;
	ssize_t n = getline(&st->buf, &st->bufcap, st->f);

	if (n == -1)
		return NULL;
	st->lineno++;
	size_t len = (size_t)n;
	if (memchr(st->buf, '\0', len)) {
		diag_error(st->d, st->file, st->lineno, "NUL byte in line");
		len = 0;
	}
	while (len > 0 && (st->buf[len - 1] == '\n' || st->buf[len - 1] == '\r'))
		len--;
	st->buf[len] = '\0';
	st->indented = st->buf[0] == ' ' || st->buf[0] == '\t';
	if (num < 2 || len + 2 > (size_t)num) {
		diag_error(st->d, st->file, st->lineno, "line too long (at most %d characters)",
		           num > 2 ? num - 2 : 0);
		len = 0;
		st->buf[0] = '\0';
	}

	/* "[name]" headers: libinih says nothing about an unknown empty section. */
	const char *p = st->buf;
	if (st->lineno == 1 && !strncmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '[') {
		const char *end = strchr(p, ']');
		if (end) {
			char name[64];
			size_t nl = (size_t)(end - p - 1);
			if (nl >= sizeof name) {
				diag_error(st->d, st->file, st->lineno, "unknown section \"%.*s\"",
				           (int)(end - p + 1), p);
			} else {
				memcpy(name, p + 1, nl);
				name[nl] = '\0';
				if (!conf_section_known(name))
					diag_error(st->d, st->file, st->lineno,
					           "unknown section \"[%s]\"", name);
			}
		}
	}

	memcpy(str, st->buf, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parse *st = user;
	char v[256];

	if (!*section) {
		diag_error(st->d, st->file, st->lineno, "key \"%s\" outside a section", name);
		return 1;
	}
	if (!conf_section_known(section))
		return 1; /* reported once, at its header */

	/* Inline '#' comments (libinih only knows ';' inline). */
	size_t n = strlen(value);
	if (n >= sizeof v)
		n = sizeof v - 1; /* cannot happen: lines are shorter */
	memcpy(v, value, n);
	v[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '#' && (i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t')) {
			v[i] = '\0';
			n = i;
			break;
		}
	}
	while (n > 0 && conf_is_space(v[n - 1]))
		v[--n] = '\0';

	for (size_t i = 0; i < CONF_NKEYS; i++) {
		if (strcasecmp(section, conf_keys[i].section) || strcasecmp(name, conf_keys[i].key))
			continue;
		if (st->key_line[i] && conf_keys[i].set != set_allow && st->indented) {
			diag_error(st->d, st->file, st->lineno,
			           "indented line continues \"%s\", which takes one value "
			           "(only allow may go on over several lines)",
			           name);
			return 1;
		}
		if (st->key_line[i] && conf_keys[i].set != set_allow) {
			diag_error(st->d, st->file, st->lineno,
			           "duplicate key \"%s\" in [%s] (first set on line %u)", name,
			           conf_keys[i].section, st->key_line[i]);
			return 1;
		}
		st->key_line[i] = st->lineno;
		conf_keys[i].set(st, conf_keys[i].key, v);
		return 1;
	}
	diag_error(st->d, st->file, st->lineno, "unknown key \"%s\" in [%s]", name, section);
	return 1;
}

/* ---- public ---------------------------------------------------------- */

struct conf *conf_new_defaults(void)
{
	struct conf *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->mode = CONF_MODE_GATEWAY;
	c->enforce = true;
	c->revoke = true;
	c->queue_num = 0;
	c->queue_threads = conf_auto_threads(); /* [queue] threads = auto */
	c->queue_threads_auto = true;
	c->mark_mask = MARK_MASK_DEFAULT;
	c->dns_deny_rcode = DNS_RCODE_REFUSED;
	c->log_level = CONF_LOG_DENY;
	c->metrics_enabled = true;
	c->metrics_listen.addr.family = ADDR_V4;
	c->metrics_listen.addr.b[0] = 127;
	c->metrics_listen.addr.b[3] = 1;
	c->metrics_listen.port = CONF_DEFAULT_METRICS_PORT;
	engine_config_defaults(&c->engine);
	c->engine.enforce = true;
	c->engine.unknown_ip = UNKNOWN_IP_DENY;
	c->engine.ech = ECH_OUTER;
	c->engine.quic_inspect = false;
	c->engine.bind_grace_ns = (uint64_t)CONF_DEFAULT_GRACE_S * 1000000000ULL;
	c->engine.bind_max_ttl = CONF_DEFAULT_MAX_TTL_S;
	c->dns_timeout_ms = 1500;
	c->dns_tries = 2;
	c->dns_container_port = CONF_DEFAULT_CONTAINER_PORT;
	c->log_file = strdup("-");
	if (!c->log_file) {
		free(c);
		return NULL;
	}
	return c;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	conf_clear_allow(c);
	free(c->path);
	free(c->log_file);
	free(c->log_host);
	free(c);
}

int conf_load(const char *path, struct conf **out, struct diag *d)
{
	struct conf_parse st = {.d = d, .file = path};
	unsigned errors0 = d->errors;
	struct stat sb;
	int rc;

	*out = NULL;
	st.c = conf_new_defaults();
	if (!st.c) {
		diag_error(d, path, 0, "out of memory");
		return -1;
	}
	st.c->path = strdup(path);
	if (!st.c->path) {
		diag_error(d, path, 0, "out of memory");
		goto fail;
	}
	st.f = fopen(path, "re");
	if (!st.f) {
		diag_error(d, path, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (fstat(fileno(st.f), &sb) == -1) {
		diag_error(d, path, 0, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(sb.st_mode)) {
		diag_error(d, path, 0, "is a directory");
		goto fail;
	}

	rc = ini_parse_stream(conf_reader, &st, conf_handler, &st);
	if (ferror(st.f)) {
		diag_error(d, path, 0, "read error");
		goto fail;
	}
	if (rc == -2) {
		diag_error(d, path, 0, "out of memory");
		goto fail;
	}
	if (rc > 0) /* the handler never fails, so this is libinih's own complaint */
		diag_error(d, path, (unsigned)rc,
		           "syntax error (expected \"[section]\" or \"key = value\")");

	if (st.c->mode == CONF_MODE_GATEWAY && !st.c->inside[0])
		diag_error(d, path, st.mode_line,
		           "mode = gateway needs [gateway] inside (the interface facing the "
		           "protected clients)");
	/* auto never makes an error: it takes the queues there are below 65536 */
	if (st.c->queue_threads_auto && st.c->queue_num + st.c->queue_threads - 1 > 65535)
		st.c->queue_threads = 65536 - st.c->queue_num;
	if (st.c->queue_num + st.c->queue_threads - 1 > 65535)
		diag_error(d, path, st.threads_line > st.num_line ? st.threads_line : st.num_line,
		           "queues num..num+threads-1 go past 65535 (num = %u, threads = %u)",
		           st.c->queue_num, st.c->queue_threads);
	if (!st.allow_seen && conf_add_allow(st.c, CONF_DEFAULT_ALLOW) != 0)
		diag_error(d, path, 0, "out of memory");

	if (d->errors != errors0)
		goto fail;
	fclose(st.f);
	free(st.buf);
	*out = st.c;
	return 0;

fail:
	if (st.f)
		fclose(st.f);
	free(st.buf);
	conf_free(st.c);
	return -1;
}
