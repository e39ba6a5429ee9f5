/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bind_bench: bindings keyed on (address, name) must cost the same however
 * the names are spread over addresses. Two shapes, same count (60,000):
 *   one   60,000 names on one address (a shared CDN / attacker's address)
 *   many  60,000 names on 60,000 addresses
 * For each: ns per add (fresh table), per hit and per miss (bind_has of an
 * unknown name on the same address), and a full bind_expire. Prints the
 * ratios one/many; `--check` exits 1 if a ratio exceeds 3 (flat means ~1;
 * the old address-only hash was ~1000x on add and miss).
 * Bounded: 60,000 entries x 3 passes, ~1 s. Not a CI test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"

#define N 60000
#define S 1000000000ull

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct addr addr_of(unsigned i, int spread)
{
	struct addr a = {.family = ADDR_V6, .b = {0x20, 0x01, 0x0d, 0xb8}};
	if (spread) {
		a.b[12] = (uint8_t)(i >> 24);
		a.b[13] = (uint8_t)(i >> 16);
		a.b[14] = (uint8_t)(i >> 8);
		a.b[15] = (uint8_t)i;
	} else {
		a.b[15] = 1;
	}
	return a;
}

struct result {
	double add, hit, miss, expire;
};

static int run(int spread, unsigned n, struct result *r)
{
	struct bind_config c;
	bind_config_defaults(&c, 4 * (size_t)n);
	c.max_per_client = 2 * (size_t)n; /* one client: the caps are not what is timed */
	c.seed = 0x5eed;
	struct bindings *b = bind_new_config(&c);
	if (!b)
		return -1;
	char name[64];
	volatile unsigned sink = 0;
	double t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		struct addr a = addr_of(i, spread);
		snprintf(name, sizeof name, "n%u.tenant.example", i);
		if (bind_add(b, name, &a, 100 * S, 0) != 0)
			return -1;
	}
	double t1 = now_s();
	for (unsigned i = 0; i < n; i++) {
		struct addr a = addr_of(i, spread);
		snprintf(name, sizeof name, "n%u.tenant.example", i);
		sink += bind_has(b, &a, name, 1);
	}
	double t2 = now_s();
	for (unsigned i = 0; i < n; i++) {
		struct addr a = addr_of(i, spread);
		snprintf(name, sizeof name, "x%u.tenant.example", i);
		sink += bind_has(b, &a, name, 1);
	}
	double t3 = now_s();
	size_t dropped = bind_expire(b, 200 * S);
	double t4 = now_s();
	bind_free(b);
	if (sink != n || dropped != n)
		return -1;
	r->add = (t1 - t0) / n * 1e9;
	r->hit = (t2 - t1) / n * 1e9;
	r->miss = (t3 - t2) / n * 1e9;
	r->expire = (t4 - t3) / n * 1e9;
	return 0;
}

int main(int argc, char **argv)
{
	int check = argc > 1 && strcmp(argv[1], "--check") == 0;
	struct result one, many;
	/* Warm up, then measure: interleaved so a busy neighbour hits both. */
	if (run(1, N / 10, &many) || run(0, N / 10, &one) || run(1, N, &many) || run(0, N, &one)) {
		fprintf(stderr, "bind_bench: a run failed\n");
		return 2;
	}
	printf("%-8s %10s %10s %10s %10s   (ns per binding, %u bindings)\n", "shape", "add",
	       "hit", "miss", "expire", N);
	printf("%-8s %10.0f %10.0f %10.0f %10.0f\n", "many", many.add, many.hit, many.miss,
	       many.expire);
	printf("%-8s %10.0f %10.0f %10.0f %10.0f\n", "one", one.add, one.hit, one.miss,
	       one.expire);
	double ra = one.add / many.add, rh = one.hit / many.hit, rm = one.miss / many.miss;
	printf("ratio one/many: add %.2f  hit %.2f  miss %.2f  (flat: ~1)\n", ra, rh, rm);
	if (check && (ra > 3 || rh > 3 || rm > 3)) {
		printf("FAIL: not flat\n");
		return 1;
	}
	return 0;
}
