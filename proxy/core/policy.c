/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The allowlist as lookup tables.
 *
 *   exact     "updates.example.com"  -> entries (ports + rule), in file order
 *   wildcard  "cdn.example.com"      -> entries of "*.cdn.example.com"
 *   ranges    (family, prefix, net)  -> entries, one key per prefix length
 *
 * All three are the same open-addressing table over byte keys. A wildcard
 * "*.x" covers names strictly below x, so a name is probed exact first,
 * then from its parent upward, one label at a time: deeper wildcards win,
 * and a lookup costs one probe per label. Ranges are probed from the
 * longest prefix length present in the family down to the shortest.
 *
 * Strings (keys, file names, entry text) live in an arena owned by the
 * policy; file names are interned so 100,000 entries from one file share it.
 */
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 65536

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	char data[];
};

struct pentry {
	struct policy_rule rule;
	const uint16_t *ports; /* sorted, unique; in the arena */
	uint16_t nports;
	bool wildcard;
	bool is_range;
	const char *name; /* name entries: the name without "*." */
	uint32_t next;    /* next entry with the same key, index + 1; 0 ends */
};

struct slot {
	uint32_t hash;
	uint32_t group; /* index + 1 into groups; 0 = empty */
};

struct group {
	const uint8_t *key;
	uint32_t keylen;
	uint32_t first, last; /* entry index + 1 */
};

struct table {
	struct slot *slots;
	size_t mask; /* slots - 1, a power of two minus one; 0 with no slots */
	size_t count;
	struct group *groups;
	size_t ngroups, capgroups;
};

struct strtab {
	struct slot *slots;
	size_t mask, count;
	const char **strs;
	size_t n, cap;
};

struct policy_builder {
	struct arena_block *arena;
	struct pentry *entries;
	size_t nentries, capentries;
	struct table exact, wild, range;
	struct strtab files;
	bool failed;
	size_t nexact, nwild, nranges;
	size_t nshared; /* entries marked "shared" */
	uint8_t prefixes4[33], prefixes6[129]; /* prefix lengths present */
	uint8_t name_ports[65536 / 8];
};

struct policy {
	struct policy_builder b;       /* same shape, frozen */
	uint8_t plen4[33], plen6[129]; /* present prefix lengths, longest first */
	size_t nplen4, nplen6;
};

/* 64-bit multiply-xorshift over the bytes; keys come from the config. */
static uint32_t policy_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	uint64_t v = 0;
	memcpy(&v, p, n);
	h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 32;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 29;
	return (uint32_t)h;
}

static void *arena_alloc(struct policy_builder *b, size_t n, size_t align)
{
	struct arena_block *a = b->arena;
	if (a) {
		size_t off = (a->used + align - 1) & ~(align - 1);
		if (off + n <= a->cap) {
			a->used = off + n;
			return a->data + off;
		}
	}
	size_t cap = n + align > ARENA_BLOCK ? n + align : ARENA_BLOCK;
	struct arena_block *nb = malloc(sizeof *nb + cap);
	if (!nb)
		return NULL;
	nb->cap = cap;
	nb->used = 0;
	/* Keep the fuller block behind: an oversized string gets its own. */
	if (a && cap > ARENA_BLOCK) {
		nb->next = a->next;
		a->next = nb;
	} else {
		nb->next = a;
		b->arena = nb;
	}
	size_t off = ((uintptr_t)nb->data % align) ? align - (uintptr_t)nb->data % align : 0;
	nb->used = off + n;
	return nb->data + off;
}

static char *arena_strdup(struct policy_builder *b, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = arena_alloc(b, n, 1);
	if (d)
		memcpy(d, s, n);
	return d;
}

static int slots_grow(struct slot **slots, size_t *mask, size_t count)
{
	size_t cap = *slots ? *mask + 1 : 0;
	if ((count + 1) * 2 <= cap) /* load <= 1/2: short probe runs on misses */
		return 0;
	size_t ncap = cap ? cap * 2 : 64;
	struct slot *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++) {
		if (!(*slots)[i].group)
			continue;
		size_t j = (*slots)[i].hash & (ncap - 1);
		while (ns[j].group)
			j = (j + 1) & (ncap - 1);
		ns[j] = (*slots)[i];
	}
	free(*slots);
	*slots = ns;
	*mask = ncap - 1;
	return 0;
}

static const struct group *table_find(const struct table *t, const uint8_t *key, size_t n)
{
	if (!t->slots)
		return NULL;
	uint32_t h = policy_hash(key, n);
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct slot *s = &t->slots[i];
		if (!s->group)
			return NULL;
		if (s->hash != h)
			continue;
		const struct group *g = &t->groups[s->group - 1];
		if (g->keylen == n && memcmp(g->key, key, n) == 0)
			return g;
	}
}

/* Append entry index idx to the group of key (created, key copied, if new). */
static int table_add(struct policy_builder *b, struct table *t, const uint8_t *key, size_t n,
                     uint32_t idx)
{
	if (slots_grow(&t->slots, &t->mask, t->count) < 0)
		return -ENOMEM;
	uint32_t h = policy_hash(key, n);
	size_t i = h & t->mask;
	for (;; i = (i + 1) & t->mask) {
		struct slot *s = &t->slots[i];
		if (!s->group)
			break;
		if (s->hash != h)
			continue;
		struct group *g = &t->groups[s->group - 1];
		if (g->keylen == n && memcmp(g->key, key, n) == 0) {
			b->entries[g->last - 1].next = idx + 1;
			g->last = idx + 1;
			return 0;
		}
	}
	if (t->ngroups == t->capgroups) {
		size_t nc = t->capgroups ? t->capgroups * 2 : 64;
		struct group *ng = realloc(t->groups, nc * sizeof *ng);
		if (!ng)
			return -ENOMEM;
		t->groups = ng;
		t->capgroups = nc;
	}
	uint8_t *k = arena_alloc(b, n ? n : 1, 1);
	if (!k)
		return -ENOMEM;
	memcpy(k, key, n);
	t->groups[t->ngroups] = (struct group){k, (uint32_t)n, idx + 1, idx + 1};
	t->ngroups++;
	t->slots[i] = (struct slot){h, (uint32_t)t->ngroups};
	t->count++;
	return 0;
}

static const char *intern_file(struct policy_builder *b, const char *s)
{
	struct strtab *st = &b->files;
	size_t n = strlen(s);
	uint32_t h = policy_hash((const uint8_t *)s, n);
	if (st->slots) {
		for (size_t i = h & st->mask; st->slots[i].group; i = (i + 1) & st->mask) {
			const char *c = st->strs[st->slots[i].group - 1];
			if (st->slots[i].hash == h && strcmp(c, s) == 0)
				return c;
		}
	}
	if (slots_grow(&st->slots, &st->mask, st->count) < 0)
		return NULL;
	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		const char **ns = realloc(st->strs, nc * sizeof *ns);
		if (!ns)
			return NULL;
		st->strs = ns;
		st->cap = nc;
	}
	char *d = arena_strdup(b, s);
	if (!d)
		return NULL;
	st->strs[st->n++] = d;
	size_t i = h & st->mask;
	while (st->slots[i].group)
		i = (i + 1) & st->mask;
	st->slots[i] = (struct slot){h, (uint32_t)st->n};
	st->count++;
	return d;
}

struct policy_builder *policy_builder_new(void)
{
	return calloc(1, sizeof(struct policy_builder));
}

static void builder_release(struct policy_builder *b)
{
	struct arena_block *a = b->arena;
	while (a) {
		struct arena_block *n = a->next;
		free(a);
		a = n;
	}
	free(b->entries);
	struct table *ts[] = {&b->exact, &b->wild, &b->range};
	for (size_t i = 0; i < 3; i++) {
		free(ts[i]->slots);
		free(ts[i]->groups);
	}
	free(b->files.slots);
	free(b->files.strs);
}

void policy_builder_free(struct policy_builder *b)
{
	if (!b)
		return;
	builder_release(b);
	free(b);
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/*
 * A new entry with its rule and sorted unique ports (none given: 443, the
 * SPEC default). Returns its index, or -ENOMEM / -EINVAL.
 */
static long new_entry(struct policy_builder *b, const uint16_t *ports, size_t nports,
                      const char *file, unsigned line, const char *text)
{
	static const uint16_t dflt = 443;
	if (nports > POLICY_MAX_PORTS || (nports && !ports))
		return -EINVAL;
	if (!nports) {
		ports = &dflt;
		nports = 1;
	}
	if (b->nentries >= UINT32_MAX - 1)
		return -ENOMEM;
	if (b->nentries == b->capentries) {
		size_t nc = b->capentries ? b->capentries * 2 : 256;
		struct pentry *ne = realloc(b->entries, nc * sizeof *ne);
		if (!ne)
			return -ENOMEM;
		b->entries = ne;
		b->capentries = nc;
	}
	uint16_t *p = arena_alloc(b, nports * sizeof *p, _Alignof(uint16_t));
	if (!p)
		return -ENOMEM;
	memcpy(p, ports, nports * sizeof *p);
	qsort(p, nports, sizeof *p, cmp_u16);
	size_t u = 0;
	for (size_t i = 0; i < nports; i++)
		if (u == 0 || p[u - 1] != p[i])
			p[u++] = p[i];
	const char *f = intern_file(b, file ? file : "");
	const char *t = arena_strdup(b, text ? text : "");
	if (!f || !t)
		return -ENOMEM;
	struct pentry *e = &b->entries[b->nentries];
	*e = (struct pentry){.rule = {f, line, t}, .ports = p, .nports = (uint16_t)u};
	return (long)b->nentries++;
}

int policy_builder_add_name(struct policy_builder *b, const char *name, bool wildcard,
                            const uint16_t *ports, size_t nports, const char *file, unsigned line,
                            const char *text)
{
	if (!b || !name)
		return -EINVAL;
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return -EINVAL;
	long idx = new_entry(b, ports, nports, file, line, text ? text : name);
	if (idx < 0) {
		b->failed = true;
		return (int)idx;
	}
	struct pentry *e = &b->entries[idx];
	e->wildcard = wildcard;
	int r =
	    table_add(b, wildcard ? &b->wild : &b->exact, (const uint8_t *)name, n, (uint32_t)idx);
	if (r < 0) {
		b->nentries--;
		b->failed = true;
		return r;
	}
	/* keys are not NUL-terminated: the name gets its own copy */
	char *nm = arena_strdup(b, name);
	if (!nm) {
		b->failed = true;
		return -ENOMEM;
	}
	b->entries[idx].name = nm;
	for (size_t i = 0; i < e->nports; i++)
		b->name_ports[e->ports[i] / 8] |= (uint8_t)(1u << (e->ports[i] % 8));
	if (wildcard)
		b->nwild++;
	else
		b->nexact++;
	return 0;
}

int policy_builder_mark_shared(struct policy_builder *b)
{
	if (!b || b->nentries == 0)
		return -EINVAL;
	if (!b->entries[b->nentries - 1].rule.shared)
		b->nshared++;
	b->entries[b->nentries - 1].rule.shared = true;
	return 0;
}

/* Range key: family, prefix, then the masked address bytes of the family. */
static size_t range_key(const struct addr *a, unsigned prefix, uint8_t key[18])
{
	size_t n = a->family == ADDR_V4 ? 4 : 16, full = prefix / 8;
	key[0] = a->family;
	key[1] = (uint8_t)prefix;
	memcpy(key + 2, a->b, full);
	if (full < n) {
		key[2 + full] = (uint8_t)(a->b[full] & (0xff00u >> (prefix % 8)));
		memset(key + 3 + full, 0, n - full - 1);
	}
	return 2 + n;
}

int policy_builder_add_range(struct policy_builder *b, const struct addr *net, unsigned prefix,
                             const uint16_t *ports, size_t nports, const char *file, unsigned line,
                             const char *text)
{
	if (!b || !net || (net->family != ADDR_V4 && net->family != ADDR_V6) ||
	    prefix > (net->family == ADDR_V4 ? 32u : 128u))
		return -EINVAL;
	long idx = new_entry(b, ports, nports, file, line, text);
	if (idx < 0) {
		b->failed = true;
		return (int)idx;
	}
	b->entries[idx].is_range = true;
	uint8_t key[18];
	size_t kn = range_key(net, prefix, key);
	int r = table_add(b, &b->range, key, kn, (uint32_t)idx);
	if (r < 0) {
		b->nentries--;
		b->failed = true;
		return r;
	}
	if (net->family == ADDR_V4)
		b->prefixes4[prefix] = 1;
	else
		b->prefixes6[prefix] = 1;
	b->nranges++;
	return 0;
}

struct policy *policy_builder_finish(struct policy_builder *b)
{
	if (!b)
		return NULL;
	if (b->failed) {
		policy_builder_free(b);
		return NULL;
	}
	struct policy *p = calloc(1, sizeof *p);
	if (!p) {
		policy_builder_free(b);
		return NULL;
	}
	p->b = *b;
	free(b);
	for (int i = 32; i >= 0; i--)
		if (p->b.prefixes4[i])
			p->plen4[p->nplen4++] = (uint8_t)i;
	for (int i = 128; i >= 0; i--)
		if (p->b.prefixes6[i])
			p->plen6[p->nplen6++] = (uint8_t)i;
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	builder_release(&p->b);
	free(p);
}

static bool entry_allows(const struct pentry *e, uint16_t port)
{
	size_t lo = 0, hi = e->nports;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (e->ports[mid] == port)
			return true;
		if (e->ports[mid] < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* First entry of the group allowing port; *known set when the group exists. */
static const struct policy_rule *group_match(const struct policy *p, const struct group *g,
                                             uint16_t port, bool *known)
{
	if (!g)
		return NULL;
	*known = true;
	for (uint32_t i = g->first; i; i = p->b.entries[i - 1].next)
		if (entry_allows(&p->b.entries[i - 1], port))
			return &p->b.entries[i - 1].rule;
	return NULL;
}

const struct policy_rule *policy_match_name(const struct policy *p, const char *name, uint16_t port,
                                            bool *name_known)
{
	bool known = false;
	const struct policy_rule *r = NULL;
	if (name_known)
		*name_known = false;
	if (!p || !name)
		return NULL;
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return NULL;
	r = group_match(p, table_find(&p->b.exact, (const uint8_t *)name, n), port, &known);
	/* "*.x" covers strictly below x: probe each proper suffix, deepest first. */
	for (size_t i = 0; !r && i < n; i++) {
		if (name[i] != '.' || i + 1 >= n)
			continue;
		r = group_match(p, table_find(&p->b.wild, (const uint8_t *)name + i + 1, n - i - 1),
		                port, &known);
	}
	if (name_known)
		*name_known = known || r;
	return r;
}

const struct policy_rule *policy_match_addr(const struct policy *p, const struct addr *a,
                                            uint16_t port, bool *addr_known)
{
	bool known = false;
	const struct policy_rule *r = NULL;
	if (addr_known)
		*addr_known = false;
	if (!p || !a || (a->family != ADDR_V4 && a->family != ADDR_V6))
		return NULL;
	const uint8_t *plen = a->family == ADDR_V4 ? p->plen4 : p->plen6;
	size_t nplen = a->family == ADDR_V4 ? p->nplen4 : p->nplen6;
	for (size_t i = 0; !r && i < nplen; i++) {
		uint8_t key[18];
		size_t kn = range_key(a, plen[i], key);
		r = group_match(p, table_find(&p->b.range, key, kn), port, &known);
	}
	if (addr_known)
		*addr_known = known || r;
	return r;
}

bool policy_port_has_names(const struct policy *p, uint16_t port)
{
	return p && (p->b.name_ports[port / 8] >> (port % 8)) & 1;
}

void policy_stats(const struct policy *p, struct policy_stats *st)
{
	if (!st)
		return;
	*st = (struct policy_stats){0};
	if (!p)
		return;
	st->exact_names = p->b.nexact;
	st->wildcards = p->b.nwild;
	st->ranges = p->b.nranges;
	st->shared = p->b.nshared;
}

void policy_foreach_name(const struct policy *p,
                         void (*fn)(const char *name, bool wildcard, void *arg), void *arg)
{
	if (!p || !fn)
		return;
	for (size_t i = 0; i < p->b.nentries; i++) {
		const struct pentry *e = &p->b.entries[i];
		if (!e->is_range)
			fn(e->name, e->wildcard, arg);
	}
}
