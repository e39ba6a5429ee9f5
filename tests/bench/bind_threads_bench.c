/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bind_threads_bench: what the shared bindings' lock (bind_share) costs the
 * workers. 50,000 bindings; R reader threads (the workers) each do bind_has
 * hits for a fixed time; optionally one writer (the DNS side) refreshes
 * bindings as fast as it can. Prints lookups per second per reader and ns per
 * lookup for: unshared (no lock, 1 reader), shared with 1 and 2 readers, and
 * shared with 2 readers plus a writer. Bounded: 0.3 s per row. Not a CI test.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bind.h"

#define N 50000
#define RUN_NS 300000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct addr addr_of(unsigned i)
{
	struct addr a = {.family = ADDR_V4};
	a.b[0] = 10;
	a.b[1] = (uint8_t)(i >> 16);
	a.b[2] = (uint8_t)(i >> 8);
	a.b[3] = (uint8_t)i;
	return a;
}

static char names[N][24];

struct run {
	struct bindings *b;
	atomic_bool go, stop;
	atomic_ulong lookups, writes;
};

static void *reader(void *arg)
{
	struct run *r = arg;
	unsigned long n = 0, sink = 0;
	unsigned i = (unsigned)(uintptr_t)&n % N;

	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		for (int k = 0; k < 256; k++, n++) {
			i = (i * 2654435761u + 1) % N;
			struct addr a = addr_of(i);
			sink += bind_has(r->b, &a, names[i], 1);
		}
	}
	atomic_fetch_add(&r->lookups, n);
	return (void *)(uintptr_t)sink;
}

static void *writer(void *arg)
{
	struct run *r = arg;
	unsigned long n = 0;
	unsigned i = 0;

	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		i = (i + 7919) % N;
		struct addr a = addr_of(i);
		(void)bind_add(r->b, names[i], &a, 3600ull * 1000000000ull, 1);
		n++;
	}
	atomic_fetch_add(&r->writes, n);
	return NULL;
}

static void row(const char *what, bool shared, int readers, bool with_writer)
{
	struct run r = {0};
	pthread_t th[8];
	int nt = 0;

	r.b = bind_new(N * 2);
	if (!r.b || (shared && bind_share(r.b) != 0))
		exit(1);
	for (unsigned i = 0; i < N; i++) {
		struct addr a = addr_of(i);
		if (bind_add(r.b, names[i], &a, 3600ull * 1000000000ull, 1) != 0)
			exit(1);
	}
	for (int i = 0; i < readers; i++)
		pthread_create(&th[nt++], NULL, reader, &r);
	if (with_writer)
		pthread_create(&th[nt++], NULL, writer, &r);
	uint64_t t0 = now_ns();
	atomic_store_explicit(&r.go, true, memory_order_release);
	while (now_ns() - t0 < RUN_NS)
		;
	atomic_store(&r.stop, true);
	for (int i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	double s = (double)(now_ns() - t0) / 1e9;
	double per_reader = (double)atomic_load(&r.lookups) / readers / s;
	printf("%-34s %2d reader(s)  %10.0f lookups/s/reader  %6.1f ns/lookup  total %10.0f/s",
	       what, readers, per_reader, 1e9 / per_reader, per_reader * readers);
	if (with_writer)
		printf("  writes %8.0f/s", (double)atomic_load(&r.writes) / s);
	printf("\n");
	bind_free(r.b);
}

int main(void)
{
	for (unsigned i = 0; i < N; i++)
		snprintf(names[i], sizeof names[i], "n%u.example.com", i);
	row("unshared (no lock)", false, 1, false);
	row("shared (slot lock)", true, 1, false);
	row("shared (slot lock)", true, 2, false);
	row("shared (slot lock) + writer flat out", true, 2, true);
	return 0;
}
