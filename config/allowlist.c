/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allowlist files: one entry per line, '#' starts a comment, CRLF tolerated.
 *
 *   updates.example.com            name, TCP 443
 *   *.cdn.example.com              strictly below cdn.example.com
 *   deb.debian.org:80,443          ports 1..65535, duplicates folded
 *   bücher.example                 UTF-8 becomes the A-label xn--bcher-kva.example
 *   203.0.113.0/24:443             IPv4 range (host bits must be zero)
 *   192.0.2.7                      one address (/32)
 *   [2001:db8::/32]:443            IPv6 always in brackets; "[2001:db8::1]" is a /128
 *   *.blob.core.windows.net shared a wildcard over a shared suffix, said so
 *
 * Every refusal is an error at FILE:LINE; the caller builds no policy if
 * there was one. A wildcard that covers a public suffix (libpsl, ICANN and
 * private sections) or a multi-tenant service suffix (multitenant.list,
 * built in, plus the local EGRESSD_MULTITENANT_LOCAL file) lets anyone
 * register a name it allows: an error unless the line ends in "shared".
 */
#include "conf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <idn2.h>
#include <libpsl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "multitenant_builtin.h"

#ifndef EGRESSD_MULTITENANT_LOCAL
#define EGRESSD_MULTITENANT_LOCAL "/etc/egressd/multitenant.list"
#endif

#define ALLOW_MAX_LINE 4096
#define ALLOW_MAX_ERRORS_PER_FILE 50
#define ALLOW_DEFAULT_PORT 443

static bool allow_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

static bool allow_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Keep the first prefix bits of a (same as addr_mask, kept local). */
static void allow_mask(struct addr *a, unsigned prefix)
{
	unsigned bits = a->family == ADDR_V4 ? 32 : 128;

	for (unsigned i = 0; i < bits / 8; i++) {
		if (prefix >= (i + 1) * 8)
			continue;
		if (prefix <= i * 8)
			a->b[i] = 0;
		else
			a->b[i] &= (uint8_t)(0xff << (8 - (prefix - i * 8)));
	}
}

static const char *allow_addr_str(const struct addr *a, char *buf)
{
	if (!inet_ntop(a->family == ADDR_V4 ? AF_INET : AF_INET6, a->b, buf, ADDR_STRLEN))
		snprintf(buf, ADDR_STRLEN, "?");
	return buf;
}

static const char *allow_name_err(enum name_err e)
{
	switch (e) {
	case NAME_OK:
		return "ok";
	case NAME_EMPTY:
		return "empty name";
	case NAME_TOO_LONG:
		return "longer than 253 characters";
	case NAME_BAD_LABEL:
		return "empty label or label longer than 63 characters";
	case NAME_BAD_CHAR:
		return "only letters, digits, '-', '_' and '.' are allowed";
	case NAME_IP_LITERAL:
		return "looks like an IP address";
	case NAME_ERR_COUNT_:
		break;
	}
	return "invalid";
}

/*
 * "443" or "80,443,8443" -> ascending distinct ports. An empty list
 * ("name:") and port 0 are bad ports too.
 */
static int allow_parse_ports(const char *s, struct allow_entry *e, const char *file, unsigned line,
                             struct diag *d)
{
	e->nports = 0;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		unsigned long p = 0;

		if (!allow_digits(s, n) || n > 5) {
			diag_error(d, file, line, "bad port \"%.*s\"", (int)(n > 32 ? 32 : n), s);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			p = p * 10 + (unsigned long)(s[i] - '0');
		if (p == 0 || p > 65535) {
			diag_error(d, file, line, "bad port \"%.*s\"", (int)n, s);
			return -EINVAL;
		}
		/* insert sorted, fold duplicates */
		size_t at = 0;
		while (at < e->nports && e->ports[at] < p)
			at++;
		if (at == e->nports || e->ports[at] != p) {
			if (e->nports == POLICY_MAX_PORTS) {
				diag_error(d, file, line, "too many ports (at most %d)",
				           POLICY_MAX_PORTS);
				return -EINVAL;
			}
			memmove(&e->ports[at + 1], &e->ports[at],
			        (e->nports - at) * sizeof e->ports[0]);
			e->ports[at] = (uint16_t)p;
			e->nports++;
		}
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

/* "addr" or "addr/len"; v6 says which family is expected. */
static int allow_parse_range(const char *host, bool v6, const char *text, struct allow_entry *e,
                             const char *file, unsigned line, struct diag *d)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(host, '/');
	size_t al = slash ? (size_t)(slash - host) : strlen(host);
	unsigned bits = v6 ? 128 : 32;
	char buf[ADDR_STRLEN];

	memset(&e->net, 0, sizeof e->net);
	if (al >= sizeof a || (memcpy(a, host, al), a[al] = '\0',
	                       inet_pton(v6 ? AF_INET6 : AF_INET, a, e->net.b) != 1)) {
		diag_error(d, file, line, "bad %s address \"%.*s\"", v6 ? "IPv6" : "IPv4",
		           (int)(al > 64 ? 64 : al), host);
		return -EINVAL;
	}
	e->net.family = v6 ? ADDR_V6 : ADDR_V4;
	e->prefix = bits;
	if (slash) {
		const char *pl = slash + 1;
		size_t n = strlen(pl);
		if (!allow_digits(pl, n) || n > 3 || (unsigned)atoi(pl) > bits) {
			diag_error(d, file, line, "bad prefix length \"/%.*s\" (0..%u)",
			           (int)(n > 8 ? 8 : n), pl, bits);
			return -EINVAL;
		}
		e->prefix = (unsigned)atoi(pl);
	}
	struct addr net = e->net;
	allow_mask(&net, e->prefix);
	if (memcmp(net.b, e->net.b, sizeof net.b)) {
		diag_error(d, file, line, "\"%s\" has host bits set: the network is %s%s/%u%s",
		           text, v6 ? "[" : "", allow_addr_str(&net, buf), e->prefix,
		           v6 ? "]" : "");
		return -EINVAL;
	}
	if (e->prefix == 0)
		diag_warn(d, file, line, "\"%s\" covers every %s address", text,
		          v6 ? "IPv6" : "IPv4");
	e->kind = ALLOW_RANGE;
	return 0;
}

/* ---- shared suffixes ------------------------------------------------------ */

/* The local multi-tenant list, read on first use and again per conf_load_policy. */
static struct {
	bool loaded;
	char **pat;
	size_t n;
} allow_mt;

static void allow_mt_reset(void)
{
	for (size_t i = 0; i < allow_mt.n; i++)
		free(allow_mt.pat[i]);
	free(allow_mt.pat);
	allow_mt.pat = NULL;
	allow_mt.n = 0;
	allow_mt.loaded = false;
}

/*
 * A multi-tenant pattern: ASCII labels of letters, digits, '-' and '_', 1..63
 * each, or "*" for any one label; at least one label that is not "*".
 * Lowercased in place. NULL if good, else why not.
 */
static const char *allow_mt_check(char *pat)
{
	size_t n = strlen(pat), lab = 0;
	bool concrete = false, star = false;

	if (n == 0 || n > NAME_MAX_LEN)
		return "empty or longer than 253 characters";
	if (pat[n - 1] == '.')
		pat[--n] = '\0';
	for (size_t i = 0; i <= n; i++) {
		char c = pat[i];
		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > 63)
				return "empty label or label longer than 63 characters";
			if (!star)
				concrete = true;
			lab = 0;
			star = false;
			continue;
		}
		if (c == '*') {
			if (lab != 0 || (pat[i + 1] != '.' && pat[i + 1] != '\0'))
				return "\"*\" must be a whole label";
			star = true;
		} else if (c >= 'A' && c <= 'Z') {
			pat[i] = (char)(c - 'A' + 'a');
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		             c == '_')) {
			return "only letters, digits, '-', '_', '.' and whole-label \"*\" are allowed";
		}
		lab++;
	}
	return concrete ? NULL : "a pattern of \"*\" labels only would cover every name";
}

/* Read the local list (missing file: none). Problems are errors at its file:line. */
static void allow_mt_load(struct diag *d)
{
	const char *env = getenv("EGRESSD_MULTITENANT");
	const char *path = env && *env ? env : EGRESSD_MULTITENANT_LOCAL;
	char *buf = NULL;
	size_t cap = 0;
	unsigned line = 0;
	FILE *f;

	allow_mt_reset();
	allow_mt.loaded = true;
	f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT)
			diag_error(d, path, 0, "cannot open the multi-tenant suffix list: %s",
			           strerror(errno));
		return;
	}
	for (ssize_t len; (len = getline(&buf, &cap, f)) != -1;) {
		line++;
		char *s = buf, *hash = memchr(buf, '#', (size_t)len), *end;
		end = hash ? hash : buf + len;
		while (s < end && allow_is_space(*s))
			s++;
		while (end > s && allow_is_space(end[-1]))
			end--;
		if (s == end)
			continue;
		*end = '\0';
		const char *why = memchr(buf, '\0', (size_t)len) != end ? "NUL byte in line"
		                  : strpbrk(s, " \t\v\f")              ? "one suffix per line"
		                                                        : allow_mt_check(s);
		if (why) {
			diag_error(d, path, line, "bad multi-tenant suffix \"%.64s\": %s", s, why);
			continue;
		}
		char **np = realloc(allow_mt.pat, (allow_mt.n + 1) * sizeof *np);
		char *dup = np ? strdup(s) : NULL;
		if (np)
			allow_mt.pat = np;
		if (!dup) {
			diag_error(d, path, line, "out of memory");
			break;
		}
		allow_mt.pat[allow_mt.n++] = dup;
	}
	free(buf);
	fclose(f);
}

/*
 * Does the wildcard "*.base" allow a name that matches pat, or a name below
 * one (base equal to, or an ancestor of, a name pat stands for)? Labels are
 * compared from the right; a "*" label in pat matches any one label.
 */
static bool allow_covers(const char *base, const char *pat)
{
	size_t bi = strlen(base), pi = strlen(pat);

	while (bi > 0) {
		if (pi == 0)
			return false; /* base is below the suffix: one tenant's names */
		size_t bs = bi, ps = pi;
		while (bs > 0 && base[bs - 1] != '.')
			bs--;
		while (ps > 0 && pat[ps - 1] != '.')
			ps--;
		bool star = pi - ps == 1 && pat[ps] == '*';
		if (!star && (bi - bs != pi - ps || strncasecmp(base + bs, pat + ps, bi - bs)))
			return false;
		bi = bs ? bs - 1 : 0;
		pi = ps ? ps - 1 : 0;
	}
	return true;
}

static const psl_ctx_t *allow_psl(void);

int allowlist_shared_suffix(const char *base, char *what, size_t whatlen, struct diag *d)
{
	const psl_ctx_t *psl = allow_psl();
	char probe[NAME_MAX_LEN + 32];

	if (!allow_mt.loaded)
		allow_mt_load(d);
	if (psl && psl_is_public_suffix2(psl, base, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE)) {
		snprintf(what, whatlen, "the public suffix \"%s\"", base);
		return 1;
	}
	/* a "*.base" rule in the list: every name below base is a public suffix */
	snprintf(probe, sizeof probe, "egressd-probe.%s", base);
	if (psl && psl_is_public_suffix2(psl, probe, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE)) {
		snprintf(what, whatlen, "the public suffixes \"*.%s\"", base);
		return 1;
	}
	for (size_t i = 0; i < sizeof allow_builtin_multitenant / sizeof allow_builtin_multitenant[0];
	     i++) {
		if (allow_covers(base, allow_builtin_multitenant[i])) {
			snprintf(what, whatlen, "the multi-tenant suffix \"%s\"",
			         allow_builtin_multitenant[i]);
			return 1;
		}
	}
	for (size_t i = 0; i < allow_mt.n; i++) {
		if (allow_covers(base, allow_mt.pat[i])) {
			snprintf(what, whatlen, "the multi-tenant suffix \"%s\" (listed locally)",
			         allow_mt.pat[i]);
			return 1;
		}
	}
	return 0;
}

size_t allowlist_builtin_multitenant(const char *const **out)
{
	*out = allow_builtin_multitenant;
	return sizeof allow_builtin_multitenant / sizeof allow_builtin_multitenant[0];
}

static const psl_ctx_t *allow_psl(void)
{
	static const psl_ctx_t *psl;
	static bool tried;

	if (!tried) {
		tried = true;
		psl = psl_builtin();
		if (!psl)
			psl = psl_latest(NULL); /* kept for the process lifetime */
	}
	return psl;
}

static int allow_parse_name(const char *host, const char *text, struct allow_entry *e,
                            const char *file, unsigned line, struct diag *d)
{
	const char *base = host;
	char *alabel = NULL;
	enum name_err why = NAME_OK;

	e->wildcard = false;
	if (!strcmp(host, "*")) {
		diag_error(d, file, line,
		           "wildcard \"*\" would allow every name; write \"*.example.com\"");
		return -EINVAL;
	}
	if (!strncmp(host, "*.", 2)) {
		e->wildcard = true;
		base = host + 2;
	}
	if (strchr(base, '*')) {
		diag_error(d, file, line,
		           "bad wildcard \"%s\": \"*\" may only be the whole leftmost label, as in "
		           "\"*.example.com\"",
		           host);
		return -EINVAL;
	}
	for (const char *p = base; *p; p++) {
		if ((unsigned char)*p >= 0x80) {
			int rc = idn2_to_ascii_8z(base, &alabel, IDN2_NONTRANSITIONAL);
			if (rc != IDN2_OK) {
				diag_error(d, file, line, "bad name \"%s\": %s", host,
				           idn2_strerror(rc));
				return -EINVAL;
			}
			base = alabel;
			break;
		}
	}
	if (!name_normalize(base, strlen(base), e->name, &why) || !e->name[0]) {
		diag_error(d, file, line, "bad name \"%s\": %s", host,
		           allow_name_err(why == NAME_OK ? NAME_EMPTY : why));
		idn2_free(alabel);
		return -EINVAL;
	}
	idn2_free(alabel);
	e->kind = ALLOW_NAME;

	if (!e->wildcard) {
		if (e->shared)
			diag_warn(d, file, line,
			          "\"shared\" is for wildcards (\"*.name shared\"); \"%s\" is one "
			          "name, the word changes nothing",
			          text);
		return 0;
	}
	char what[NAME_MAX_LEN + 64];
	if (allowlist_shared_suffix(e->name, what, sizeof what, d)) {
		if (e->shared)
			return 0;
		diag_error(d, file, line,
		           "wildcard \"%s\" covers %s: anyone can register a name below it, an "
		           "attacker too. List the exact names you need, or write \"%s shared\" "
		           "to allow every tenant",
		           text, what, text);
		return -EINVAL;
	}
	if (e->shared)
		diag_warn(d, file, line,
		          "\"%s\" is marked shared, but \"%s\" is not a known public or "
		          "multi-tenant suffix: the word changes nothing",
		          text, e->name);
	return 0;
}

int allowlist_parse_line(const char *text, const char *file, unsigned line, struct allow_entry *out,
                         struct diag *d)
{
	const char *s = text, *end;
	char host[512];
	const char *ports = NULL;
	bool v6 = false, bracket = false;

	memset(out, 0, sizeof *out);
	out->kind = ALLOW_BLANK;

	/* cut the comment, trim */
	end = strchr(s, '#');
	if (!end)
		end = s + strlen(s);
	while (s < end && allow_is_space(*s))
		s++;
	while (end > s && allow_is_space(end[-1]))
		end--;
	size_t n = (size_t)(end - s);
	if (n == 0)
		return 0;
	if (n >= sizeof out->text) {
		diag_error(d, file, line, "entry too long (%zu characters)", n);
		return -EINVAL;
	}
	/* the entry, then words: "shared" is the only one */
	char t[sizeof out->text];
	size_t tl = 0;
	while (tl < n && !allow_is_space(s[tl]))
		tl++;
	for (size_t i = 0; i < n; i++) {
		if (!allow_is_space(s[i]) && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)) {
			diag_error(d, file, line, "control character in entry");
			return -EINVAL;
		}
	}
	memcpy(t, s, tl);
	t[tl] = '\0';
	for (size_t i = tl; i < n;) {
		while (i < n && allow_is_space(s[i]))
			i++;
		size_t w = i;
		while (i < n && !allow_is_space(s[i]))
			i++;
		if (i == w)
			break;
		if (i - w == 6 && !strncmp(s + w, "shared", 6)) {
			if (out->shared) {
				diag_error(d, file, line, "\"shared\" given twice");
				return -EINVAL;
			}
			out->shared = true;
		} else if (!strcmp(t, "shared")) {
			diag_error(d, file, line,
			           "\"shared\" goes after the entry, as in \"%.*s shared\"",
			           (int)(i - w > 200 ? 200 : i - w), s + w);
			return -EINVAL;
		} else {
			diag_error(d, file, line,
			           "unexpected \"%.*s\" after \"%s\" (one entry per line, then "
			           "optionally the word \"shared\"; comments start with \"#\")",
			           (int)(i - w > 64 ? 64 : i - w), s + w, t);
			return -EINVAL;
		}
	}
	memcpy(out->text, t, tl + 1); /* tl + 7 <= n < sizeof out->text when shared */
	if (out->shared)
		memcpy(out->text + tl, " shared", 8);
	if (t[0] == '[') {
		const char *rb = strchr(t, ']');
		if (!rb) {
			diag_error(d, file, line, "missing \"]\" in \"%s\"", t);
			return -EINVAL;
		}
		memcpy(host, t + 1, (size_t)(rb - t - 1));
		host[rb - t - 1] = '\0';
		if (rb[1] == ':')
			ports = rb + 2;
		else if (rb[1] != '\0') {
			diag_error(d, file, line,
			           "unexpected \"%s\" after \"]\" (expected \":PORT[,PORT...]\")",
			           rb + 1);
			return -EINVAL;
		}
		v6 = bracket = true;
	} else {
		const char *colon = strchr(t, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* "2001:db8::1:443" could be either: brackets say which */
			diag_error(d, file, line,
			           "IPv6 goes in brackets: \"[%s]\", or \"[ADDR]:PORT\"", t);
			return -EINVAL;
		} else {
			size_t hl = colon ? (size_t)(colon - t) : n;
			memcpy(host, t, hl);
			host[hl] = '\0';
			if (colon)
				ports = colon + 1;
		}
	}

	if (ports) {
		int rc = allow_parse_ports(ports, out, file, line, d);
		if (rc != 0) {
			out->kind = ALLOW_BLANK;
			return rc;
		}
	} else {
		out->ports[0] = ALLOW_DEFAULT_PORT;
		out->nports = 1;
	}

	int rc;
	if (v6) {
		if (!strchr(host, ':') && bracket) {
			diag_error(d, file, line, "brackets are for IPv6 addresses, not \"%s\"",
			           host);
			rc = -EINVAL;
		} else {
			rc = allow_parse_range(host, true, t, out, file, line, d);
		}
	} else if (strchr(host, '/') || (host[0] && strspn(host, "0123456789.") == strlen(host))) {
		rc = allow_parse_range(host, false, t, out, file, line, d);
	} else {
		rc = allow_parse_name(host, t, out, file, line, d);
	}
	if (rc != 0)
		out->kind = ALLOW_BLANK;
	else if (out->kind == ALLOW_RANGE && out->shared)
		diag_warn(d, file, line,
		          "\"shared\" is for wildcards (\"*.name shared\"); on the range \"%s\" "
		          "the word changes nothing",
		          t);
	return rc;
}

int allowlist_add_line(struct policy_builder *b, const char *text, const char *file, unsigned line,
                       struct diag *d)
{
	struct allow_entry e;
	int rc = allowlist_parse_line(text, file, line, &e, d);

	if (rc != 0 || e.kind == ALLOW_BLANK)
		return rc;
	if (e.kind == ALLOW_NAME) {
		rc = policy_builder_add_name(b, e.name, e.wildcard, e.ports, e.nports, file, line,
		                             e.text);
		if (rc == 0 && e.shared && e.wildcard)
			rc = policy_builder_mark_shared(b);
	}
	else
		rc = policy_builder_add_range(b, &e.net, e.prefix, e.ports, e.nports, file, line,
		                              e.text);
	if (rc == -ENOMEM)
		diag_error(d, file, line, "out of memory");
	else if (rc != 0)
		diag_error(d, file, line, "entry \"%s\" refused by the policy (%s)", e.text,
		           strerror(-rc));
	return rc;
}

/*
 * Read path line by line. where_file/where_line, when set, is the config
 * line that named it: a file that cannot be opened is reported there.
 */
static int allow_add_file_at(struct policy_builder *b, const char *path, const char *where_file,
                             unsigned where_line, struct diag *d)
{
	unsigned errors0 = d->errors;
	char *buf = NULL;
	size_t cap = 0;
	unsigned line = 0;
	struct stat sb;
	int rc = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		int err = errno;
		if (where_file)
			diag_error(d, where_file, where_line, "cannot open \"%s\": %s", path,
			           strerror(err));
		else
			diag_error(d, path, 0, "cannot open: %s", strerror(err));
		return -err;
	}
	/* A regular file ends; /dev/zero or a FIFO might not. */
	if (fstat(fileno(f), &sb) == -1 || !S_ISREG(sb.st_mode)) {
		if (where_file)
			diag_error(d, where_file, where_line, "\"%s\" is not a regular file", path);
		else
			diag_error(d, path, 0, "not a regular file");
		fclose(f);
		return -EINVAL;
	}
	for (;;) {
		ssize_t n = getline(&buf, &cap, f);
		if (n == -1)
			break;
		line++;
		if (memchr(buf, '\0', (size_t)n)) {
			diag_error(d, path, line, "NUL byte in line");
		} else if (n > ALLOW_MAX_LINE) {
			diag_error(d, path, line, "line too long (%zd bytes)", n);
		} else {
			rc = allowlist_add_line(b, buf, path, line, d);
			if (rc == -ENOMEM)
				break;
		}
		if (d->errors - errors0 >= ALLOW_MAX_ERRORS_PER_FILE) {
			diag_error(d, path, line, "too many errors, giving up on this file");
			break;
		}
	}
	if (rc != -ENOMEM && ferror(f)) {
		diag_error(d, path, line, "read error");
		rc = -EIO;
	}
	free(buf);
	fclose(f);
	if (rc == -ENOMEM || rc == -EIO)
		return rc;
	return d->errors == errors0 ? 0 : -EINVAL;
}

int allowlist_add_file(struct policy_builder *b, const char *path, struct diag *d)
{
	return allow_add_file_at(b, path, NULL, 0, d);
}

static const char *allow_preset_dir(void)
{
	const char *env = getenv("EGRESSD_PRESET_DIR");
	return env && *env ? env : EGRESSD_PRESET_DIR;
}

static int allow_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a, b, c" of dir/ *.list, sorted; "none" if there are none. */
static void allow_list_presets(const char *dir, char *out, size_t outlen)
{
	char *names[128];
	size_t n = 0, used = 0;
	DIR *dh = opendir(dir);

	out[0] = '\0';
	if (dh) {
		struct dirent *de;
		while ((de = readdir(dh)) && n < sizeof names / sizeof names[0]) {
			size_t l = strlen(de->d_name);
			if (de->d_name[0] == '.' || l <= 5 || strcmp(de->d_name + l - 5, ".list"))
				continue;
			names[n] = strndup(de->d_name, l - 5);
			if (names[n])
				n++;
		}
		closedir(dh);
	}
	qsort(names, n, sizeof names[0], allow_cmp_str);
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
		if (w > 0 && (size_t)w < outlen - used)
			used += (size_t)w;
		free(names[i]);
	}
	if (n == 0)
		snprintf(out, outlen, "none in %s", dir);
}

static int allow_add_preset_at(struct policy_builder *b, const char *name, const char *where_file,
                               unsigned where_line, struct diag *d)
{
	const char *dir = allow_preset_dir();
	char path[PATH_MAX];
	char avail[1024];
	struct stat sb;
	size_t n = strlen(name);
	bool ok = n > 0 && n <= 64 && name[0] != '.' && name[0] != '-';

	for (size_t i = 0; ok && i < n; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		     (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_' ||
		     name[i] == '.';
	if (ok) {
		int w = snprintf(path, sizeof path, "%s/%s.list", dir, name);
		ok = w > 0 && (size_t)w < sizeof path && stat(path, &sb) == 0;
	}
	if (!ok) {
		allow_list_presets(dir, avail, sizeof avail);
		diag_error(d, where_file, where_line, "unknown preset \"%.64s\" (available: %s)",
		           name, avail);
		return -ENOENT;
	}
	return allow_add_file_at(b, path, where_file, where_line, d);
}

int allowlist_add_preset(struct policy_builder *b, const char *name, struct diag *d)
{
	return allow_add_preset_at(b, name, NULL, 0, d);
}

/* One allow item of c: "preset:NAME", a glob, or a path (relative to the config's directory). */
static int allow_add_item(struct policy_builder *b, const struct conf *c, size_t i, struct diag *d)
{
	const char *item = c->allow[i];
	unsigned line = c->allow_line ? c->allow_line[i] : 0;
	const char *where = c->path;
	char path[PATH_MAX];

	if (!strncmp(item, "preset:", 7))
		return allow_add_preset_at(b, item + 7, where, line, d);

	const char *slash = c->path ? strrchr(c->path, '/') : NULL;
	int w;
	if (item[0] != '/' && slash)
		w = snprintf(path, sizeof path, "%.*s/%s", (int)(slash - c->path), c->path, item);
	else
		w = snprintf(path, sizeof path, "%s", item);
	if (w < 0 || (size_t)w >= sizeof path) {
		diag_error(d, where, line, "path too long: \"%.64s...\"", item);
		return -ENAMETOOLONG;
	}

	if (!strpbrk(path, "*?["))
		return allow_add_file_at(b, path, where, line, d);

	glob_t g;
	int rc = glob(path, 0, NULL, &g);
	if (rc == GLOB_NOMATCH) {
		diag_warn(d, where, line, "\"%s\" matches no file", path);
		return 0;
	}
	if (rc != 0) {
		diag_error(d, where, line, "cannot expand \"%s\"%s", path,
		           rc == GLOB_NOSPACE ? ": out of memory" : ": read error");
		globfree(&g);
		return rc == GLOB_NOSPACE ? -ENOMEM : -EIO;
	}
	int ret = 0;
	for (size_t k = 0; k < g.gl_pathc; k++) {
		rc = allow_add_file_at(b, g.gl_pathv[k], where, line, d);
		if (rc == -ENOMEM) {
			ret = rc;
			break;
		}
		if (rc != 0)
			ret = rc;
	}
	globfree(&g);
	return ret;
}

struct policy *conf_load_policy(const struct conf *c, struct diag *d)
{
	unsigned errors0 = d->errors;
	struct policy_builder *b = policy_builder_new();

	allow_mt_load(d); /* again at each load: a reload sees a changed local list */
	if (!b) {
		diag_error(d, c->path, 0, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < c->nallow; i++)
		if (allow_add_item(b, c, i, d) == -ENOMEM)
			break;
	if (d->errors != errors0) {
		policy_builder_free(b);
		return NULL;
	}
	struct policy *p = policy_builder_finish(b);
	if (!p)
		diag_error(d, c->path, 0, "out of memory");
	return p;
}
