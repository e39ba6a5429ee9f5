/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Records of allowed connections and the revocation judgement (revoke.h).
 */
#include "revoke.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Records with a name of up to CONN_NAME_SMALL - 1 bytes (most) are made at
 * that one size and kept on a free list when dropped: no malloc or free per
 * allowed connection (issue 10). The daemon's sync drops seconds of them at
 * once, so the list may grow to max records: never more than the peak of
 * live ones. Longer names: exact size, freed. */
#define CONN_NAME_SMALL 64

struct conn_table {
	struct conn_rec **buckets;
	size_t mask, count, max;
	struct conn_rec *oldest, *newest;
	uint64_t seed;
	struct conn_rec *pool; /* free small records, linked through hnext */
	size_t npool;
};

struct bound_probe {
	const struct policy *p;
	uint16_t port;
	const struct policy_rule *rule;
	bool any;
};

static bool bound_probe_fn(const char *name, void *arg)
{
	struct bound_probe *bp = arg;
	bp->any = true;
	bp->rule = policy_match_name(bp->p, name, bp->port, NULL);
	return bp->rule != NULL;
}

bool revoke_judge(const struct policy *p, const struct bindings *b, const struct flow_key *k,
                  enum revoke_kind kind, const char *name, uint64_t now,
                  const struct policy_rule **rule)
{
	const struct policy_rule *dummy;
	if (!rule)
		rule = &dummy;
	*rule = NULL;
	if (!p || !k)
		return false;
	if (kind == REVOKE_NAME && name && *name) {
		*rule = policy_match_name(p, name, k->dport, NULL);
		if (*rule)
			return true;
	}
	*rule = policy_match_addr(p, &k->dst, k->dport, NULL);
	if (*rule)
		return true;
	if (kind == REVOKE_NAME)
		return false;
	struct bound_probe bp = {.p = p, .port = k->dport};
	if (b && bind_any(b, &k->dst, now, bound_probe_fn, &bp)) {
		*rule = bp.rule;
		return true;
	}
	if (kind == REVOKE_RANGE || bp.any)
		return false;
	/* Unknown, no live binding: kept while some name entry allows the port. */
	return policy_port_has_names(p, k->dport);
}

/* ---- records ---- */

struct conn_table *conn_table_new(size_t max, uint64_t seed)
{
	if (max == 0)
		return NULL;
	struct conn_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	/* Buckets grow with the records (conn_grow): an engine that allows little
	 * (tests, fuzzing, a quiet host) does not pay for max up front. */
	size_t n = 16;
	t->buckets = calloc(n, sizeof *t->buckets);
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->max = max;
	t->seed = seed;
	return t;
}

void conn_table_free(struct conn_table *t)
{
	if (!t)
		return;
	while (t->oldest)
		conn_drop(t, t->oldest);
	while (t->pool) {
		struct conn_rec *r = t->pool;
		t->pool = r->hnext;
		free(r);
	}
	free(t->buckets);
	free(t);
}

struct conn_rec *conn_find(struct conn_table *t, const struct flow_key *k)
{
	if (!t || !k)
		return NULL;
	uint32_t h = flow_key_hash(t->seed, k);
	for (struct conn_rec *r = t->buckets[h & t->mask]; r; r = r->hnext)
		if (r->hash == h && flow_key_eq(&r->key, k))
			return r;
	return NULL;
}

void conn_drop(struct conn_table *t, struct conn_rec *r)
{
	struct conn_rec **pp = &t->buckets[r->hash & t->mask];
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	if (r->prev)
		r->prev->next = r->next;
	else
		t->oldest = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		t->newest = r->prev;
	t->count--;
	if (r->small && t->npool < t->max) {
		r->hnext = t->pool;
		t->pool = r;
		t->npool++;
		return;
	}
	free(r);
}

/* Double the buckets when the records outnumber them (up to 2^24); a failed
 * allocation keeps the old ones (longer chains, still correct). */
static void conn_grow(struct conn_table *t)
{
	size_t n = t->mask + 1;
	if (t->count < n || n >= ((size_t)1 << 24))
		return;
	struct conn_rec **nb = calloc(n * 2, sizeof *nb);
	if (!nb)
		return;
	for (struct conn_rec *r = t->oldest; r; r = r->next) {
		size_t i = r->hash & (n * 2 - 1);
		r->hnext = nb[i];
		nb[i] = r;
	}
	free(t->buckets);
	t->buckets = nb;
	t->mask = n * 2 - 1;
}

int conn_note(struct conn_table *t, const struct flow_key *k, const char *name,
              enum name_source src, int64_t uid)
{
	if (!t || !k)
		return -EINVAL;
	struct conn_rec *old = conn_find(t, k);
	if (old)
		conn_drop(t, old);
	/* Full: the new one goes unrecorded (judged by its address). Evicting the
	 * oldest instead would let a flood of short connections push out the
	 * record of a long-lived one, the kind revoke is for. */
	if (t->count >= t->max)
		return -ENOSPC;
	size_t n = name ? strnlen(name, NAME_MAX_LEN) : 0;
	bool small = n < CONN_NAME_SMALL;
	struct conn_rec *r = small ? t->pool : NULL;
	if (r) {
		t->pool = r->hnext;
		t->npool--;
	} else {
		r = malloc(sizeof *r + (small ? CONN_NAME_SMALL : n + 1));
	}
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof *r);
	r->small = small;
	r->key = *k;
	r->hash = flow_key_hash(t->seed, k);
	r->uid = uid;
	r->name_source = n ? src : NAME_SOURCE_NONE;
	if (n)
		memcpy(r->name, name, n);
	r->name[n] = '\0';
	r->hnext = t->buckets[r->hash & t->mask];
	t->buckets[r->hash & t->mask] = r;
	r->prev = t->newest;
	if (t->newest)
		t->newest->next = r;
	else
		t->oldest = r;
	t->newest = r;
	t->count++;
	conn_grow(t);
	return 0;
}

struct conn_rec *conn_oldest(struct conn_table *t)
{
	return t ? t->oldest : NULL;
}

size_t conn_count(const struct conn_table *t)
{
	return t ? t->count : 0;
}
