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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_refresh),
	    cmocka_unit_test(test_eviction_many),
	};
	return cmocka_run_group_tests_name("bind", tests, NULL, NULL);
}
