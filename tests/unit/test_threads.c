/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The structures the daemon's threads share (issue 10, workers): shared
 * bindings (bind_share: the DNS side writes, every worker reads) and the log
 * queue (every thread writes lines, one writer thread drains them). Run
 * under ThreadSanitizer too: meson setup build-tsan -Db_sanitize=thread.
 */
#include "../../proxy/log.h"
#include "bind.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define READERS 4
#define ROUNDS 20000

static struct addr addr_n(unsigned n)
{
	struct addr a;
	memset(&a, 0, sizeof a);
	a.family = ADDR_V4;
	a.b[0] = 203;
	a.b[1] = 0;
	a.b[2] = (uint8_t)(113 + (n >> 8) % 2);
	a.b[3] = (uint8_t)n;
	return a;
}

struct bind_ctx {
	struct bindings *b;
	atomic_bool stop;
	atomic_uint misses; /* the pinned binding not seen: must stay 0 */
	atomic_uint hits;
};

static bool find_pinned(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "pinned.example.com") == 0;
}

static void *reader(void *arg)
{
	struct bind_ctx *c = arg;
	const struct addr pinned = addr_n(1);
	uint64_t now = 1000;

	while (!atomic_load(&c->stop)) {
		if (!bind_has(c->b, &pinned, "pinned.example.com", now) ||
		    !bind_any(c->b, &pinned, now, find_pinned, NULL))
			atomic_fetch_add(&c->misses, 1);
		else
			atomic_fetch_add(&c->hits, 1);
		struct addr a = addr_n(2 + (atomic_load(&c->hits) % 200));
		(void)bind_has(c->b, &a, "churn.example.com", now);
		(void)bind_count(c->b);
	}
	return NULL;
}

/* Readers on every worker while the DNS side adds, refreshes and expires. */
static void test_bind_shared(void **state)
{
	(void)state;
	struct bind_config cfg;
	bind_config_defaults(&cfg, 256);
	cfg.max_per_name = 64;
	struct bind_ctx c = {.b = bind_new_config(&cfg)};
	assert_non_null(c.b);
	assert_int_equal(bind_share(c.b), 0);
	assert_int_equal(bind_share(c.b), 0); /* idempotent */
	const struct addr pinned = addr_n(1);
	/* far future, charged to no client: evictions pick the churning client */
	assert_int_equal(bind_add(c.b, "pinned.example.com", &pinned, UINT64_MAX / 2, 0), 0);

	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &c), 0);
	const struct addr client = addr_n(250);
	char name[64];
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct addr a = addr_n(2 + i % 200);
		snprintf(name, sizeof name, "n%u.churn.example.com", i % 97);
		(void)bind_add_client(c.b, name, &a, &client, 1000 + (i % 50) * 1000000000ull,
		                      i);
		(void)bind_add_client(c.b, "churn.example.com", &a, &client, 2000000000ull, i);
		if (i % 64 == 0)
			(void)bind_expire(c.b, 1000 + (uint64_t)(i % 40) * 1000000000ull);
	}
	atomic_store(&c.stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&c.misses), 0);
	assert_true(bind_count(c.b) <= 256);
	assert_true(bind_has(c.b, &pinned, "pinned.example.com", 1000));
	bind_free(c.b);
}

/* An unshared table still works (tools, the fuzzer): no lock at all. */
static void test_bind_unshared(void **state)
{
	(void)state;
	struct bindings *b = bind_new(16);
	const struct addr a = addr_n(7);
	assert_non_null(b);
	assert_int_equal(bind_add(b, "x.example.com", &a, 100, 0), 0);
	assert_true(bind_has(b, &a, "x.example.com", 50));
	assert_int_equal(bind_expire(b, 200), 1);
	assert_int_equal(bind_count(b), 0);
	bind_free(b);
}

#define LOG_THREADS 4
#define LOG_LINES 3000

static void *log_writer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	for (unsigned i = 0; i < LOG_LINES; i++) {
		struct log_line l;
		log_line_begin(&l, "test");
		log_line_u64(&l, "thread", t);
		log_line_u64(&l, "seq", i);
		log_line_str(&l, "pad", "0123456789abcdef0123456789abcdef");
		(void)log_line_write(&l);
	}
	return NULL;
}

static size_t count_lines(const char *path, unsigned per_thread[LOG_THREADS], bool *bad)
{
	FILE *f = fopen(path, "r");
	char buf[LOG_LINE_MAX + 2];
	size_t n = 0;
	long last[LOG_THREADS];

	for (int i = 0; i < LOG_THREADS; i++)
		last[i] = -1;
	*bad = false;
	assert_non_null(f);
	while (fgets(buf, sizeof buf, f)) {
		unsigned t, s;
		if (strstr(buf, "\"event\":\"error\""))
			continue;
		const char *p = strstr(buf, "\"thread\":");
		size_t len = strlen(buf);
		if (len < 3 || buf[0] != '{' || strcmp(buf + len - 2, "}\n") != 0 || !p ||
		    sscanf(p, "\"thread\":%u,\"seq\":%u", &t, &s) != 2 || t >= LOG_THREADS) {
			*bad = true;
			continue;
		}
		/* one thread's lines keep their order (some may be dropped) */
		if ((long)s <= last[t])
			*bad = true;
		last[t] = (long)s;
		per_thread[t]++;
		n++;
	}
	fclose(f);
	return n;
}

/* Every thread logs at once: no line is torn or interleaved, none is lost
 * without being counted, and log_async_stop drains the queue. */
static void test_log_queue(void **state)
{
	(void)state;
	char path[] = "/tmp/egressd_test_threads_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(path), 0);
	uint64_t dropped0 = log_dropped();
	assert_int_equal(log_async_start(), 0);
	assert_int_equal(log_async_start(), 0); /* already on */
	pthread_t th[LOG_THREADS];
	for (unsigned i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_writer, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < LOG_THREADS; i++)
		pthread_join(th[i], NULL);
	log_error(NULL, 0, "after the burst"); /* control lines flush: on disk on return */
	unsigned per[LOG_THREADS] = {0};
	bool bad;
	size_t n = count_lines(path, per, &bad);
	uint64_t dropped = log_dropped() - dropped0;
	assert_false(bad);
	assert_int_equal(n + dropped, (size_t)LOG_THREADS * LOG_LINES);
	assert_int_equal(log_write_errors(), 0);
	log_async_stop();
	log_async_stop(); /* idempotent */
	/* without the queue, lines are written by the caller */
	log_writer((void *)(uintptr_t)0);
	memset(per, 0, sizeof per);
	n = count_lines(path, per, &bad);
	assert_int_equal(n + dropped, (size_t)(LOG_THREADS + 1) * LOG_LINES);
	log_close();
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bind_shared),
	    cmocka_unit_test(test_bind_unshared),
	    cmocka_unit_test(test_log_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
