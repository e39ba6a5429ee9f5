/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * typosquat.c against the linear scan engine.c had before it (copied below
 * verbatim but for returning the index): same answer on random tables and
 * random names, with homoglyphs, edits near and far, short and IDN-like.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indicators.h"
#include "typosquat.h"

#define NONE ((size_t)-1)

static int cmp_len(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t la = strlen(x), lb = strlen(y);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(x, y);
}

/* The old engine.c loop (typosquat_check before this index), on regs[] sorted
 * by cmp_len. reg: the name's registrable domain; cmp: reg, or its skeleton
 * (idn). Returns the index of the first entry of the best domain, or NONE;
 * *exact when reg itself is allowed (no look-alike). */
static size_t old_nearest(char **regs, size_t nregs, const char *reg, const char *skel,
                          bool *exact)
{
	size_t len = strlen(reg);
	unsigned max = len >= 12 ? 2 : 1;
	size_t lo = 0, hi = nregs;
	*exact = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strlen(regs[mid]) + max < len)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < nregs && strlen(regs[i]) <= len + max; i++)
		if (strcmp(regs[i], reg) == 0) {
			*exact = true;
			return NONE;
		}
	const char *cmp = reg;
	if (skel) {
		cmp = skel;
		lo = 0;
		max = strlen(skel) >= 12 ? 2 : 1;
	}
	size_t cmplen = strlen(cmp);
	for (size_t i = lo; i < nregs && (cmp != reg || strlen(regs[i]) <= len + max); i++) {
		size_t cl0 = strlen(regs[i]);
		if ((cl0 > cmplen ? cl0 - cmplen : cmplen - cl0) > max ||
		    !ind_within_edit_distance(cmp, regs[i], max))
			continue;
		return i;
	}
	return NONE;
}

static uint64_t rs = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (unsigned)(rs % n);
}

/* Letters a look-alike plays with weigh more. */
static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789-"
                            "01ilrnmvwcd35es01ilrnmvwcd35es";
static const char *const tlds[] = {".com", ".net", ".org", ".io", ".co.uk", ".de", ".dev"};

static void random_reg(char *out, size_t cap, unsigned maxlabel)
{
	unsigned n = 1 + rnd(maxlabel);
	size_t o = 0;
	for (unsigned i = 0; i < n && o + 1 < cap; i++)
		out[o++] = alpha[rnd(sizeof alpha - 1)];
	out[o] = '\0';
	snprintf(out + o, cap - o, "%s", tlds[rnd(7)]);
}

static void mutate(char *s, size_t cap, unsigned edits)
{
	static const char *const glyph[][2] = {{"o", "0"}, {"l", "1"}, {"m", "rn"}, {"w", "vv"},
	                                       {"d", "cl"}, {"e", "3"},  {"s", "5"},  {"i", "l"}};
	for (unsigned k = 0; k < edits; k++) {
		size_t n = strlen(s);
		unsigned op = rnd(5), at = n ? rnd((unsigned)n) : 0;
		char c = alpha[rnd(sizeof alpha - 1)];
		if (op == 0 && n > 1) { /* delete */
			memmove(s + at, s + at + 1, n - at);
		} else if (op == 1 && n + 2 < cap) { /* insert */
			memmove(s + at + 1, s + at, n - at + 1);
			s[at] = c;
		} else if (op == 2 && n) { /* substitute */
			s[at] = c;
		} else if (op == 3 && n + 2 < cap) { /* homoglyph */
			unsigned g = rnd(8);
			char *p = strstr(s, glyph[g][0]);
			if (p) {
				size_t a = strlen(glyph[g][0]), b = strlen(glyph[g][1]);
				memmove(p + b, p + a, strlen(p + a) + 1);
				memcpy(p, glyph[g][1], b);
			}
		} else if (n > 2) { /* transpose */
			unsigned j = at + 1 < n ? at : at - 1;
			char t = s[j];
			s[j] = s[j + 1];
			s[j + 1] = t;
		}
	}
}

static void check_table(size_t n, unsigned maxlabel, unsigned queries)
{
	char **regs = calloc(n, sizeof *regs);
	assert_non_null(regs);
	char buf[128];
	for (size_t i = 0; i < n; i++) {
		if (i && rnd(8) == 0)
			snprintf(buf, sizeof buf, "%s", regs[rnd((unsigned)i)]); /* duplicates */
		else
			random_reg(buf, sizeof buf, maxlabel);
		regs[i] = strdup(buf);
	}
	qsort(regs, n, sizeof *regs, cmp_len);
	struct typo_index *t = typo_build((const char *const *)regs, n);
	assert_non_null(t);
	unsigned hits = 0, exacts = 0;
	for (unsigned q = 0; q < queries; q++) {
		char reg[128];
		if (rnd(4) == 0)
			random_reg(reg, sizeof reg, maxlabel + 3);
		else {
			snprintf(reg, sizeof reg, "%s", regs[rnd((unsigned)n)]);
			mutate(reg, sizeof reg, rnd(4));
		}
		/* idn-like: a "skeleton" that differs from the name itself */
		char skel[128];
		bool idn = rnd(6) == 0;
		if (idn) {
			snprintf(skel, sizeof skel, "%s", reg);
			mutate(skel, sizeof skel, 1);
		}
		bool exact;
		size_t want = old_nearest(regs, n, reg, idn ? skel : NULL, &exact);
		bool has = typo_has(t, reg);
		assert_int_equal(has, exact);
		if (exact) {
			exacts++;
			continue;
		}
		const char *cmp = idn ? skel : reg;
		unsigned max = strlen(cmp) >= 12 ? 2 : 1;
		size_t got = typo_nearest(t, cmp, max);
		if (got != want)
			fail_msg("%s (cmp %s, max %u): old %s, new %s", reg, cmp, max,
			         want == NONE ? "-" : regs[want], got == NONE ? "-" : regs[got]);
		assert_int_equal(typo_nearest_scan(t, cmp, max), want);
		hits += want != NONE;
	}
	/* The table is worth something only if it exercises both answers. */
	assert_true(hits > queries / 10);
	assert_true(hits < queries);
	assert_true(exacts > 0);
	typo_free(t);
	for (size_t i = 0; i < n; i++)
		free(regs[i]);
	free(regs);
}

static void test_random_small(void **state)
{
	(void)state;
	check_table(50, 6, 20000);
}

static void test_random_medium(void **state)
{
	(void)state;
	check_table(3000, 10, 10000);
}

static void test_random_large(void **state)
{
	(void)state;
	check_table(30000, 14, 2000);
}

static void test_cases(void **state)
{
	(void)state;
	const char *regs[] = {"a.io",       "github.com", "example.com",
	                      "debian.org", "paypal.com", "microsoft.com", "googleapis.com"};
	const size_t n = sizeof regs / sizeof *regs;
	char *sorted[sizeof regs / sizeof *regs];
	for (size_t i = 0; i < n; i++)
		sorted[i] = (char *)regs[i];
	qsort(sorted, n, sizeof *sorted, cmp_len);
	struct typo_index *t = typo_build((const char *const *)sorted, n);
	assert_non_null(t);
	static const struct {
		const char *q;
		const char *want;
	} cases[] = {
	    {"examp1e.com", "example.com"}, {"githab.com", "github.com"},
	    {"paypa1.com", "paypal.com"},   {"rnicrosoft.com", "microsoft.com"},
	    {"micr0s0ft.com", "microsoft.com"}, {"googleapls.com", "googleapis.com"},
	    {"goog1eapis.co", "googleapis.com"}, {"debien.org", "debian.org"}, {"debain.org", NULL},
	    {"b.io", "a.io"},               {"unrelated.com", NULL},
	    {"exarnple.net", NULL},        {"ab.io", "a.io"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		unsigned max = strlen(cases[i].q) >= 12 ? 2 : 1;
		size_t got = typo_nearest(t, cases[i].q, max);
		if (cases[i].want)
			assert_string_equal(got == NONE ? "-" : sorted[got], cases[i].want);
		else
			assert_true(got == NONE);
		bool ex;
		assert_int_equal(old_nearest(sorted, n, cases[i].q, NULL, &ex), got);
	}
	assert_true(typo_has(t, "github.com"));
	assert_false(typo_has(t, "github.co"));
	typo_free(t);
	typo_free(NULL);
	assert_null(typo_build(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_random_small),
	    cmocka_unit_test(test_random_medium),
	    cmocka_unit_test(test_random_large),
	};
	return cmocka_run_group_tests_name("typosquat", tests, NULL, NULL);
}
