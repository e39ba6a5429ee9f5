/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bindings (bind.h). One struct binding per (address, name), reachable from
 * five places, each O(1) to join and leave:
 *
 *   binds[hash(addr, name)]  the key: bind_has, bind_add
 *   bname (per name)         its addresses, oldest first: the per-name cap
 *   baddr (per address)      its names: bind_any
 *   bclient (per client)     the bindings charged to it, oldest first: the
 *                            per-client cap; clients sit in heavy[count], so
 *                            the most charged client is found in O(1) when
 *                            the whole table is full
 *   wheel[expiry tick]       expiry: a timing wheel of WHEEL_SLOTS ticks of
 *                            2^TICK_SHIFT ns (~1.07 s); bind_expire walks the
 *                            ticks passed since its last call; a binding due
 *                            more than one turn ahead is passed over once per
 *                            turn (~73 min), so expiry is amortised O(1)
 *
 * Names, addresses and clients are nodes that live while a binding uses
 * them. Lookups skip expired bindings, so a late bind_expire() never makes
 * a dead binding live. All hashes are keyed by the seed (getrandom in the
 * daemon): chains cannot be aimed at.
 */
#include "bind.h"
#include <pthread.h>
#include <stdatomic.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TICK_SHIFT 30
#define WHEEL_SLOTS 4096u
#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

struct hnode {
	struct hnode *next, **pprev;
};
struct lnode {
	struct lnode *prev, *next;
};
struct list {
	struct lnode *first, *last;
};
struct table {
	struct hnode **b;
	size_t mask;
};

struct bname {
	struct hnode h;
	uint32_t hash;
	size_t count;
	struct list binds; /* by_name, oldest first */
	char name[];
};

struct baddr {
	struct hnode h;
	uint32_t hash;
	struct addr addr;
	struct list binds; /* by_addr */
};

struct bclient {
	struct hnode h;
	uint32_t hash;
	struct addr addr; /* family ADDR_NONE: the engine's own resolutions */
	size_t count;
	struct list binds;  /* by_client, oldest first */
	struct lnode heavy; /* in b->heavy[count] */
};

struct binding {
	struct hnode h;
	uint32_t hash;
	struct bname *name;
	struct baddr *addr;
	struct bclient *client;
	uint64_t expires;
	struct lnode by_name, by_addr, by_client, by_slot;
};

/*
 * bind_share's lock: a reader takes only its own thread's slot (one cache
 * line each, so workers reading at once do not bounce a shared counter as a
 * pthread rwlock does); a writer takes every slot, in order. Threads beyond
 * BIND_LOCK_SLOTS share slots (still correct).
 */
#define BIND_LOCK_SLOTS 16
struct bind_lock {
	struct {
		_Alignas(64) pthread_mutex_t m;
	} slot[BIND_LOCK_SLOTS];
};

struct bindings {
	struct bind_config cfg;
	struct table binds, names, addrs, clients;
	size_t count;
	struct list wheel[WHEEL_SLOTS];
	uint64_t cursor;     /* first tick bind_expire has not finished */
	struct list *heavy;  /* heavy[k]: clients charged with k bindings, 1..max_per_client */
	size_t heaviest;     /* largest k with heavy[k] non-empty (0: none) */
	struct bind_lock *lock; /* bind_share(): every call below takes it; NULL: unshared */
};

/* ---- intrusive lists and chains ---- */

static void h_add(struct table *t, uint32_t hash, struct hnode *n)
{
	struct hnode **head = &t->b[hash & t->mask];
	n->next = *head;
	if (*head)
		(*head)->pprev = &n->next;
	*head = n;
	n->pprev = head;
}

static void h_del(struct hnode *n)
{
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
}

static void l_append(struct list *l, struct lnode *n)
{
	n->next = NULL;
	n->prev = l->last;
	if (l->last)
		l->last->next = n;
	else
		l->first = n;
	l->last = n;
}

static void l_del(struct list *l, struct lnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->last = n->prev;
	n->prev = n->next = NULL;
}

static int table_init(struct table *t, size_t want)
{
	size_t n = 16;
	while (n < want && n < ((size_t)1 << 24))
		n *= 2;
	t->b = calloc(n, sizeof *t->b);
	t->mask = n - 1;
	return t->b ? 0 : -ENOMEM;
}

/* ---- hashes (seeded) ---- */

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint32_t hash_addr(uint64_t seed, const struct addr *a)
{
	uint64_t h = seed ^ a->family;
	for (size_t i = 0; i < 16; i += 8) {
		uint64_t v;
		memcpy(&v, a->b + i, 8);
		h = mix64(h ^ v);
	}
	return (uint32_t)h;
}

static uint32_t hash_name(uint64_t seed, const char *s, size_t n)
{
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		h = mix64(h ^ v);
	}
	uint64_t tail = n;
	for (; i < n; i++)
		tail = tail << 8 | (uint8_t)s[i];
	return (uint32_t)mix64(h ^ tail ^ ((uint64_t)n << 56));
}

static uint32_t hash_bind(const struct bindings *b, uint32_t ah, uint32_t nh)
{
	return (uint32_t)mix64(b->cfg.seed ^ ((uint64_t)ah << 32 | nh));
}

/* ---- nodes ---- */

static struct bname *name_find(const struct bindings *b, const char *name, size_t n,
                               uint32_t hash)
{
	for (struct hnode *h = b->names.b[hash & b->names.mask]; h; h = h->next) {
		struct bname *x = CONTAINER(h, struct bname, h);
		if (x->hash == hash && strncmp(x->name, name, n + 1) == 0)
			return x;
	}
	return NULL;
}

static struct baddr *addr_find(const struct bindings *b, const struct addr *a, uint32_t hash)
{
	for (struct hnode *h = b->addrs.b[hash & b->addrs.mask]; h; h = h->next) {
		struct baddr *x = CONTAINER(h, struct baddr, h);
		if (x->hash == hash && addr_eq(&x->addr, a))
			return x;
	}
	return NULL;
}

static struct bclient *client_find(const struct bindings *b, const struct addr *a,
                                   uint32_t hash)
{
	for (struct hnode *h = b->clients.b[hash & b->clients.mask]; h; h = h->next) {
		struct bclient *x = CONTAINER(h, struct bclient, h);
		if (x->hash == hash && x->addr.family == a->family &&
		    memcmp(x->addr.b, a->b, sizeof a->b) == 0)
			return x;
	}
	return NULL;
}

static struct binding *bind_find(const struct bindings *b, const struct bname *n,
                                 const struct addr *a, uint32_t ah)
{
	uint32_t hash = hash_bind(b, ah, n->hash);
	for (struct hnode *h = b->binds.b[hash & b->binds.mask]; h; h = h->next) {
		struct binding *x = CONTAINER(h, struct binding, h);
		if (x->hash == hash && x->name == n && addr_eq(&x->addr->addr, a))
			return x;
	}
	return NULL;
}

/* Charge / uncharge a client one binding, keeping heavy[] and heaviest. */
static void client_charge(struct bindings *b, struct bclient *c, struct binding *x)
{
	if (c->count)
		l_del(&b->heavy[c->count], &c->heavy);
	c->count++;
	l_append(&b->heavy[c->count], &c->heavy);
	if (c->count > b->heaviest)
		b->heaviest = c->count;
	l_append(&c->binds, &x->by_client);
	x->client = c;
}

static void client_uncharge(struct bindings *b, struct binding *x)
{
	struct bclient *c = x->client;
	l_del(&c->binds, &x->by_client);
	l_del(&b->heavy[c->count], &c->heavy);
	c->count--;
	if (c->count)
		l_append(&b->heavy[c->count], &c->heavy);
	while (b->heaviest && !b->heavy[b->heaviest].first)
		b->heaviest--;
	x->client = NULL;
	if (!c->count) {
		h_del(&c->h);
		free(c);
	}
}

static struct list *slot_of(struct bindings *b, uint64_t expires)
{
	return &b->wheel[(expires >> TICK_SHIFT) & (WHEEL_SLOTS - 1)];
}

static void slot_add(struct bindings *b, struct binding *x)
{
	l_append(slot_of(b, x->expires), &x->by_slot);
}

static void slot_del(struct bindings *b, struct binding *x)
{
	l_del(slot_of(b, x->expires), &x->by_slot);
}

/* Unlink x from everything, free it and the nodes it alone used. */
static void drop(struct bindings *b, struct binding *x)
{
	h_del(&x->h);
	slot_del(b, x);
	client_uncharge(b, x);
	struct bname *n = x->name;
	l_del(&n->binds, &x->by_name);
	if (--n->count == 0) {
		h_del(&n->h);
		free(n);
	}
	struct baddr *a = x->addr;
	l_del(&a->binds, &x->by_addr);
	if (!a->binds.first) {
		h_del(&a->h);
		free(a);
	}
	free(x);
	b->count--;
}

/* ---- API ---- */

void bind_config_defaults(struct bind_config *c, size_t max_entries)
{
	*c = (struct bind_config){
	    .max_entries = max_entries,
	    .max_per_name = BIND_DEFAULT_PER_NAME,
	    .max_per_client = BIND_DEFAULT_PER_CLIENT,
	    .seed = 0,
	};
}

void bind_free(struct bindings *b)
{
	if (!b)
		return;
	if (b->heavy) {
		for (size_t i = 0; i < WHEEL_SLOTS; i++)
			while (b->wheel[i].first)
				drop(b, CONTAINER(b->wheel[i].first, struct binding, by_slot));
	}
	free(b->binds.b);
	free(b->names.b);
	free(b->addrs.b);
	free(b->clients.b);
	free(b->heavy);
	if (b->lock) {
		for (unsigned i = 0; i < BIND_LOCK_SLOTS; i++)
			pthread_mutex_destroy(&b->lock->slot[i].m);
		free(b->lock);
	}
	free(b);
}

struct bindings *bind_new_config(const struct bind_config *c)
{
	if (!c || !c->max_entries || !c->max_per_name || !c->max_per_client)
		return NULL;
	struct bindings *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->cfg = *c;
	if (b->cfg.max_per_client > b->cfg.max_entries)
		b->cfg.max_per_client = b->cfg.max_entries;
	if (!b->cfg.seed)
		b->cfg.seed = 0x6a09e667f3bcc909ull; /* tests: reproducible */
	size_t quarter = c->max_entries / 4;
	b->heavy = calloc(b->cfg.max_per_client + 1, sizeof *b->heavy);
	if (!b->heavy || table_init(&b->binds, c->max_entries) || table_init(&b->names, quarter) ||
	    table_init(&b->addrs, quarter) || table_init(&b->clients, quarter / 16)) {
		bind_free(b);
		return NULL;
	}
	return b;
}

struct bindings *bind_new(size_t max_entries)
{
	struct bind_config c;
	bind_config_defaults(&c, max_entries);
	return bind_new_config(&c);
}

static const struct addr engine_client = {.family = ADDR_NONE};

static void evict_for(struct bindings *b, const struct addr *client, uint32_t ch,
                      const char *name, size_t nlen, uint32_t nh)
{
	struct bname *n = name_find(b, name, nlen, nh);
	if (n && n->count >= b->cfg.max_per_name)
		drop(b, CONTAINER(n->binds.first, struct binding, by_name));
	struct bclient *c = client_find(b, client, ch);
	if (c && c->count >= b->cfg.max_per_client)
		drop(b, CONTAINER(c->binds.first, struct binding, by_client));
	if (b->count >= b->cfg.max_entries && b->heaviest) {
		c = client_find(b, client, ch);
		struct bclient *h = c && c->count == b->heaviest
		                        ? c
		                        : CONTAINER(b->heavy[b->heaviest].first, struct bclient, heavy);
		drop(b, CONTAINER(h->binds.first, struct binding, by_client));
	}
}

static int add_unlocked(struct bindings *b, const char *name, const struct addr *a,
                    const struct addr *client, uint64_t expires, uint64_t now)
{
	if (!b || !name || !a)
		return -EINVAL;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > NAME_MAX_LEN)
		return -EINVAL;
	if (!client)
		client = &engine_client;
	uint32_t nh = hash_name(b->cfg.seed, name, nlen), ah = hash_addr(b->cfg.seed, a);
	uint32_t ch = hash_addr(b->cfg.seed ^ 0x3c6ef372fe94f82bull, client);
	struct bname *n = name_find(b, name, nlen, nh);
	struct binding *x = n ? bind_find(b, n, a, ah) : NULL;
	if (x) {
		/* Refresh: never shorten a binding a longer answer gave. */
		if (expires > x->expires) {
			slot_del(b, x);
			x->expires = expires;
			slot_add(b, x);
		}
		l_del(&n->binds, &x->by_name);
		l_append(&n->binds, &x->by_name);
		struct bclient *c = client_find(b, client, ch);
		if (c == x->client) {
			l_del(&c->binds, &x->by_client);
			l_append(&c->binds, &x->by_client);
			return 0;
		}
		/* Another client asked: the charge moves to it. */
		if (c && c->count >= b->cfg.max_per_client)
			drop(b, CONTAINER(c->binds.first, struct binding, by_client));
		c = client_find(b, client, ch);
		if (!c) {
			c = calloc(1, sizeof *c);
			if (!c)
				return 0; /* stays charged to its old client: still bound */
			c->addr = *client;
			c->hash = ch;
			h_add(&b->clients, ch, &c->h);
		}
		client_uncharge(b, x);
		client_charge(b, c, x);
		return 0;
	}
	if (expires <= now)
		return 0;
	evict_for(b, client, ch, name, nlen, nh);
	x = calloc(1, sizeof *x);
	n = name_find(b, name, nlen, nh);
	bool new_n = !n;
	if (new_n && x && (n = malloc(sizeof *n + nlen + 1))) {
		memset(n, 0, sizeof *n);
		n->hash = nh;
		memcpy(n->name, name, nlen + 1);
	}
	struct baddr *ad = addr_find(b, a, ah);
	bool new_a = !ad;
	if (new_a && x && n && (ad = calloc(1, sizeof *ad))) {
		ad->hash = ah;
		ad->addr = *a;
	}
	struct bclient *c = client_find(b, client, ch);
	bool new_c = !c;
	if (new_c && x && n && ad && (c = calloc(1, sizeof *c))) {
		c->addr = *client;
		c->hash = ch;
	}
	if (!x || !n || !ad || !c) {
		free(x);
		if (new_n)
			free(n);
		if (new_a)
			free(ad);
		if (new_c)
			free(c);
		return -ENOMEM;
	}
	if (new_n)
		h_add(&b->names, nh, &n->h);
	if (new_a)
		h_add(&b->addrs, ah, &ad->h);
	if (new_c)
		h_add(&b->clients, ch, &c->h);
	x->name = n;
	x->addr = ad;
	x->expires = expires;
	x->hash = hash_bind(b, ah, nh);
	h_add(&b->binds, x->hash, &x->h);
	n->count++;
	l_append(&n->binds, &x->by_name);
	l_append(&ad->binds, &x->by_addr);
	client_charge(b, c, x);
	slot_add(b, x);
	b->count++;
	return 0;
}


static bool has_unlocked(const struct bindings *b, const struct addr *a, const char *name, uint64_t now)
{
	if (!b || !a || !name)
		return false;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > NAME_MAX_LEN)
		return false;
	const struct bname *n = name_find(b, name, nlen, hash_name(b->cfg.seed, name, nlen));
	if (!n)
		return false;
	const struct binding *x = bind_find(b, n, a, hash_addr(b->cfg.seed, a));
	return x && x->expires > now;
}

static bool any_unlocked(const struct bindings *b, const struct addr *a, uint64_t now,
              bool (*fn)(const char *name, void *arg), void *arg)
{
	if (!b || !a || !fn)
		return false;
	const struct baddr *ad = addr_find(b, a, hash_addr(b->cfg.seed, a));
	if (!ad)
		return false;
	for (const struct lnode *l = ad->binds.first; l; l = l->next) {
		const struct binding *x = CONTAINER(l, struct binding, by_addr);
		if (x->expires > now && fn(x->name->name, arg))
			return true;
	}
	return false;
}

static size_t expire_unlocked(struct bindings *b, uint64_t now)
{
	if (!b)
		return 0;
	uint64_t tick = now >> TICK_SHIFT;
	if (tick < b->cursor)
		b->cursor = tick; /* time never goes back; be safe if it does */
	uint64_t steps = tick - b->cursor >= WHEEL_SLOTS ? WHEEL_SLOTS : tick - b->cursor + 1;
	size_t dropped = 0;
	for (uint64_t i = 0; i < steps; i++) {
		struct list *l = &b->wheel[(b->cursor + i) & (WHEEL_SLOTS - 1)];
		struct lnode *p = l->first;
		while (p) {
			struct lnode *next = p->next;
			struct binding *x = CONTAINER(p, struct binding, by_slot);
			if (x->expires <= now) {
				drop(b, x);
				dropped++;
			}
			p = next;
		}
	}
	b->cursor = tick; /* this tick is not over: walked again next time */
	return dropped;
}


static size_t client_count_unlocked(const struct bindings *b, const struct addr *client)
{
	if (!b)
		return 0;
	if (!client)
		client = &engine_client;
	const struct bclient *c =
	    client_find(b, client, hash_addr(b->cfg.seed ^ 0x3c6ef372fe94f82bull, client));
	return c ? c->count : 0;
}

/* ---- sharing between threads (bind_share) ---- */

int bind_share(struct bindings *b)
{
	if (!b)
		return -EINVAL;
	if (b->lock)
		return 0;
	struct bind_lock *l = aligned_alloc(64, sizeof *l);
	if (!l)
		return -ENOMEM;
	for (unsigned i = 0; i < BIND_LOCK_SLOTS; i++) {
		int rc = pthread_mutex_init(&l->slot[i].m, NULL);
		if (rc != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&l->slot[i].m);
			free(l);
			return -rc;
		}
	}
	b->lock = l;
	return 0;
}

static unsigned my_slot(void)
{
	static atomic_uint next;
	static _Thread_local unsigned slot = 0, have = 0;

	if (!have) {
		slot = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) % BIND_LOCK_SLOTS;
		have = 1;
	}
	return slot;
}

static void rd_lock(const struct bindings *b)
{
	if (b->lock)
		(void)pthread_mutex_lock(&b->lock->slot[my_slot()].m);
}

static void rd_unlock(const struct bindings *b)
{
	if (b->lock)
		(void)pthread_mutex_unlock(&b->lock->slot[my_slot()].m);
}

static void wr_lock(const struct bindings *b)
{
	if (b->lock)
		for (unsigned i = 0; i < BIND_LOCK_SLOTS; i++)
			(void)pthread_mutex_lock(&b->lock->slot[i].m);
}

static void wr_unlock(const struct bindings *b)
{
	if (b->lock)
		for (unsigned i = BIND_LOCK_SLOTS; i-- > 0;)
			(void)pthread_mutex_unlock(&b->lock->slot[i].m);
}

int bind_add_client(struct bindings *b, const char *name, const struct addr *a,
                    const struct addr *client, uint64_t expires, uint64_t now)
{
	if (!b)
		return -EINVAL;
	wr_lock(b);
	int rc = add_unlocked(b, name, a, client, expires, now);
	wr_unlock(b);
	return rc;
}

int bind_add(struct bindings *b, const char *name, const struct addr *a, uint64_t expires,
             uint64_t now)
{
	return bind_add_client(b, name, a, NULL, expires, now);
}

bool bind_has(const struct bindings *b, const struct addr *a, const char *name, uint64_t now)
{
	if (!b)
		return false;
	rd_lock(b);
	bool r = has_unlocked(b, a, name, now);
	rd_unlock(b);
	return r;
}

bool bind_any(const struct bindings *b, const struct addr *a, uint64_t now,
              bool (*fn)(const char *name, void *arg), void *arg)
{
	if (!b)
		return false;
	rd_lock(b);
	bool r = any_unlocked(b, a, now, fn, arg);
	rd_unlock(b);
	return r;
}

size_t bind_expire(struct bindings *b, uint64_t now)
{
	if (!b)
		return 0;
	wr_lock(b);
	size_t n = expire_unlocked(b, now);
	wr_unlock(b);
	return n;
}

size_t bind_count(const struct bindings *b)
{
	if (!b)
		return 0;
	rd_lock(b);
	size_t n = b->count;
	rd_unlock(b);
	return n;
}

size_t bind_client_count(const struct bindings *b, const struct addr *client)
{
	if (!b)
		return 0;
	rd_lock(b);
	size_t n = client_count_unlocked(b, client);
	rd_unlock(b);
	return n;
}
