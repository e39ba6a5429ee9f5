/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Flow table and first-payload reassembly; see flow.h for the contract.
 */
#include "flow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct age_list {
	struct flow *oldest, *newest;
};

struct flow_table {
	struct flow **buckets;
	size_t mask;
	size_t count, max;
	struct age_list undecided, decided;
	struct flow *holding; /* unordered */
	uint64_t seed;
};

static uint32_t key_hash(const struct flow_table *t, const struct flow_key *k)
{
	uint64_t h = t->seed ^ ((uint64_t)k->proto << 32 | (uint64_t)k->sport << 16 | k->dport);
	const struct addr *as[2] = {&k->src, &k->dst};
	for (size_t a = 0; a < 2; a++) {
		h ^= as[a]->family;
		for (size_t i = 0; i < 16; i += 8) {
			uint64_t v;
			memcpy(&v, as[a]->b + i, 8);
			h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
			h ^= h >> 31;
		}
	}
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

static bool key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return a->proto == b->proto && a->sport == b->sport && a->dport == b->dport &&
	       addr_eq(&a->src, &b->src) && addr_eq(&a->dst, &b->dst);
}

struct flow_table *flow_table_new(size_t max_flows)
{
	if (max_flows == 0)
		return NULL;
	struct flow_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	size_t n = 16;
	while (n < max_flows && n < ((size_t)1 << 24))
		n *= 2;
	t->buckets = calloc(n, sizeof *t->buckets);
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->max = max_flows;
	/* No clock or RNG in the core: the heap address (ASLR) seeds the hash. */
	t->seed = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)t->buckets;
	return t;
}

static void age_unlink(struct age_list *l, struct flow *f)
{
	if (f->aprev)
		f->aprev->anext = f->anext;
	else
		l->oldest = f->anext;
	if (f->anext)
		f->anext->aprev = f->aprev;
	else
		l->newest = f->aprev;
	f->aprev = f->anext = NULL;
}

static void age_append(struct age_list *l, struct flow *f)
{
	f->anext = NULL;
	f->aprev = l->newest;
	if (l->newest)
		l->newest->anext = f;
	else
		l->oldest = f;
	l->newest = f;
}

static struct age_list *list_of(struct flow_table *t, const struct flow *f)
{
	return f->state == FLOW_DECIDED ? &t->decided : &t->undecided;
}

static void stream_free(struct flow *f)
{
	free(f->buf);
	free(f->have);
	f->buf = f->have = NULL;
	f->cap = 0;
}

void flow_table_free(struct flow_table *t)
{
	if (!t)
		return;
	while (t->undecided.oldest)
		flow_remove(t, t->undecided.oldest);
	while (t->decided.oldest)
		flow_remove(t, t->decided.oldest);
	free(t->buckets);
	free(t);
}

struct flow *flow_find(struct flow_table *t, const struct flow_key *k)
{
	uint32_t h = key_hash(t, k);
	for (struct flow *f = t->buckets[h & t->mask]; f; f = f->hnext)
		if (f->hash == h && key_eq(&f->key, k))
			return f;
	return NULL;
}

struct flow *flow_create(struct flow_table *t, const struct flow_key *k, uint64_t now)
{
	if (t->count >= t->max) {
		if (!t->decided.oldest)
			return NULL;
		flow_remove(t, t->decided.oldest);
	}
	struct flow *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->key = *k;
	f->hash = key_hash(t, k);
	f->state = FLOW_UNDECIDED;
	f->last_ns = now;
	f->uid = -1;
	f->hnext = t->buckets[f->hash & t->mask];
	t->buckets[f->hash & t->mask] = f;
	age_append(&t->undecided, f);
	t->count++;
	return f;
}

void flow_touch(struct flow_table *t, struct flow *f, uint64_t now)
{
	f->last_ns = now;
	struct age_list *l = list_of(t, f);
	if (l->newest != f) {
		age_unlink(l, f);
		age_append(l, f);
	}
}

void flow_hold_start(struct flow_table *t, struct flow *f, uint64_t now)
{
	if (f->on_hold_list)
		return;
	f->hold_since = now;
	f->on_hold_list = true;
	f->wprev = NULL;
	f->wnext = t->holding;
	if (t->holding)
		t->holding->wprev = f;
	t->holding = f;
}

void flow_hold_stop(struct flow_table *t, struct flow *f)
{
	if (!f->on_hold_list)
		return;
	if (f->wprev)
		f->wprev->wnext = f->wnext;
	else
		t->holding = f->wnext;
	if (f->wnext)
		f->wnext->wprev = f->wprev;
	f->wprev = f->wnext = NULL;
	f->on_hold_list = false;
}

struct flow *flow_holding_first(struct flow_table *t)
{
	return t->holding;
}

void flow_mark_decided(struct flow_table *t, struct flow *f, enum verdict v)
{
	flow_hold_stop(t, f);
	age_unlink(list_of(t, f), f);
	f->state = FLOW_DECIDED;
	f->verdict = v;
	age_append(&t->decided, f);
	stream_free(f);
}

void flow_remove(struct flow_table *t, struct flow *f)
{
	struct flow **pp = &t->buckets[f->hash & t->mask];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	flow_hold_stop(t, f);
	age_unlink(list_of(t, f), f);
	stream_free(f);
	free(f->held);
	free(f->http);
	free(f);
	t->count--;
}

size_t flow_count(const struct flow_table *t)
{
	return t ? t->count : 0;
}

struct flow *flow_oldest(struct flow_table *t, bool decided)
{
	return decided ? t->decided.oldest : t->undecided.oldest;
}

static bool bit(const uint8_t *bm, size_t i)
{
	return (bm[i / 8] >> (i % 8)) & 1;
}

static int stream_reserve(struct flow *f, size_t need, size_t limit)
{
	if (need <= f->cap)
		return 0;
	size_t nc = f->cap ? f->cap : 2048;
	while (nc < need)
		nc *= 2;
	if (nc > limit)
		nc = limit;
	uint8_t *nb = realloc(f->buf, nc);
	if (!nb)
		return -ENOMEM;
	f->buf = nb;
	uint8_t *nh = realloc(f->have, (nc + 7) / 8);
	if (!nh)
		return -ENOMEM;
	memset(nh + (f->cap + 7) / 8, 0, (nc + 7) / 8 - (f->cap + 7) / 8);
	f->have = nh;
	f->cap = nc;
	return 0;
}

/*
 * Stream offsets are sequence numbers minus ISN+1, modulo 2^32. A segment
 * must lie inside [0, limit): anything before the start (rel >= 2^31) or
 * running past the bound cannot be part of a first payload we may hold.
 */
enum flow_add flow_stream_add(struct flow *f, uint32_t rel, const uint8_t *p, size_t n,
                              size_t limit)
{
	if (n == 0)
		return FLOW_ADD_DUP;
	if (rel >= 0x80000000u || rel > limit || n > limit - rel)
		return FLOW_ADD_TOO_BIG;
	if (stream_reserve(f, rel + n, limit) < 0)
		return FLOW_ADD_NOMEM;
	bool fresh = false;
	for (size_t i = 0; i < n; i++) {
		size_t o = rel + i;
		if (bit(f->have, o)) {
			if (f->buf[o] != p[i])
				return FLOW_ADD_CONFLICT;
			continue;
		}
		fresh = true;
	}
	if (!fresh)
		return FLOW_ADD_DUP;
	for (size_t i = 0; i < n; i++) {
		size_t o = rel + i;
		f->buf[o] = p[i];
		f->have[o / 8] |= (uint8_t)(1u << (o % 8));
	}
	if (rel + n > f->end)
		f->end = rel + n;
	while (f->contig < f->end && bit(f->have, f->contig))
		f->contig++;
	return FLOW_ADD_NEW;
}

void flow_stream_runs(const struct flow *f, void (*fn)(const uint8_t *p, size_t n, void *arg),
                      void *arg)
{
	size_t i = 0;
	while (i < f->end) {
		if (!bit(f->have, i)) {
			i++;
			continue;
		}
		size_t s = i;
		while (i < f->end && bit(f->have, i))
			i++;
		fn(f->buf + s, i - s, arg);
	}
}

int flow_hold_packet(struct flow *f, uint64_t handle)
{
	if (f->nheld == f->capheld) {
		size_t nc = f->capheld ? f->capheld * 2 : 4;
		uint64_t *nh = realloc(f->held, nc * sizeof *nh);
		if (!nh)
			return -ENOMEM;
		f->held = nh;
		f->capheld = nc;
	}
	f->held[f->nheld++] = handle;
	return 0;
}
