/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_POLICY_H
#define EGRESSD_POLICY_H
/*
 * The allowlist, immutable once built. Lookups stay fast at 100,000
 * entries: a hash for exact names, a hash of wildcard suffixes probed label
 * by label, and longest-prefix match per family for address ranges.
 * Names given to the builder are already normalised (name.h) and in A-label
 * form; config/ does that and reports errors with file:line.
 */
#include "addr.h"
#include "name.h"

struct policy;
struct policy_builder;

/* Where an entry came from; strings owned by the policy. */
struct policy_rule {
	const char *file;
	unsigned line;
	const char *text; /* the entry as written, e.g. "*.cdn.example.com:443" */
	bool shared;      /* a wildcard marked "shared": anyone may own names below it */
};

#define POLICY_MAX_PORTS 64

struct policy_builder *policy_builder_new(void);
void policy_builder_free(struct policy_builder *b); /* NULL-safe; only if not finished */

/*
 * Add "name" (wildcard: "*.name", i.e. strictly below name) allowed on
 * ports[0..nports). Returns 0 or -ENOMEM / -EINVAL.
 */
int policy_builder_add_name(struct policy_builder *b, const char *name, bool wildcard,
			    const uint16_t *ports, size_t nports, const char *file, unsigned line,
			    const char *text);
int policy_builder_add_range(struct policy_builder *b, const struct addr *net, unsigned prefix,
			     const uint16_t *ports, size_t nports, const char *file, unsigned line,
			     const char *text);
/* Mark the entry added last as "shared" (shown by match and check). 0 or -EINVAL. */
int policy_builder_mark_shared(struct policy_builder *b);
/* Consumes b (also on failure). NULL on out of memory. */
struct policy *policy_builder_finish(struct policy_builder *b);

void policy_free(struct policy *p); /* NULL-safe */

/*
 * Entry allowing name on port, or NULL. *name_known (may be NULL) tells
 * whether some entry covers the name on another port (port_not_allowed).
 */
const struct policy_rule *policy_match_name(const struct policy *p, const char *name,
					    uint16_t port, bool *name_known);
/* Entry whose range holds addr and allows port (longest prefix first), or NULL. */
const struct policy_rule *policy_match_addr(const struct policy *p, const struct addr *a,
					    uint16_t port, bool *addr_known);
/* Does any name entry allow this port? (For the SYN in verify mode.) */
bool policy_port_has_names(const struct policy *p, uint16_t port);

struct policy_stats {
	size_t exact_names, wildcards, ranges;
	size_t shared; /* wildcards marked "shared" */
};
void policy_stats(const struct policy *p, struct policy_stats *st);

/* Every name entry (wildcards without "*."), for look-alike detection. */
void policy_foreach_name(const struct policy *p,
			 void (*fn)(const char *name, bool wildcard, void *arg), void *arg);

#endif
