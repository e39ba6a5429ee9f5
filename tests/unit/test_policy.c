/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static const uint16_t P443[] = {443};
static const uint16_t P80_443[] = {80, 443};
static const uint16_t P22[] = {22};

static struct addr A(const char *s) {
	struct addr a;
	assert_true(addr_parse(s, &a));
	return a;
}

static struct policy *
sample(void)
{
	struct policy_builder *b = policy_builder_new();
	assert_non_null(b);
	assert_int_equal(policy_builder_add_name(b, "updates.example.com", false, P443, 1, "a.list",
	                                         1, "updates.example.com"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "cdn.example.com", true, P443, 1, "a.list", 2,
	                                         "*.cdn.example.com"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "deep.cdn.example.com", true, P22, 1, "a.list",
	                                         3, "*.deep.cdn.example.com:22"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "deb.debian.org", false, P80_443, 2, "b.list",
	                                         1, "deb.debian.org:80,443"),
	                 0);
	/* the same name again on another port: a second entry, same key */
	assert_int_equal(policy_builder_add_name(b, "updates.example.com", false, P22, 1, "b.list",
	                                         2, "updates.example.com:22"),
	                 0);
	/* no ports given: the default 443 */
	assert_int_equal(policy_builder_add_name(b, "default.example.org", false, NULL, 0, "b.list",
	                                         3, "default.example.org"),
	                 0);
	struct addr n4 = A("203.0.113.0"), n4b = A("203.0.113.128"), n6 = A("2001:db8::");
	assert_int_equal(
	    policy_builder_add_range(b, &n4, 24, P443, 1, "r.list", 1, "203.0.113.0/24:443"), 0);
	assert_int_equal(
	    policy_builder_add_range(b, &n4b, 25, P22, 1, "r.list", 2, "203.0.113.128/25:22"), 0);
	assert_int_equal(
	    policy_builder_add_range(b, &n6, 32, P443, 1, "r.list", 3, "[2001:db8::/32]:443"), 0);
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	return p;
}

static void test_exact(void **state)
{
	(void)state;
	struct policy *p = sample();
	bool known = false;
	const struct policy_rule *r = policy_match_name(p, "updates.example.com", 443, &known);
	assert_non_null(r);
	assert_true(known);
	assert_string_equal(r->file, "a.list");
	assert_int_equal(r->line, 1);
	assert_string_equal(r->text, "updates.example.com");
	r = policy_match_name(p, "updates.example.com", 22, &known);
	assert_non_null(r);
	assert_string_equal(r->file, "b.list");
	assert_int_equal(r->line, 2);
	assert_null(policy_match_name(p, "x.updates.example.com", 443, &known));
	assert_false(known);
	assert_null(policy_match_name(p, "example.com", 443, &known));
	assert_false(known);
	assert_non_null(policy_match_name(p, "default.example.org", 443, NULL));
	assert_null(policy_match_name(p, "default.example.org", 80, &known));
	assert_true(known);
	policy_free(p);
}

static void test_wildcard(void **state)
{
	(void)state;
	struct policy *p = sample();
	bool known = true;
	const struct policy_rule *r = policy_match_name(p, "a.cdn.example.com", 443, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 2);
	/* many labels below */
	assert_non_null(policy_match_name(p, "x.y.z.cdn.example.com", 443, NULL));
	/* not the apex */
	assert_null(policy_match_name(p, "cdn.example.com", 443, &known));
	assert_false(known);
	/* not a sibling that merely ends with the same letters */
	assert_null(policy_match_name(p, "evilcdn.example.com", 443, &known));
	assert_false(known);
	/* deeper wildcard first: *.deep.cdn allows 22; 443 still from *.cdn */
	r = policy_match_name(p, "a.deep.cdn.example.com", 22, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 3);
	r = policy_match_name(p, "a.deep.cdn.example.com", 443, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 2);
	policy_free(p);
}

static void test_ports(void **state)
{
	(void)state;
	struct policy *p = sample();
	bool known = false;
	assert_non_null(policy_match_name(p, "deb.debian.org", 80, &known));
	assert_non_null(policy_match_name(p, "deb.debian.org", 443, &known));
	assert_null(policy_match_name(p, "deb.debian.org", 8080, &known));
	assert_true(known); /* port_not_allowed */
	assert_null(policy_match_name(p, "b.cdn.example.com", 80, &known));
	assert_true(known);
	assert_true(policy_port_has_names(p, 443));
	assert_true(policy_port_has_names(p, 80));
	assert_true(policy_port_has_names(p, 22));
	assert_false(policy_port_has_names(p, 25));
	policy_free(p);
}

static void test_ranges(void **state)
{
	(void)state;
	struct policy *p = sample();
	bool known = false;
	struct addr a = A("203.0.113.7");
	const struct policy_rule *r = policy_match_addr(p, &a, 443, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 1);
	assert_null(policy_match_addr(p, &a, 22, &known));
	assert_true(known);
	/* longest prefix: .200 is in both /25 (22) and /24 (443) */
	a = A("203.0.113.200");
	r = policy_match_addr(p, &a, 22, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 2);
	r = policy_match_addr(p, &a, 443, &known);
	assert_non_null(r);
	assert_int_equal(r->line, 1);
	a = A("198.51.100.1");
	assert_null(policy_match_addr(p, &a, 443, &known));
	assert_false(known);
	a = A("2001:db8:1234::5");
	assert_non_null(policy_match_addr(p, &a, 443, &known));
	a = A("2001:db9::5");
	assert_null(policy_match_addr(p, &a, 443, &known));
	assert_false(known);
	/* an IPv4 range never matches an IPv6 address with the same bytes */
	a = A("::cb00:7107");
	assert_null(policy_match_addr(p, &a, 443, &known));
	struct policy_stats st;
	policy_stats(p, &st);
	assert_int_equal(st.exact_names, 4);
	assert_int_equal(st.wildcards, 2);
	assert_int_equal(st.ranges, 3);
	policy_free(p);
}

static void count_names(const char *name, bool wildcard, void *arg)
{
	unsigned *n = arg;
	assert_non_null(name);
	assert_true(name[0] != '*');
	n[wildcard]++;
}

static void test_foreach_and_bad_input(void **state)
{
	(void)state;
	struct policy *p = sample();
	unsigned n[2] = {0, 0};
	policy_foreach_name(p, count_names, n);
	assert_int_equal(n[0], 4);
	assert_int_equal(n[1], 2);
	assert_null(policy_match_name(p, "", 443, NULL));
	assert_null(policy_match_name(p, ".", 443, NULL));
	assert_null(policy_match_name(NULL, "x", 443, NULL));
	policy_free(p);
	struct policy_builder *b = policy_builder_new();
	struct addr a = A("192.0.2.0");
	assert_int_equal(policy_builder_add_range(b, &a, 33, P443, 1, "f", 1, "t"), -22);
	uint16_t many[POLICY_MAX_PORTS + 1] = {0};
	assert_int_equal(
	    policy_builder_add_name(b, "a.b", false, many, POLICY_MAX_PORTS + 1, "f", 1, "t"), -22);
	policy_builder_free(b);
	policy_free(NULL);
	policy_builder_free(NULL);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_100k(void **state)
{
	(void)state;
	uint64_t t0 = mono_ns();
	struct policy_builder *b = policy_builder_new();
	char name[64], text[80];
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(name, sizeof name, "host%u.zone%u.example.com", i, i % 977);
		snprintf(text, sizeof text, "%s", name);
		assert_int_equal(
		    policy_builder_add_name(b, name, i % 10 == 0, P443, 1, "big.list", i + 1, text),
		    0);
	}
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	uint64_t load = mono_ns() - t0;
	/* "well under a second" — generous for sanitizer builds */
	assert_true(load < 3000000000ull);
	for (unsigned i = 0; i < 100000; i += 997) {
		snprintf(name, sizeof name, "host%u.zone%u.example.com", i, i % 977);
		const struct policy_rule *r = policy_match_name(p, name, 443, NULL);
		if (i % 10 == 0) {
			assert_null(r); /* wildcard: not the apex */
			snprintf(name, sizeof name, "x.host%u.zone%u.example.com", i, i % 977);
			r = policy_match_name(p, name, 443, NULL);
		}
		assert_non_null(r);
		assert_int_equal(r->line, i + 1);
		assert_string_equal(r->file, "big.list");
	}
	assert_null(policy_match_name(p, "host1.zone2.example.com", 443, NULL));
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact),
	    cmocka_unit_test(test_wildcard),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_foreach_and_bad_input),
	    cmocka_unit_test(test_100k),
	};
	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
