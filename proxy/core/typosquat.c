/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * typosquat.h. Domains are grouped (equal strings, adjacent in the input)
 * and folded once (ind_fold). A group of folded length L >= SMALL_LEN is
 * cut, once for max 1 and once for max 2, into max + 1 disjoint pieces at
 * offsets fixed by L (pieces(): short ones in front, the long one at the
 * end, because the end is the public suffix and says little); every piece
 * is a key (L, j, bytes) of a hash table whose posting list holds the
 * groups, in order.
 *
 * Why it finds every match (pigeonhole): edit distance <= max <= 2 means
 * at most max edits, each touching at most one piece, so one of the max + 1
 * pieces of the domain is untouched and sits in the folded name at its own
 * offset moved by at most max (the insertions minus deletions before it),
 * and the domain's folded length is within max of the name's. So a query
 * looks up, for every L in that window, every piece j and every shift
 * s in [-max, max], the name's bytes at (offset_j(L) + s, length_j(L)), and
 * verifies each group it finds (length window on the unfolded strings, then
 * the banded edit distance). Shorter groups (L < SMALL_LEN) sit in one list
 * per length. Keys are 64-bit hashes: a collision only adds a candidate.
 * Posting lists are in group order, so a list is cut at the best so far.
 */
#include "typosquat.h"

#include "indicators.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_LEN 6
#define FOLD_CAP 256
#define NO_MATCH ((size_t)-1)

struct group {
	size_t first;     /* index of its first domain in the input */
	uint32_t raw_len; /* strlen of the domain */
	uint32_t fold_off;
	uint32_t fold_len;
};

struct slot {
	uint64_t h;
	uint32_t off, n; /* into postings; n == 0: empty */
};

struct typo_index {
	struct group *g;
	size_t ng;
	char *folds; /* folded domains, NUL-separated */
	char **raw;  /* each group's domain (owned) */
	struct slot *slots;
	size_t mask;
	uint32_t *postings;
	uint32_t *stamp; /* per group: the query that last verified it */
	uint32_t query;
};

static uint64_t key_hash(size_t len, unsigned j, const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)len << 8 | j);
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return h ? h : 1;
}

static uint64_t str_hash(const char *s)
{
	return key_hash(0, 7, s, strlen(s));
}

/*
 * max + 1 pieces of a folded string of length L >= SMALL_LEN (max 1 or 2):
 * short ones in front, the long one at the end. Key j: 0..2 (max 2), 4..5 (max 1).
 */
static unsigned pieces(size_t L, unsigned max, size_t off[3], size_t len[3], unsigned j0[1])
{
	size_t base = L - 3;
	unsigned np = max + 1;
	for (unsigned j = 0; j + 1 < np; j++)
		len[j] = base / np;
	len[np - 1] = L - (np - 1) * (base / np);
	off[0] = 0;
	for (unsigned j = 1; j < np; j++)
		off[j] = off[j - 1] + len[j - 1];
	*j0 = max == 2 ? 0 : 4;
	return np;
}

/* Bounded Levenshtein on folded strings (as ind_within_edit_distance). */
static bool within(const char *fa, size_t na, const char *fb, size_t nb, unsigned max)
{
	if ((na > nb ? na - nb : nb - na) > max || na >= FOLD_CAP || nb >= FOLD_CAP)
		return false;
	unsigned prev[FOLD_CAP + 1], cur[FOLD_CAP + 1];
	const unsigned big = max + 1;
	for (size_t j = 0; j <= nb; j++) {
		prev[j] = j <= max ? (unsigned)j : big;
		cur[j] = big;
	}
	for (size_t i = 1; i <= na; i++) {
		unsigned rowmin = big;
		cur[0] = i <= max ? (unsigned)i : big;
		size_t jlo = i > max ? i - max : 1, jhi = i + max < nb ? i + max : nb;
		if (jlo > 1)
			cur[jlo - 1] = big;
		for (size_t j = jlo; j <= jhi; j++) {
			unsigned v = prev[j - 1] + (fa[i - 1] != fb[j - 1]);
			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			cur[j] = v > big ? big : v;
			if (cur[j] < rowmin)
				rowmin = cur[j];
		}
		if (jhi < nb)
			cur[jhi + 1] = big;
		if (cur[0] < rowmin)
			rowmin = cur[0];
		if (rowmin > max)
			return false;
		size_t hi = jhi + 1 <= nb ? jhi + 1 : nb;
		memcpy(prev, cur, (hi + 1) * sizeof *prev);
	}
	return prev[nb] <= max;
}

struct pair {
	uint64_t h;
	uint32_t g;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->g < y->g ? -1 : x->g > y->g;
}

static const struct slot *find(const struct typo_index *t, uint64_t h)
{
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct slot *s = &t->slots[i];
		if (!s->n || s->h == h)
			return s->n ? s : NULL;
	}
}

void typo_free(struct typo_index *t)
{
	if (!t)
		return;
	if (t->raw)
		for (size_t i = 0; i < t->ng; i++)
			free(t->raw[i]);
	free(t->raw);
	free(t->g);
	free(t->folds);
	free(t->slots);
	free(t->postings);
	free(t->stamp);
	free(t);
}

struct typo_index *typo_build(const char *const *regs, size_t n)
{
	if (!regs || !n || n >= UINT32_MAX / 4)
		return NULL;
	struct typo_index *t = calloc(1, sizeof *t);
	struct pair *pairs = NULL;
	if (!t)
		return NULL;
	t->g = calloc(n, sizeof *t->g);
	t->raw = calloc(n, sizeof *t->raw);
	pairs = calloc(n * 6, sizeof *pairs); /* 2 + 3 pieces, or 1 short key, + 1 exact */
	if (!t->g || !t->raw || !pairs)
		goto fail;
	size_t foldcap = 0;
	for (size_t i = 0; i < n; i++)
		foldcap += strlen(regs[i]) + 1;
	t->folds = malloc(foldcap > 0 ? foldcap : 1);
	if (!t->folds)
		goto fail;
	size_t fo = 0, np = 0;
	for (size_t i = 0; i < n; i++) {
		if (t->ng && strcmp(t->raw[t->ng - 1], regs[i]) == 0)
			continue;
		size_t rl = strlen(regs[i]);
		struct group *g = &t->g[t->ng];
		t->raw[t->ng] = strdup(regs[i]);
		if (!t->raw[t->ng])
			goto fail;
		g->first = i;
		g->raw_len = (uint32_t)rl;
		g->fold_off = (uint32_t)fo;
		char tmp[FOLD_CAP];
		size_t fl = ind_fold(regs[i], tmp, sizeof tmp);
		memcpy(t->folds + fo, tmp, fl + 1);
		g->fold_len = (uint32_t)fl;
		fo += fl + 1;
		uint32_t gi = (uint32_t)t->ng++;
		if (fl < SMALL_LEN) {
			pairs[np++] = (struct pair){key_hash(fl, 3, "", 0), gi};
		} else {
			for (unsigned m = 1; m <= 2; m++) {
				size_t off[3], len[3];
				unsigned j0, k = pieces(fl, m, off, len, &j0);
				for (unsigned j = 0; j < k; j++)
					pairs[np++] = (struct pair){
					    key_hash(fl, j0 + j, tmp + off[j], len[j]), gi};
			}
		}
		pairs[np++] = (struct pair){str_hash(regs[i]), gi}; /* typo_has */
	}
	qsort(pairs, np, sizeof *pairs, cmp_pair);
	size_t nkeys = 0;
	for (size_t i = 0; i < np; i++)
		nkeys += !i || pairs[i].h != pairs[i - 1].h;
	size_t cap = 16;
	while (cap < nkeys * 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof *t->slots);
	t->postings = malloc(np * sizeof *t->postings);
	t->stamp = calloc(t->ng, sizeof *t->stamp);
	if (!t->slots || !t->postings || !t->stamp)
		goto fail;
	t->mask = cap - 1;
	size_t w = 0;
	for (size_t i = 0; i < np;) {
		size_t k = i;
		uint32_t off = (uint32_t)w;
		for (; k < np && pairs[k].h == pairs[i].h; k++)
			if (k == i || pairs[k].g != pairs[k - 1].g)
				t->postings[w++] = pairs[k].g;
		size_t s = pairs[i].h & t->mask;
		while (t->slots[s].n)
			s = (s + 1) & t->mask;
		t->slots[s] = (struct slot){pairs[i].h, off, (uint32_t)(w - off)};
		i = k;
	}
	free(pairs);
	return t;
fail:
	free(pairs);
	typo_free(t);
	return NULL;
}

bool typo_has(const struct typo_index *t, const char *reg)
{
	if (!t || !reg)
		return false;
	const struct slot *s = find(t, str_hash(reg));
	for (uint32_t i = 0; s && i < s->n; i++)
		if (strcmp(t->raw[t->postings[s->off + i]], reg) == 0)
			return true;
	return false;
}

static bool matches(const struct typo_index *t, uint32_t gi, const char *fq, size_t lq,
                    size_t rawq, unsigned max)
{
	const struct group *g = &t->g[gi];
	size_t rl = g->raw_len;
	if ((rl > rawq ? rl - rawq : rawq - rl) > max)
		return false;
	return within(fq, lq, t->folds + g->fold_off, g->fold_len, max);
}

size_t typo_nearest_scan(const struct typo_index *t, const char *name, unsigned max)
{
	if (!t || !name)
		return NO_MATCH;
	char fq[FOLD_CAP];
	size_t lq = ind_fold(name, fq, sizeof fq), rawq = strlen(name);
	for (size_t gi = 0; gi < t->ng; gi++)
		if (matches(t, (uint32_t)gi, fq, lq, rawq, max))
			return t->g[gi].first;
	return NO_MATCH;
}

size_t typo_nearest(struct typo_index *t, const char *name, unsigned max)
{
	if (!t || !name)
		return NO_MATCH;
	if (max > 2)
		return typo_nearest_scan(t, name, max);
	char fq[FOLD_CAP];
	size_t lq = ind_fold(name, fq, sizeof fq), rawq = strlen(name);
	if (++t->query == 0) {
		memset(t->stamp, 0, t->ng * sizeof *t->stamp);
		t->query = 1;
	}
	uint32_t best = UINT32_MAX;
	size_t lmin = lq > max ? lq - max : 0;
	for (size_t L = lmin; L <= lq + max; L++) {
		uint64_t keys[3 * 5];
		size_t nk = 0;
		if (L < SMALL_LEN) {
			keys[nk++] = key_hash(L, 3, "", 0);
		} else {
			size_t off[3], len[3];
			unsigned j0, np = pieces(L, max ? max : 1, off, len, &j0);
			for (unsigned j = 0; j < np; j++)
				for (int s = -(int)max; s <= (int)max; s++) {
					long at = (long)off[j] + s;
					if (at < 0 || (size_t)at + len[j] > lq)
						continue;
					keys[nk++] = key_hash(L, j0 + j, fq + at, len[j]);
				}
		}
		for (size_t k = 0; k < nk; k++) {
			const struct slot *sl = find(t, keys[k]);
			for (uint32_t i = 0; sl && i < sl->n; i++) {
				uint32_t gi = t->postings[sl->off + i];
				if (gi >= best)
					break; /* lists are in order: nothing better here */
				if (t->stamp[gi] == t->query)
					continue;
				t->stamp[gi] = t->query;
				if (matches(t, gi, fq, lq, rawq, max))
					best = gi;
			}
		}
	}
	return best == UINT32_MAX ? NO_MATCH : t->g[best].first;
}
