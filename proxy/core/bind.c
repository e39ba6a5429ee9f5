/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bindings: address -> names DNS answered with it, each with an expiry.
 *
 *   buckets[hash(addr)] -> binding <-> binding ...   (all names of colliding addrs)
 *   age list: oldest (head) ... newest (tail)        (eviction order; re-add moves to tail)
 *
 * Bounded: adding to a full set evicts the head of the age list. Expiry
 * times differ per binding (TTL), so bind_expire() scans; lookups skip
 * expired entries, so a late bind_expire() never makes a dead binding live.
 */
#include "bind.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct binding {
	struct binding *bnext, *bprev; /* bucket chain */
	struct binding *anext, *aprev; /* age list */
	struct addr addr;
	uint64_t expires;
	uint32_t hash;
	char name[];
};

struct bindings {
	struct binding **buckets;
	size_t mask;
	size_t count, max;
	struct binding *oldest, *newest;
	uint64_t seed;
};

static uint32_t bind_hash(const struct bindings *b, const struct addr *a)
{
	uint64_t h = b->seed ^ a->family;
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

struct bindings *bind_new(size_t max_entries)
{
	if (max_entries == 0)
		return NULL;
	struct bindings *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	size_t n = 16;
	while (n < max_entries && n < ((size_t)1 << 24))
		n *= 2;
	b->buckets = calloc(n, sizeof *b->buckets);
	if (!b->buckets) {
		free(b);
		return NULL;
	}
	b->mask = n - 1;
	b->max = max_entries;
	/* Per-instance seed from ASLR: the core has no clock or RNG to ask. */
	b->seed = (uint64_t)(uintptr_t)b * 0x9e3779b97f4a7c15ull;
	return b;
}

static void unlink_binding(struct bindings *b, struct binding *x)
{
	if (x->bprev)
		x->bprev->bnext = x->bnext;
	else
		b->buckets[x->hash & b->mask] = x->bnext;
	if (x->bnext)
		x->bnext->bprev = x->bprev;
	if (x->aprev)
		x->aprev->anext = x->anext;
	else
		b->oldest = x->anext;
	if (x->anext)
		x->anext->aprev = x->aprev;
	else
		b->newest = x->aprev;
	b->count--;
}

static void age_append(struct bindings *b, struct binding *x)
{
	x->anext = NULL;
	x->aprev = b->newest;
	if (b->newest)
		b->newest->anext = x;
	else
		b->oldest = x;
	b->newest = x;
}

void bind_free(struct bindings *b)
{
	if (!b)
		return;
	struct binding *x = b->oldest;
	while (x) {
		struct binding *n = x->anext;
		free(x);
		x = n;
	}
	free(b->buckets);
	free(b);
}

static struct binding *find(const struct bindings *b, const struct addr *a, const char *name)
{
	uint32_t h = bind_hash(b, a);
	for (struct binding *x = b->buckets[h & b->mask]; x; x = x->bnext)
		if (x->hash == h && addr_eq(&x->addr, a) && strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

int bind_add(struct bindings *b, const char *name, const struct addr *a, uint64_t expires,
             uint64_t now)
{
	if (!b || !name || !a)
		return -EINVAL;
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return -EINVAL;
	struct binding *x = find(b, a, name);
	if (x) {
		/* Refresh: never shorten a binding a longer answer gave. */
		if (expires > x->expires)
			x->expires = expires;
		if (x != b->newest) {
			if (x->aprev)
				x->aprev->anext = x->anext;
			else
				b->oldest = x->anext;
			x->anext->aprev = x->aprev;
			age_append(b, x);
		}
		return 0;
	}
	if (expires <= now)
		return 0;
	while (b->count >= b->max && b->oldest) {
		struct binding *old = b->oldest;
		unlink_binding(b, old);
		free(old);
	}
	x = malloc(sizeof *x + n + 1);
	if (!x)
		return -ENOMEM;
	memcpy(x->name, name, n + 1);
	x->addr = *a;
	x->expires = expires;
	x->hash = bind_hash(b, a);
	x->bprev = NULL;
	x->bnext = b->buckets[x->hash & b->mask];
	if (x->bnext)
		x->bnext->bprev = x;
	b->buckets[x->hash & b->mask] = x;
	age_append(b, x);
	b->count++;
	return 0;
}

bool bind_has(const struct bindings *b, const struct addr *a, const char *name, uint64_t now)
{
	if (!b || !a || !name)
		return false;
	const struct binding *x = find(b, a, name);
	return x && x->expires > now;
}

bool bind_any(const struct bindings *b, const struct addr *a, uint64_t now,
              bool (*fn)(const char *name, void *arg), void *arg)
{
	if (!b || !a || !fn)
		return false;
	uint32_t h = bind_hash(b, a);
	for (const struct binding *x = b->buckets[h & b->mask]; x; x = x->bnext)
		if (x->hash == h && x->expires > now && addr_eq(&x->addr, a) && fn(x->name, arg))
			return true;
	return false;
}

size_t bind_expire(struct bindings *b, uint64_t now)
{
	if (!b)
		return 0;
	size_t dropped = 0;
	struct binding *x = b->oldest;
	while (x) {
		struct binding *n = x->anext;
		if (x->expires <= now) {
			unlink_binding(b, x);
			free(x);
			dropped++;
		}
		x = n;
	}
	return dropped;
}

size_t bind_count(const struct bindings *b)
{
	return b ? b->count : 0;
}
