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

/*
 * A source: (address, uid). Lives while it has flows. by_bare[n] links the
 * sources with n bare flows, so the one with the most is found in O(1).
 */
struct flow_src {
	struct flow_src *hnext;        /* source hash chain */
	struct flow_src *cprev, *cnext; /* t->by_bare[nbare] */
	struct flow_table *t;
	struct addr addr;
	int64_t uid;
	uint32_t hash;
	size_t nflows;                   /* flows (and a reservation in flow_create) */
	unsigned nbare;                  /* <= t->bare_cap */
	struct flow *bare_oldest, *bare_newest;
	size_t held;                     /* packets its flows hold */
};

/*
 * Pools (issue 10, no malloc or free per packet): what a connection
 * allocates on its SYN and first payload -- the flow, its source entry, the
 * first stream buffer and its bitmap (FLOW_STREAM_CAP0), the first held
 * array (FLOW_HELD_CAP0) -- goes back to a free list of its table when the
 * connection is done. Decided flows leave in bulk (engine_tick expires
 * whole seconds of them), so their pool may grow to the table's max_flows:
 * it never holds more than the peak of live flows, memory the table needed
 * anyway. The others are given back at the decision, one at a time: up to
 * FLOW_POOL_MAX each (beyond, free()). One table per engine (per worker):
 * no locks. The free lists link through the objects' first bytes.
 */
#define FLOW_POOL_MAX 1024
#define FLOW_STREAM_CAP0 2048
#define FLOW_HELD_CAP0 4

struct pool {
	void *head;
	size_t n, cap;
};

static void *pool_get(struct pool *p)
{
	void *o = p->head;
	if (o) {
		memcpy(&p->head, o, sizeof p->head);
		p->n--;
	}
	return o;
}

static void pool_put(struct pool *p, void *o)
{
	if (!o)
		return;
	if (p->n >= p->cap) {
		free(o);
		return;
	}
	memcpy(o, &p->head, sizeof p->head);
	p->head = o;
	p->n++;
}

static void pool_drain(struct pool *p)
{
	void *o;
	while ((o = pool_get(p)))
		free(o);
}

struct flow_table {
	struct flow **buckets;
	size_t mask;
	size_t count, max;
	struct age_list undecided, decided;
	struct flow *holding; /* unordered */
	uint64_t seed;
	struct flow_src **sbuckets; /* same size as buckets */
	struct flow_src **by_bare;  /* [0..bare_cap]; [0] unused */
	unsigned bare_cap, top;     /* top: highest n with by_bare[n] non-empty (0: none) */
	size_t inspecting;          /* flows with an http_insp */
	struct pool flows, srcs, bufs, haves, helds; /* free lists (above) */
};

uint32_t flow_key_hash(uint64_t seed, const struct flow_key *k)
{
	uint64_t h = seed ^ ((uint64_t)k->proto << 32 | (uint64_t)k->sport << 16 | k->dport);
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

bool flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return a->proto == b->proto && a->sport == b->sport && a->dport == b->dport &&
	       addr_eq(&a->src, &b->src) && addr_eq(&a->dst, &b->dst);
}

static uint32_t src_hash(const struct flow_table *t, const struct addr *a, int64_t uid)
{
	uint64_t h = (t->seed ^ 0x5851f42d4c957f2dull) + (uint64_t)uid + a->family;
	for (size_t i = 0; i < 16; i += 8) {
		uint64_t v;
		memcpy(&v, a->b + i, 8);
		h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 31;
	}
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

struct flow_table *flow_table_new(size_t max_flows, unsigned bare_per_source, uint64_t seed)
{
	if (max_flows == 0 || bare_per_source == 0)
		return NULL;
	struct flow_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	size_t n = 16;
	while (n < max_flows && n < ((size_t)1 << 24))
		n *= 2;
	t->buckets = calloc(n, sizeof *t->buckets);
	t->sbuckets = calloc(n, sizeof *t->sbuckets);
	t->by_bare = calloc((size_t)bare_per_source + 1, sizeof *t->by_bare);
	if (!t->buckets || !t->sbuckets || !t->by_bare) {
		free(t->buckets);
		free(t->sbuckets);
		free(t->by_bare);
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->max = max_flows;
	t->flows.cap = max_flows;
	t->srcs.cap = max_flows < FLOW_POOL_MAX ? max_flows : FLOW_POOL_MAX;
	t->bufs.cap = t->haves.cap = t->helds.cap = FLOW_POOL_MAX;
	t->bare_cap = bare_per_source;
	t->seed = seed;
	return t;
}

/* ---- sources ---- */

static void bucket_unlink(struct flow_table *t, struct flow_src *s)
{
	if (s->nbare == 0)
		return;
	if (s->cprev)
		s->cprev->cnext = s->cnext;
	else
		t->by_bare[s->nbare] = s->cnext;
	if (s->cnext)
		s->cnext->cprev = s->cprev;
	s->cprev = s->cnext = NULL;
}

static void bucket_link(struct flow_table *t, struct flow_src *s)
{
	if (s->nbare == 0)
		return;
	s->cprev = NULL;
	s->cnext = t->by_bare[s->nbare];
	if (s->cnext)
		s->cnext->cprev = s;
	t->by_bare[s->nbare] = s;
	if (s->nbare > t->top)
		t->top = s->nbare;
}

static void bare_count(struct flow_table *t, struct flow_src *s, bool up)
{
	bucket_unlink(t, s);
	if (up)
		s->nbare++;
	else
		s->nbare--;
	bucket_link(t, s);
	while (t->top && !t->by_bare[t->top])
		t->top--;
}

/* The source entry for (a, uid), created if needed, with one reservation (nflows++). */
static struct flow_src *src_get(struct flow_table *t, const struct addr *a, int64_t uid)
{
	uint32_t h = src_hash(t, a, uid);
	struct flow_src *s = t->sbuckets[h & t->mask];
	for (; s; s = s->hnext)
		if (s->hash == h && s->uid == uid && addr_eq(&s->addr, a))
			break;
	if (!s) {
		s = pool_get(&t->srcs);
		if (s)
			memset(s, 0, sizeof *s);
		else
			s = calloc(1, sizeof *s);
		if (!s)
			return NULL;
		s->t = t;
		s->addr = *a;
		s->uid = uid;
		s->hash = h;
		s->hnext = t->sbuckets[h & t->mask];
		t->sbuckets[h & t->mask] = s;
	}
	s->nflows++;
	return s;
}

/* Drop one reference; the entry goes with its last flow. */
static void src_put(struct flow_table *t, struct flow_src *s)
{
	if (--s->nflows)
		return;
	struct flow_src **pp = &t->sbuckets[s->hash & t->mask];
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	pool_put(&t->srcs, s);
}

static void bare_unlink(struct flow *f)
{
	if (!f->bare)
		return;
	struct flow_src *s = f->src;
	if (f->bprev)
		f->bprev->bnext = f->bnext;
	else
		s->bare_oldest = f->bnext;
	if (f->bnext)
		f->bnext->bprev = f->bprev;
	else
		s->bare_newest = f->bprev;
	f->bprev = f->bnext = NULL;
	f->bare = false;
	bare_count(s->t, s, false);
}

static void bare_append(struct flow *f)
{
	struct flow_src *s = f->src;
	f->bare = true;
	f->bnext = NULL;
	f->bprev = s->bare_newest;
	if (s->bare_newest)
		s->bare_newest->bnext = f;
	else
		s->bare_oldest = f;
	s->bare_newest = f;
	bare_count(s->t, s, true);
}

void flow_held_sync(struct flow *f)
{
	if (!f->src)
		return;
	f->src->held -= f->src_held;
	f->src->held += f->nheld;
	f->src_held = f->nheld;
}

size_t flow_src_held(const struct flow *f)
{
	return f->src ? f->src->held : 0;
}

unsigned flow_src_bare(const struct flow *f)
{
	return f->src ? f->src->nbare : 0;
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

static void stream_free(struct flow_table *t, struct flow *f)
{
	if (f->cap == FLOW_STREAM_CAP0) {
		pool_put(&t->bufs, f->buf);
		pool_put(&t->haves, f->have);
	} else {
		free(f->buf);
		free(f->have);
	}
	f->buf = f->have = NULL;
	f->cap = 0;
}

void flow_held_free(struct flow_table *t, uint64_t *held, size_t cap)
{
	if (t && cap == FLOW_HELD_CAP0)
		pool_put(&t->helds, held);
	else
		free(held);
}

void flow_table_free(struct flow_table *t)
{
	if (!t)
		return;
	while (t->undecided.oldest)
		flow_remove(t, t->undecided.oldest);
	while (t->decided.oldest)
		flow_remove(t, t->decided.oldest);
	pool_drain(&t->flows);
	pool_drain(&t->srcs);
	pool_drain(&t->bufs);
	pool_drain(&t->haves);
	pool_drain(&t->helds);
	free(t->buckets);
	free(t->sbuckets);
	free(t->by_bare);
	free(t);
}

struct flow *flow_find(struct flow_table *t, const struct flow_key *k)
{
	uint32_t h = flow_key_hash(t->seed, k);
	for (struct flow *f = t->buckets[h & t->mask]; f; f = f->hnext)
		if (f->hash == h && flow_key_eq(&f->key, k))
			return f;
	return NULL;
}

/*
 * Room for one more flow of source s: evict (see flow.h). Among sources
 * tied for the most bare flows, s pays first. false: nothing can go.
 */
static bool make_room(struct flow_table *t, const struct flow_src *s)
{
	if (t->count < t->max)
		return true;
	if (t->decided.oldest) {
		flow_remove(t, t->decided.oldest);
		return true;
	}
	if (t->top) {
		const struct flow_src *v = s->nbare == t->top ? s : t->by_bare[t->top];
		flow_remove(t, v->bare_oldest);
		return true;
	}
	return false;
}

struct flow *flow_create(struct flow_table *t, const struct flow_key *k, int64_t uid, bool bare,
                         uint64_t now, enum flow_refuse *why)
{
	enum flow_refuse dummy;
	if (!why)
		why = &dummy;
	*why = FLOW_REFUSE_NOMEM;
	struct flow_src *s = src_get(t, &k->src, uid < 0 ? -1 : uid);
	if (!s)
		return NULL;
	if (bare && s->nbare >= t->bare_cap) {
		*why = FLOW_REFUSE_SOURCE;
		src_put(t, s);
		return NULL;
	}
	if (!make_room(t, s)) { /* s is reserved: eviction cannot free it */
		*why = FLOW_REFUSE_FULL;
		src_put(t, s);
		return NULL;
	}
	struct flow *f = pool_get(&t->flows);
	if (f)
		memset(f, 0, sizeof *f);
	else
		f = calloc(1, sizeof *f);
	if (!f) {
		src_put(t, s);
		return NULL;
	}
	*why = FLOW_REFUSE_NONE;
	f->src = s; /* the reservation becomes the flow's reference */
	if (bare)
		bare_append(f);
	f->key = *k;
	f->hash = flow_key_hash(t->seed, k);
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
	bare_unlink(f);
	flow_held_sync(f);
	flow_hold_stop(t, f);
	age_unlink(list_of(t, f), f);
	f->state = FLOW_DECIDED;
	f->verdict = v;
	age_append(&t->decided, f);
	stream_free(t, f);
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
	stream_free(t, f);
	bare_unlink(f);
	f->nheld = 0;
	flow_held_sync(f);
	if (f->src)
		src_put(t, f->src);
	flow_held_free(t, f->held, f->capheld);
	flow_inspect_free(t, f);
	pool_put(&t->flows, f);
	t->count--;
}

size_t flow_count(const struct flow_table *t)
{
	return t ? t->count : 0;
}

struct http_insp *flow_inspect_new(struct flow_table *t, struct flow *f)
{
	if (!f->http) {
		f->http = calloc(1, sizeof *f->http);
		if (f->http)
			t->inspecting++;
	}
	return f->http;
}

void flow_inspect_free(struct flow_table *t, struct flow *f)
{
	if (!f->http)
		return;
	free(f->http->head);
	free(f->http);
	f->http = NULL;
	t->inspecting--;
}

size_t flow_inspecting(const struct flow_table *t)
{
	return t ? t->inspecting : 0;
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
	size_t nc = f->cap ? f->cap : FLOW_STREAM_CAP0;
	while (nc < need)
		nc *= 2;
	if (nc > limit)
		nc = limit;
	if (f->cap == 0 && nc == FLOW_STREAM_CAP0 && f->src && f->src->t->bufs.n &&
	    f->src->t->haves.n) {
		/* the usual first payload: a buffer from the pool */
		f->buf = pool_get(&f->src->t->bufs);
		f->have = pool_get(&f->src->t->haves);
		memset(f->have, 0, (FLOW_STREAM_CAP0 + 7) / 8);
		f->cap = nc;
		return 0;
	}
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
	if (rel >= f->end) {
		/* the usual case, in order or past a gap: nothing there yet (no
		 * byte at or past end is present), so no byte to compare */
		memcpy(f->buf + rel, p, n);
		size_t o = rel, e = rel + n;
		for (; o < e && o % 8; o++)
			f->have[o / 8] |= (uint8_t)(1u << (o % 8));
		if (e - o >= 8) {
			memset(f->have + o / 8, 0xff, (e - o) / 8);
			o += (e - o) / 8 * 8;
		}
		for (; o < e; o++)
			f->have[o / 8] |= (uint8_t)(1u << (o % 8));
		f->end = e;
		if (f->contig == rel)
			f->contig = e;
		return FLOW_ADD_NEW;
	}
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
		size_t nc = f->capheld ? f->capheld * 2 : FLOW_HELD_CAP0;
		uint64_t *nh = f->capheld == 0 && f->src ? pool_get(&f->src->t->helds) : NULL;
		if (nh) {
			f->held = nh;
			f->capheld = nc;
			f->held[f->nheld++] = handle;
			bare_unlink(f);
			flow_held_sync(f);
			return 0;
		}
		nh = realloc(f->held, nc * sizeof *nh);
		if (!nh)
			return -ENOMEM;
		f->held = nh;
		f->capheld = nc;
	}
	f->held[f->nheld++] = handle;
	bare_unlink(f);
	flow_held_sync(f);
	return 0;
}
