/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy_bench: load 100,000 names (10% wildcards) and 100,000 ranges
 * (v4 /24../32 and v6 /48../64), then time 1,000,000 name lookups and
 * 1,000,000 address lookups (hits and misses mixed). Prints load time and
 * ns per lookup. Not a test: run it by hand (`ninja tests/bench/policy_bench`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#define N 100000
#define LOOKUPS 1000000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : N;
	static const uint16_t ports[] = {80, 443};
	char name[128];
	double t0 = now_s();
	struct policy_builder *b = policy_builder_new();
	if (!b)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof name, "svc%u.team%u.example%u.com", i, i % 1000, i % 37);
		if (policy_builder_add_name(b, name, i % 10 == 0, ports, 2, "bench.list", i + 1,
		                            name) < 0)
			return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct addr a = {0};
		unsigned prefix;
		if (i % 2) {
			a.family = ADDR_V4;
			a.b[0] = 10;
			a.b[1] = (uint8_t)(i >> 16);
			a.b[2] = (uint8_t)(i >> 8);
			a.b[3] = (uint8_t)i;
			prefix = 24 + i % 9;
		} else {
			a.family = ADDR_V6;
			a.b[0] = 0x20;
			a.b[1] = 0x01;
			a.b[2] = 0x0d;
			a.b[3] = 0xb8;
			a.b[4] = (uint8_t)(i >> 16);
			a.b[5] = (uint8_t)(i >> 8);
			a.b[6] = (uint8_t)i;
			prefix = 48 + i % 17;
		}
		if (policy_builder_add_range(b, &a, prefix, ports + 1, 1, "bench.list", i + 1,
		                             "range") < 0)
			return 1;
	}
	struct policy *p = policy_builder_finish(b);
	if (!p)
		return 1;
	double load = now_s() - t0;

	uint32_t s = 12345;
	unsigned hits = 0;
	t0 = now_s();
	for (unsigned i = 0; i < LOOKUPS; i++) {
		unsigned k = rng(&s) % (n * 2); /* half of them miss */
		if (k % 10 == 0)
			snprintf(name, sizeof name, "a.b.svc%u.team%u.example%u.com", k, k % 1000,
			         k % 37);
		else
			snprintf(name, sizeof name, "svc%u.team%u.example%u.com", k, k % 1000,
			         k % 37);
		bool known;
		hits += policy_match_name(p, name, 443, &known) != NULL;
	}
	double tn = now_s() - t0;
	/* the cost of building the names alone, to subtract */
	t0 = now_s();
	volatile size_t sink = 0;
	for (unsigned i = 0; i < LOOKUPS; i++) {
		unsigned k = rng(&s) % (n * 2);
		if (k % 10 == 0)
			sink +=
			    (size_t)snprintf(name, sizeof name, "a.b.svc%u.team%u.example%u.com", k,
			                     k % 1000, k % 37);
		else
			sink += (size_t)snprintf(name, sizeof name, "svc%u.team%u.example%u.com", k,
			                         k % 1000, k % 37);
	}
	double tfmt = now_s() - t0;

	unsigned ahits = 0;
	t0 = now_s();
	for (unsigned i = 0; i < LOOKUPS; i++) {
		uint32_t r = rng(&s);
		struct addr a = {0};
		if (r & 1) {
			a.family = ADDR_V4;
			a.b[0] = 10;
			a.b[1] = (uint8_t)(r >> 24);
			a.b[2] = (uint8_t)(r >> 16);
			a.b[3] = (uint8_t)(r >> 8);
		} else {
			a.family = ADDR_V6;
			a.b[0] = 0x20;
			a.b[1] = 0x01;
			a.b[2] = 0x0d;
			a.b[3] = 0xb8;
			a.b[4] = (uint8_t)(r >> 24);
			a.b[5] = (uint8_t)(r >> 16);
			a.b[6] = (uint8_t)(r >> 8);
			a.b[9] = (uint8_t)r;
		}
		bool known;
		ahits += policy_match_addr(p, &a, 443, &known) != NULL;
	}
	double ta = now_s() - t0;

	struct policy_stats st;
	policy_stats(p, &st);
	printf("entries: %zu names, %zu wildcards, %zu ranges\n", st.exact_names, st.wildcards,
	       st.ranges);
	printf("load: %.1f ms\n", load * 1e3);
	printf("name lookups: %.1f ns/op (%.1f ns/op with formatting; %u hits of %u)\n",
	       (tn - tfmt) * 1e9 / LOOKUPS, tn * 1e9 / LOOKUPS, hits, LOOKUPS);
	printf("addr lookups: %.1f ns/op (%u hits of %u)\n", ta * 1e9 / LOOKUPS, ahits, LOOKUPS);
	policy_free(p);
	return 0;
}
