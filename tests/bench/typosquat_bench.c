/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * typosquat_bench: the look-alike check of a denied DNS name against
 * 100,000 allowed registrable domains (labels of 4-15 letters, digits and
 * hyphens, a mix of suffixes). Queries: half look-alikes of allowed domains
 * (1-2 edits, homoglyphs), half unrelated names. Times typo_nearest (the
 * index) and, in the same run, typo_nearest_scan (the linear scan the engine
 * did before: the baseline), checks they agree, and prints us per query and
 * the ratio. `--check` exits 1 above 50 us per query. Bounded: 2,000 queries
 * for the scan, 20,000 for the index, a few seconds. Not a CI test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "typosquat.h"

#define N 100000
#define QUERIES 20000
#define SCAN_QUERIES 2000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long rs = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (unsigned)(rs % n);
}

static const char *const tlds[] = {".com", ".com", ".com", ".net", ".org",
                                   ".io",  ".co.uk", ".de", ".dev", ".cloud"};

static void random_reg(char *out, size_t cap)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzaeiouaeiou0123456789-";
	unsigned n = 4 + rnd(12);
	size_t o = 0;
	for (unsigned i = 0; i < n; i++)
		out[o++] = alpha[rnd(i == 0 ? 26 : sizeof alpha - 2)];
	out[o] = '\0';
	snprintf(out + o, cap - o, "%s", tlds[rnd(10)]);
}

static int cmp_len(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t la = strlen(x), lb = strlen(y);
	return la != lb ? (la < lb ? -1 : 1) : strcmp(x, y);
}

int main(int argc, char **argv)
{
	int check = argc > 1 && strcmp(argv[1], "--check") == 0;
	char **regs = calloc(N, sizeof *regs);
	char (*q)[96] = calloc(QUERIES, sizeof *q);
	if (!regs || !q)
		return 2;
	char buf[96];
	for (size_t i = 0; i < N; i++) {
		random_reg(buf, sizeof buf);
		regs[i] = strdup(buf);
	}
	qsort(regs, N, sizeof *regs, cmp_len);
	for (size_t i = 0; i < QUERIES; i++) {
		if (i % 2) {
			random_reg(q[i], sizeof q[i]);
			continue;
		}
		snprintf(q[i], sizeof q[i], "%s", regs[rnd(N)]);
		size_t n = strlen(q[i]);
		unsigned at = rnd((unsigned)n - 1);
		switch (rnd(4)) {
		case 0: q[i][at] = q[i][at] == 'o' ? '0' : 'x'; break;              /* substitute */
		case 1: memmove(q[i] + at, q[i] + at + 1, n - at); break;            /* delete */
		case 2: memmove(q[i] + at + 1, q[i] + at, n - at + 1); q[i][at] = 'q'; break;
		default: q[i][at] = '1'; q[i][at + 1] = q[i][at + 1] == '.' ? '.' : 'z'; break;
		}
	}
	double t0 = now_s();
	struct typo_index *t = typo_build((const char *const *)regs, N);
	double t1 = now_s();
	if (!t)
		return 2;
	/* Interleaved: scan, index, scan, index ... over the first SCAN_QUERIES. */
	double ts = 0, ti = 0;
	unsigned hits = 0;
	for (size_t i = 0; i < SCAN_QUERIES; i++) {
		unsigned max = strlen(q[i]) >= 12 ? 2 : 1;
		double a = now_s();
		size_t s = typo_nearest_scan(t, q[i], max);
		double b = now_s();
		size_t x = typo_nearest(t, q[i], max);
		double c = now_s();
		ts += b - a;
		ti += c - b;
		if (s != x) {
			fprintf(stderr, "typosquat_bench: %s: scan and index disagree\n", q[i]);
			return 2;
		}
		hits += s != (size_t)-1;
	}
	double ti_all = 0;
	for (int pass = 0; pass < 1; pass++) {
		double a = now_s();
		for (size_t i = 0; i < QUERIES; i++)
			(void)typo_nearest(t, q[i], strlen(q[i]) >= 12 ? 2 : 1);
		ti_all = now_s() - a;
	}
	double us_scan = ts / SCAN_QUERIES * 1e6, us_idx = ti / SCAN_QUERIES * 1e6;
	printf("typosquat: %u domains, index built in %.0f ms\n", N, (t1 - t0) * 1e3);
	printf("scan (baseline) %8.1f us/query   (%u queries, %u look-alikes found)\n", us_scan,
	       SCAN_QUERIES, hits);
	printf("index           %8.2f us/query   (same queries; %.2f us over %u)\n", us_idx,
	       ti_all / QUERIES * 1e6, QUERIES);
	printf("ratio index/scan %.4f  (speed-up %.0fx)\n", us_idx / us_scan, us_scan / us_idx);
	typo_free(t);
	for (size_t i = 0; i < N; i++)
		free(regs[i]);
	free(regs);
	free(q);
	if (check && us_idx > 50) {
		printf("FAIL: above 50 us per query\n");
		return 1;
	}
	return 0;
}
