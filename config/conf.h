/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_CONF_H
#define EGRESSD_CONF_H
/*
 * egressd.conf (INI, libinih) and allowlist files: text in, an immutable
 * policy out, every error with file:line. Nothing is applied here.
 */
#include "../proxy/core/addr.h"
#include "../proxy/core/engine.h"
#include "../proxy/core/policy.h"
#include <stdio.h>

#define CONF_DEFAULT_PATH "/etc/egressd/egressd.conf"
#ifndef EGRESSD_PRESET_DIR
#define EGRESSD_PRESET_DIR "/usr/share/egressd/presets"
#endif

/*
 * Collected diagnostics, one line each, in the shape SPEC.md shows:
 *   errors:   "FILE:LINE: MSG"            e.g. allow.d/ci.list:7: bad port "44x"
 *   warnings: "FILE:LINE: warning: MSG"
 * line 0 gives "FILE: MSG", file NULL gives "MSG". An error whose text could
 * not be stored (out of memory) is still counted.
 */
struct diag {
	char **lines;
	size_t n, cap;
	unsigned errors, warnings;
};
void diag_error(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_warn(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void diag_print(const struct diag *d, FILE *f);
void diag_clear(struct diag *d);

enum conf_mode {
	CONF_MODE_GATEWAY = 0,
	CONF_MODE_HOST = 1,
};
enum conf_log_level {
	CONF_LOG_DENY = 0,
	CONF_LOG_ALL = 1,
};

struct conf_endpoint {
	struct addr addr;
	uint16_t port;
};

#define CONF_MAX_LISTEN 4
/* The daemon's listeners: [dns] listen, plus host mode's two wildcard
 * container listeners (0.0.0.0 and [::] on [dns] container_port). */
#define CONF_MAX_LISTEN_ALL (CONF_MAX_LISTEN + 2)
#define CONF_DEFAULT_CONTAINER_PORT 5399

/* Online CPUs, 1..16: what [queue] threads = auto resolves to. */
unsigned conf_auto_threads(void);

struct conf {
	char *path;
	enum conf_mode mode;
	bool enforce;
	char **allow; size_t nallow;  /* paths, globs or "preset:NAME" as written */
	unsigned *allow_line;         /* per allow item: its line in path, 0 = default/added */
	char inside[16];              /* [gateway] inside */
	unsigned queue_num, queue_threads; /* threads: resolved (auto = online CPUs, 1..16) */
	bool queue_threads_auto;      /* [queue] threads = auto (the default) */
	uint32_t mark_mask;           /* [queue] mark_mask: the mark bits egressd owns (marks.h) */
	struct conf_endpoint dns_listen[CONF_MAX_LISTEN]; size_t ndns_listen; /* 0: default at run time */
	struct conf_endpoint dns_upstream[8]; size_t ndns_upstream; /* 0: /etc/resolv.conf */
	uint8_t dns_deny_rcode;       /* DNS_RCODE_REFUSED or DNS_RCODE_NXDOMAIN */
	unsigned dns_timeout_ms;      /* [dns] timeout: per attempt (default 1500) */
	unsigned dns_tries;           /* [dns] tries: attempts per server (default 2) */
	uint16_t dns_container_port;  /* [dns] container_port: host mode, 0 = off (default 5399) */
	char *log_file;               /* "-" = stdout */
	enum conf_log_level log_level;
	char *log_host;               /* [log] host: NULL = hostname, "" = no host key */
	bool metrics_enabled;
	struct conf_endpoint metrics_listen;
	struct engine_config engine;  /* [tls] [quic] [dns] grace and the hold bounds */
	bool revoke;                  /* [egressd] revoke: a reload cuts what it no longer allows */
};

/* Parse path. 0, or -1 with errors in d (then *out is NULL). */
int conf_load(const char *path, struct conf **out, struct diag *d);
/*
 * Defaults for `egressd run` and tests (no file): SPEC.md defaults except
 * that allow is empty (conf_load adds the SPEC default glob of allow.d when the
 * file has no allow key). NULL on out of memory.
 */
struct conf *conf_new_defaults(void);
void conf_free(struct conf *c); /* NULL-safe */

/*
 * Build the policy from c->allow (globs expanded, presets resolved). Each
 * allowlist problem is an error with file:line; a wildcard covering a public
 * suffix is a warning. NULL if any error.
 */
struct policy *conf_load_policy(const struct conf *c, struct diag *d);

/* Append an allow item (path, glob or "preset:NAME"); 0 or -ENOMEM. */
int conf_add_allow(struct conf *c, const char *item);

/*
 * "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address; port
 * 1..65535, default_port when absent. 0, or -EINVAL.
 */
int conf_parse_endpoint(const char *s, uint16_t default_port, struct conf_endpoint *out);

/* Allowlist sources, for `egressd run` and tests. */
struct policy_builder;
/* One line of allowlist text (an entry or comment); file/line for messages. */
int allowlist_add_line(struct policy_builder *b, const char *text, const char *file,
		       unsigned line, struct diag *d);
int allowlist_add_file(struct policy_builder *b, const char *path, struct diag *d);
/* "NAME" -> EGRESSD_PRESET_DIR/NAME.list (env EGRESSD_PRESET_DIR overrides). */
int allowlist_add_preset(struct policy_builder *b, const char *name, struct diag *d);

/*
 * One allowlist entry, parsed but not yet added (for tests and `egressd
 * match`). Names are A-labels, normalised (name.h), wildcards without "*.".
 */
enum allow_kind {
	ALLOW_BLANK = 0, /* blank line or comment only */
	ALLOW_NAME = 1,
	ALLOW_RANGE = 2,
};
struct allow_entry {
	enum allow_kind kind;
	char name[NAME_MAX_LEN + 1];
	bool wildcard;                    /* "*.name": strictly below name */
	struct addr net;                  /* ALLOW_RANGE: network, host bits zero */
	unsigned prefix;
	uint16_t ports[POLICY_MAX_PORTS]; /* ascending, distinct; {443} by default */
	size_t nports;
	char text[512];                   /* the entry as written, comment and blanks cut;
	                                     " shared" after it when marked */
	bool shared;                      /* the line ends in "shared" (SPEC.md) */
};
/*
 * Parse one line. 0 (out->kind tells blank or entry), -EINVAL with the error
 * in d, or -ENOMEM. A wildcard that covers a public or multi-tenant suffix
 * is an error unless the line marks it "shared".
 */
int allowlist_parse_line(const char *text, const char *file, unsigned line,
			 struct allow_entry *out, struct diag *d);

/*
 * Would the wildcard "*.base" (base normalised, without "*.") allow names
 * that anyone can register: base is a public suffix (libpsl, ICANN and
 * private), the PSL makes every name below base one, or base is, or is an
 * ancestor of, a multi-tenant suffix (config/multitenant.list, built in, and
 * the local list EGRESSD_MULTITENANT_LOCAL or $EGRESSD_MULTITENANT, read on
 * first use; its problems become errors in d). 1 with what = e.g. 'the
 * multi-tenant suffix "blob.core.windows.net"', else 0.
 */
int allowlist_shared_suffix(const char *base, char *what, size_t whatlen, struct diag *d);
/* The built-in multi-tenant patterns (for tests): their count, *out the array. */
size_t allowlist_builtin_multitenant(const char *const **out);

#endif
