/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_REVOKE_H
#define EGRESSD_REVOKE_H
/*
 * Revocation on reload (SPEC.md [egressd] revoke; issue 9, class 11).
 * Internal to the core; the shells see engine_revoke() in engine.h.
 *
 * The kernel carries an allowed connection on its conntrack mark and the
 * flow table forgets it seconds after the decision, so the engine keeps a
 * record of every connection it allowed: the 5-tuple and the name it was
 * allowed for (none: an address range allowed it). Records are bounded in
 * number: when full, a new connection goes unrecorded (the old records are
 * the long-lived connections revoke is for; a flood must not push them out).
 * They are pruned against conntrack's own list at every revocation pass, and
 * by the shell when they fill up (engine_conns_sync).
 *
 * The judgement (revoke_judge) is a pure function of the new policy, the
 * bindings and what the record says:
 *   name known    kept if the policy still allows that name on the port, or
 *                 a range entry allows the address and port; else cut. The
 *                 binding that let it through is not asked again: a DNS TTL
 *                 running out ends no connection.
 *   range (no name, recorded)
 *                 kept if a range still allows it, or its address is bound
 *                 to a name the policy allows on the port; else cut.
 *   unknown       (no record: allowed before a restart, or its record was
 *                 pushed out) judged by its address as a SYN would be:
 *                 kept by a range, or by a live binding to an allowed name;
 *                 cut if its address is bound only to names the policy no
 *                 longer allows on the port, or if no entry allows the port
 *                 at all; with no binding left and some name entry on the
 *                 port, kept (egressd cannot tell which name it used).
 */
#include "bind.h"
#include "engine.h"
#include "flow.h"
#include "policy.h"

enum revoke_kind {
	REVOKE_NAME = 0, /* allowed for rec name */
	REVOKE_RANGE,    /* allowed by an address range, no name */
	REVOKE_UNKNOWN,  /* no record */
};

/* Does the policy still allow this connection? *rule (may be NULL): the entry that does, if one. */
bool revoke_judge(const struct policy *p, const struct bindings *b, const struct flow_key *k,
                  enum revoke_kind kind, const char *name, uint64_t now,
                  const struct policy_rule **rule);

struct conn_rec {
	struct conn_rec *hnext;
	struct conn_rec *prev, *next; /* oldest first */
	struct flow_key key;
	uint32_t hash;
	int64_t uid;
	enum name_source name_source; /* NONE: allowed by a range */
	bool seen;                    /* in the current pass's conntrack list */
	bool audit_logged;            /* audit mode: its would-be revocation was logged */
	bool small;                   /* name[] has CONN_NAME_SMALL bytes (revoke.c pool) */
	char name[];
};

struct conn_table;

/* max >= 1 records; seed: the hash seed. */
struct conn_table *conn_table_new(size_t max, uint64_t seed);
void conn_table_free(struct conn_table *t); /* NULL-safe */
/* Record (or re-record: a new incarnation) an allowed connection. 0, -ENOSPC (full) or -ENOMEM. */
int conn_note(struct conn_table *t, const struct flow_key *k, const char *name,
              enum name_source src, int64_t uid);
struct conn_rec *conn_find(struct conn_table *t, const struct flow_key *k);
void conn_drop(struct conn_table *t, struct conn_rec *r);
struct conn_rec *conn_oldest(struct conn_table *t);
size_t conn_count(const struct conn_table *t);

#endif
