/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bind.h"

#define S 1000000000ull

static struct addr A(const char *s) {
	struct addr a;
	assert_true(addr_parse(s, &a));
	return a;
}

struct seen {
	char names[8][64];
	unsigned n;
	const char *stop_at;
};

static bool collect(const char *name, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8)
		snprintf(s->names[s->n++], 64, "%s", name);
	return s->stop_at && strcmp(name, s->stop_at) == 0;
}

static bool seen_has(const struct seen *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

static void test_expiry(void **state)
{
	(void)state;
	struct bindings *b = bind_new(16);
	struct addr a = A("192.0.2.10"), a6 = A("2001:db8::10");
	assert_int_equal(bind_add(b, "a.example.com", &a, 10 * S, 0), 0);
	assert_int_equal(bind_add(b, "b.example.com", &a, 20 * S, 0), 0);
	assert_int_equal(bind_add(b, "a.example.com", &a6, 20 * S, 0), 0);
	assert_true(bind_has(b, &a, "a.example.com", 9 * S));
	assert_false(bind_has(b, &a, "a.example.com", 10 * S));
	assert_true(bind_has(b, &a, "b.example.com", 10 * S));
	assert_false(bind_has(b, &a, "c.example.com", 1));
	struct addr other = A("192.0.2.11");
	assert_false(bind_has(b, &other, "a.example.com", 1));
	struct seen s = {0};
	assert_false(bind_any(b, &a, 5 * S, collect, &s));
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, "a.example.com") && seen_has(&s, "b.example.com"));
	memset(&s, 0, sizeof s);
	bind_any(b, &a, 15 * S, collect, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], "b.example.com");
	memset(&s, 0, sizeof s);
	s.stop_at = "b.example.com";
	assert_true(bind_any(b, &a, 5 * S, collect, &s));
	assert_int_equal(bind_count(b), 3);
	assert_int_equal(bind_expire(b, 15 * S), 1);
	assert_int_equal(bind_count(b), 2);
	assert_int_equal(bind_expire(b, 20 * S), 2);
	assert_int_equal(bind_count(b), 0);
	/* already expired: not stored */
	assert_int_equal(bind_add(b, "late.example.com", &a, 5 * S, 6 * S), 0);
	assert_int_equal(bind_count(b), 0);
	bind_free(b);
}

static void test_refresh(void **state)
{
	(void)state;
	struct bindings *b = bind_new(2);
	struct addr a = A("192.0.2.1"), c = A("192.0.2.2"), d = A("192.0.2.3");
	assert_int_equal(bind_add(b, "x.example", &a, 10 * S, 0), 0);
	assert_int_equal(bind_add(b, "x.example", &c, 10 * S, 0), 0);
	/* refresh a: extends, and makes it the newest */
	assert_int_equal(bind_add(b, "x.example", &a, 30 * S, 1), 0);
	assert_int_equal(bind_count(b), 2);
	assert_true(bind_has(b, &a, "x.example", 20 * S));
	/* a shorter answer never shortens */
	assert_int_equal(bind_add(b, "x.example", &a, 12 * S, 2), 0);
	assert_true(bind_has(b, &a, "x.example", 20 * S));
	/* full: the oldest (c, not the refreshed a) is evicted */
	assert_int_equal(bind_add(b, "x.example", &d, 10 * S, 3), 0);
	assert_int_equal(bind_count(b), 2);
	assert_false(bind_has(b, &c, "x.example", 4));
	assert_true(bind_has(b, &a, "x.example", 4));
	assert_true(bind_has(b, &d, "x.example", 4));
	bind_free(b);
}

static void test_eviction_many(void **state)
{
	(void)state;
	struct bindings *b = bind_new(1000);
	char name[64];
	for (unsigned i = 0; i < 5000; i++) {
		struct addr a = {.family = ADDR_V4, .b = {198, 51, (uint8_t)(i >> 8), (uint8_t)i}};
		snprintf(name, sizeof name, "n%u.example", i);
		assert_int_equal(bind_add(b, name, &a, 100 * S, 0), 0);
		assert_true(bind_count(b) <= 1000);
	}
	assert_int_equal(bind_count(b), 1000);
	for (unsigned i = 0; i < 5000; i += 250) {
		struct addr a = {.family = ADDR_V4, .b = {198, 51, (uint8_t)(i >> 8), (uint8_t)i}};
		snprintf(name, sizeof name, "n%u.example", i);
		assert_int_equal(bind_has(b, &a, name, 1), i >= 4000);
	}
	assert_int_equal(bind_add(b, "", &(struct addr){.family = ADDR_V4}, 1, 0), -22);
	bind_free(b);
	bind_free(NULL);
	assert_null(bind_new(0));
}

static struct bindings *mk(size_t max, size_t per_name, size_t per_client)
{
	struct bind_config c;
	bind_config_defaults(&c, max);
	c.max_per_name = per_name;
	c.max_per_client = per_client;
	c.seed = 0x1234;
	struct bindings *b = bind_new_config(&c);
	assert_non_null(b);
	return b;
}

static struct addr nth(unsigned i)
{
	return (struct addr){.family = ADDR_V4, .b = {198, 51, (uint8_t)(i >> 8), (uint8_t)i}};
}

/* Per name: the oldest address of that name is replaced, other names untouched. */
static void test_cap_per_name(void **state)
{
	(void)state;
	struct bindings *b = mk(1000, 4, 1000);
	struct addr other = A("203.0.113.9");
	assert_int_equal(bind_add(b, "keep.example", &other, 100 * S, 0), 0);
	for (unsigned i = 0; i < 10; i++) {
		struct addr a = nth(i);
		assert_int_equal(bind_add(b, "rot.example", &a, 100 * S, 0), 0);
	}
	assert_int_equal(bind_count(b), 5);
	for (unsigned i = 0; i < 10; i++) {
		struct addr a = nth(i);
		assert_int_equal(bind_has(b, &a, "rot.example", 1), i >= 6);
	}
	assert_true(bind_has(b, &other, "keep.example", 1));
	/* a refresh makes an address the name's newest again */
	struct addr a6 = nth(6);
	assert_int_equal(bind_add(b, "rot.example", &a6, 100 * S, 0), 0);
	struct addr a10 = nth(10);
	assert_int_equal(bind_add(b, "rot.example", &a10, 100 * S, 0), 0);
	assert_true(bind_has(b, &a6, "rot.example", 1));
	struct addr a7 = nth(7);
	assert_false(bind_has(b, &a7, "rot.example", 1));
	bind_free(b);
}

/* Per client: a client at its cap replaces its own oldest, never another's. */
static void test_cap_per_client(void **state)
{
	(void)state;
	struct bindings *b = mk(1000, 256, 8);
	struct addr victim = A("192.0.2.10"), attacker = A("192.0.2.66"), dst = A("203.0.113.1");
	char name[64];
	assert_int_equal(bind_add_client(b, "victim.example", &dst, &victim, 100 * S, 0), 0);
	for (unsigned i = 0; i < 500; i++) {
		snprintf(name, sizeof name, "n%u.evil.example", i);
		assert_int_equal(bind_add_client(b, name, &dst, &attacker, 100 * S, 0), 0);
		assert_true(bind_client_count(b, &attacker) <= 8);
	}
	assert_int_equal(bind_client_count(b, &attacker), 8);
	assert_int_equal(bind_client_count(b, &victim), 1);
	assert_true(bind_has(b, &dst, "victim.example", 1));
	assert_true(bind_has(b, &dst, "n499.evil.example", 1));
	assert_false(bind_has(b, &dst, "n491.evil.example", 1));
	assert_int_equal(bind_count(b), 9);
	/* the engine's own resolutions (NULL) are a client of their own */
	assert_int_equal(bind_add(b, "verify.example", &dst, 100 * S, 0), 0);
	assert_int_equal(bind_client_count(b, NULL), 1);
	bind_free(b);
}

/* A shared binding is charged to whoever asked last. */
static void test_charge_moves(void **state)
{
	(void)state;
	struct bindings *b = mk(1000, 256, 2);
	struct addr c1 = A("192.0.2.1"), c2 = A("2001:db8::2"), dst = A("203.0.113.1");
	assert_int_equal(bind_add_client(b, "shared.example", &dst, &c1, 10 * S, 0), 0);
	assert_int_equal(bind_add_client(b, "shared.example", &dst, &c2, 20 * S, 0), 0);
	assert_int_equal(bind_count(b), 1);
	assert_int_equal(bind_client_count(b, &c1), 0);
	assert_int_equal(bind_client_count(b, &c2), 1);
	/* c1 filling its quota cannot touch it now */
	assert_int_equal(bind_add_client(b, "a.example", &dst, &c1, 10 * S, 0), 0);
	assert_int_equal(bind_add_client(b, "b.example", &dst, &c1, 10 * S, 0), 0);
	assert_int_equal(bind_add_client(b, "c.example", &dst, &c1, 10 * S, 0), 0);
	assert_true(bind_has(b, &dst, "shared.example", 15 * S));
	assert_false(bind_has(b, &dst, "a.example", 1));
	bind_free(b);
}

/* Table full: the most charged client pays, not a light one. */
static void test_full_heaviest_pays(void **state)
{
	(void)state;
	struct bindings *b = mk(10, 256, 10);
	struct addr light = A("192.0.2.1"), heavy = A("192.0.2.2"), dst = A("203.0.113.1");
	char name[64];
	assert_int_equal(bind_add_client(b, "l0.example", &dst, &light, 100 * S, 0), 0);
	assert_int_equal(bind_add_client(b, "l1.example", &dst, &light, 100 * S, 0), 0);
	for (unsigned i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "h%u.example", i);
		assert_int_equal(bind_add_client(b, name, &dst, &heavy, 100 * S, 0), 0);
		assert_true(bind_count(b) <= 10);
	}
	assert_int_equal(bind_client_count(b, &light), 2);
	assert_int_equal(bind_client_count(b, &heavy), 8);
	/* the light client may still add: the heavy one pays */
	assert_int_equal(bind_add_client(b, "l2.example", &dst, &light, 100 * S, 0), 0);
	assert_int_equal(bind_client_count(b, &light), 3);
	assert_int_equal(bind_client_count(b, &heavy), 7);
	assert_true(bind_has(b, &dst, "l0.example", 1));
	assert_true(bind_has(b, &dst, "h49.example", 1));
	bind_free(b);
}

/* Expiry over the wheel: short, long (several turns), refreshed, late calls. */
static void test_wheel_expiry(void **state)
{
	(void)state;
	struct bindings *b = mk(100000, 256, 100000);
	char name[64];
	uint64_t base = 5000 * S;
	for (unsigned i = 0; i < 3000; i++) {
		struct addr a = nth(i);
		snprintf(name, sizeof name, "w%u.example", i);
		/* expiries from 1 s to ~3 h (beyond one turn of the wheel) */
		assert_int_equal(bind_add(b, name, &a, base + (uint64_t)(i + 1) * 3 * S, base), 0);
	}
	assert_int_equal(bind_expire(b, base), 0);
	size_t left = 3000;
	for (uint64_t t = base; t < base + 9100 * S; t += 500 * S / 10) {
		left -= bind_expire(b, t);
		size_t want = 0;
		for (unsigned i = 0; i < 3000; i++)
			want += base + (uint64_t)(i + 1) * 3 * S > t;
		assert_int_equal(left, want);
		assert_int_equal(bind_count(b), want);
	}
	/* a jump far ahead drops everything at once */
	struct addr a = nth(1);
	assert_int_equal(bind_add(b, "late.example", &a, base + 20000 * S, base + 9200 * S), 0);
	assert_int_equal(bind_add(b, "late.example", &a, base + 90000 * S, base + 9200 * S), 0);
	assert_int_equal(bind_expire(b, base + 80000 * S), 0);
	assert_true(bind_has(b, &a, "late.example", base + 80000 * S));
	assert_int_equal(bind_expire(b, base + 90000 * S), 1);
	assert_int_equal(bind_count(b), 0);
	bind_free(b);
}

/* Many names on one address: every one found, bind_any sees them all. */
static void test_many_names_one_addr(void **state)
{
	(void)state;
	struct bindings *b = mk(20000, 256, 20000);
	struct addr dst = A("203.0.113.7"), other = A("203.0.113.8");
	char name[64];
	for (unsigned i = 0; i < 10000; i++) {
		snprintf(name, sizeof name, "m%u.example", i);
		assert_int_equal(bind_add(b, name, &dst, 100 * S, 0), 0);
	}
	for (unsigned i = 0; i < 10000; i += 7) {
		snprintf(name, sizeof name, "m%u.example", i);
		assert_true(bind_has(b, &dst, name, 1));
		assert_false(bind_has(b, &other, name, 1));
	}
	assert_false(bind_has(b, &dst, "m10000.example", 1));
	struct seen s = {.stop_at = "m9999.example"};
	assert_true(bind_any(b, &dst, 1, collect, &s));
	assert_false(bind_any(b, &other, 1, collect, &s));
	assert_int_equal(bind_expire(b, 100 * S), 10000);
	bind_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_refresh),
	    cmocka_unit_test(test_eviction_many),
	    cmocka_unit_test(test_cap_per_name),
	    cmocka_unit_test(test_cap_per_client),
	    cmocka_unit_test(test_charge_moves),
	    cmocka_unit_test(test_full_heaviest_pays),
	    cmocka_unit_test(test_wheel_expiry),
	    cmocka_unit_test(test_many_names_one_addr),
	};
	return cmocka_run_group_tests_name("bind", tests, NULL, NULL);
}
