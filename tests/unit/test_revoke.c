/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * revoke.h: the judgement of an allowed connection against a new policy,
 * and the records of allowed connections (bounded, oldest out first).
 * engine_revoke() end to end is in test_engine.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "revoke.h"

#define S 1000000000ull

static struct addr A(const char *s)
{
	struct addr a;
	assert_true(addr_parse(s, &a));
	return a;
}

static struct flow_key K(const char *dst, uint16_t dport, uint16_t sport)
{
	struct flow_key k = {.proto = 6, .sport = sport, .dport = dport, .src = A("192.0.2.1"),
	                     .dst = A(dst)};
	return k;
}

static const uint16_t P443[] = {443}, P8443[] = {8443}, P22[] = {22};

/* 1 api.example.com, 2 *.cdn.example.com, 3 203.0.113.0/24:443, 4 git.example.com:22 */
static struct policy *new_policy(void)
{
	struct policy_builder *b = policy_builder_new();
	assert_int_equal(policy_builder_add_name(b, "api.example.com", false, P443, 1, "n", 1,
	                                         "api.example.com"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "cdn.example.com", true, P443, 1, "n", 2,
	                                         "*.cdn.example.com"),
	                 0);
	struct addr net = A("203.0.113.0");
	assert_int_equal(policy_builder_add_range(b, &net, 24, P443, 1, "n", 3, "203.0.113.0/24"), 0);
	assert_int_equal(policy_builder_add_name(b, "git.example.com", false, P22, 1, "n", 4,
	                                         "git.example.com:22"),
	                 0);
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	return p;
}

static void judge_name(void **state)
{
	(void)state;
	struct policy *p = new_policy();
	struct bindings *b = bind_new(64);
	const struct policy_rule *r = NULL;
	struct flow_key k = K("198.51.100.10", 443, 1);
	/* still allowed by name, with no binding left (a TTL ran out): kept */
	assert_true(revoke_judge(p, b, &k, REVOKE_NAME, "api.example.com", 5 * S, &r));
	assert_non_null(r);
	assert_int_equal(r->line, 1);
	assert_true(revoke_judge(p, b, &k, REVOKE_NAME, "img.cdn.example.com", 5 * S, &r));
	assert_int_equal(r->line, 2);
	/* the name's entry is gone: cut, even if another allowed name shares the address */
	struct addr a = A("198.51.100.10");
	assert_int_equal(bind_add(b, "api.example.com", &a, 100 * S, 0), 0);
	assert_false(revoke_judge(p, b, &k, REVOKE_NAME, "old.example.com", 5 * S, &r));
	assert_null(r);
	/* the name is allowed, but on another port only */
	struct flow_key k8443 = K("198.51.100.10", 8443, 1);
	assert_false(revoke_judge(p, b, &k8443, REVOKE_NAME, "api.example.com", 5 * S, NULL));
	/* a range now allows the address: kept */
	struct flow_key kr = K("203.0.113.7", 443, 1);
	assert_true(revoke_judge(p, b, &kr, REVOKE_NAME, "old.example.com", 5 * S, &r));
	assert_int_equal(r->line, 3);
	(void)P8443;
	bind_free(b);
	policy_free(p);
}

static void judge_range_and_unknown(void **state)
{
	(void)state;
	struct policy *p = new_policy();
	struct bindings *b = bind_new(64);
	const struct policy_rule *r = NULL;
	/* range still there: kept, whatever the kind */
	struct flow_key kr = K("203.0.113.7", 443, 1);
	assert_true(revoke_judge(p, b, &kr, REVOKE_RANGE, NULL, S, &r));
	assert_true(revoke_judge(p, b, &kr, REVOKE_UNKNOWN, NULL, S, &r));
	/* a range flow whose range is gone, no binding: cut (its name was never read) */
	struct flow_key k = K("198.51.100.20", 443, 1);
	assert_false(revoke_judge(p, b, &k, REVOKE_RANGE, NULL, S, &r));
	/* ... but unknown with no binding and a name entry on 443: kept */
	assert_true(revoke_judge(p, b, &k, REVOKE_UNKNOWN, NULL, S, &r));
	assert_null(r);
	/* unknown on a port no entry allows at all: cut */
	struct flow_key k9 = K("198.51.100.20", 9999, 1);
	assert_false(revoke_judge(p, b, &k9, REVOKE_UNKNOWN, NULL, S, NULL));
	/* bound only to names the policy no longer allows: cut (range and unknown) */
	struct addr a = A("198.51.100.20");
	assert_int_equal(bind_add(b, "old.example.com", &a, 100 * S, 0), 0);
	assert_false(revoke_judge(p, b, &k, REVOKE_UNKNOWN, NULL, S, NULL));
	assert_false(revoke_judge(p, b, &k, REVOKE_RANGE, NULL, S, NULL));
	/* also bound to an allowed name: kept */
	assert_int_equal(bind_add(b, "api.example.com", &a, 100 * S, 0), 0);
	assert_true(revoke_judge(p, b, &k, REVOKE_UNKNOWN, NULL, S, &r));
	assert_int_equal(r->line, 1);
	assert_true(revoke_judge(p, b, &k, REVOKE_RANGE, NULL, S, NULL));
	/* once the bindings expired: the unknown rule again */
	assert_true(revoke_judge(p, b, &k, REVOKE_UNKNOWN, NULL, 200 * S, &r));
	assert_false(revoke_judge(p, b, &k, REVOKE_RANGE, NULL, 200 * S, NULL));
	/* an empty policy keeps nothing */
	struct policy *empty = policy_builder_finish(policy_builder_new());
	assert_false(revoke_judge(empty, b, &k, REVOKE_UNKNOWN, NULL, S, NULL));
	assert_false(revoke_judge(empty, b, &k, REVOKE_NAME, "api.example.com", S, NULL));
	assert_false(revoke_judge(NULL, b, &k, REVOKE_NAME, "api.example.com", S, NULL));
	policy_free(empty);
	bind_free(b);
	policy_free(p);
}

static void records(void **state)
{
	(void)state;
	assert_null(conn_table_new(0, 1));
	struct conn_table *t = conn_table_new(3, 42);
	assert_non_null(t);
	struct flow_key k1 = K("198.51.100.1", 443, 1), k2 = K("198.51.100.2", 443, 2),
	                k3 = K("2001:db8::3", 443, 3), k4 = K("198.51.100.4", 443, 4);
	assert_int_equal(conn_note(t, &k1, "a.example.com", NAME_SOURCE_SNI, 1000), 0);
	assert_int_equal(conn_note(t, &k2, "", NAME_SOURCE_NONE, -1), 0);
	assert_int_equal(conn_note(t, &k3, "c.example.com", NAME_SOURCE_HTTP_HOST, -1), 0);
	assert_int_equal(conn_count(t), 3);
	struct conn_rec *r = conn_find(t, &k1);
	assert_non_null(r);
	assert_string_equal(r->name, "a.example.com");
	assert_int_equal(r->name_source, NAME_SOURCE_SNI);
	assert_int_equal(r->uid, 1000);
	r = conn_find(t, &k2);
	assert_string_equal(r->name, "");
	assert_int_equal(r->name_source, NAME_SOURCE_NONE);
	/* a new incarnation of k1 replaces its record and becomes the newest */
	assert_int_equal(conn_note(t, &k1, "b.example.com", NAME_SOURCE_SNI, 1000), 0);
	assert_int_equal(conn_count(t), 3);
	assert_string_equal(conn_find(t, &k1)->name, "b.example.com");
	assert_ptr_equal(conn_oldest(t), conn_find(t, &k2));
	/* full: the new one is not recorded, the old records stay */
	assert_int_equal(conn_note(t, &k4, "d.example.com", NAME_SOURCE_SNI, -1), -ENOSPC);
	assert_int_equal(conn_count(t), 3);
	assert_null(conn_find(t, &k4));
	assert_non_null(conn_find(t, &k2));
	conn_drop(t, conn_find(t, &k2));
	assert_ptr_equal(conn_oldest(t), conn_find(t, &k3));
	/* keys differ in any field */
	struct flow_key k1u = k1;
	k1u.proto = 17;
	assert_null(conn_find(t, &k1u));
	conn_drop(t, conn_find(t, &k3));
	assert_int_equal(conn_count(t), 1);
	assert_ptr_equal(conn_oldest(t), conn_find(t, &k1));
	/* a name at the length bound */
	char longname[NAME_MAX_LEN + 8];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(conn_note(t, &k2, longname, NAME_SOURCE_SNI, -1), 0);
	assert_int_equal(strlen(conn_find(t, &k2)->name), NAME_MAX_LEN);
	conn_table_free(t);
	conn_table_free(NULL);
}

/* Many records: the buckets grow, every record stays findable, drops unlink. */
static void records_grow(void **state)
{
	(void)state;
	struct conn_table *t = conn_table_new(5000, 7);
	assert_non_null(t);
	char dst[64];
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(dst, sizeof dst, "198.51.%u.%u", 100 + i / 250, i % 250);
		struct flow_key k = K(dst, 443, (uint16_t)(i + 1));
		assert_int_equal(conn_note(t, &k, i % 2 ? "x.example.com" : "", NAME_SOURCE_SNI, -1),
		                 0);
	}
	assert_int_equal(conn_count(t), 5000);
	struct flow_key extra = K("192.0.2.200", 443, 1);
	assert_int_equal(conn_note(t, &extra, "", NAME_SOURCE_NONE, -1), -ENOSPC);
	for (unsigned i = 0; i < 5000; i += 2) {
		snprintf(dst, sizeof dst, "198.51.%u.%u", 100 + i / 250, i % 250);
		struct flow_key k = K(dst, 443, (uint16_t)(i + 1));
		struct conn_rec *r = conn_find(t, &k);
		assert_non_null(r);
		assert_true(addr_eq(&r->key.dst, &k.dst));
		conn_drop(t, r);
	}
	assert_int_equal(conn_count(t), 2500);
	for (unsigned i = 1; i < 5000; i += 2) {
		snprintf(dst, sizeof dst, "198.51.%u.%u", 100 + i / 250, i % 250);
		struct flow_key k = K(dst, 443, (uint16_t)(i + 1));
		assert_non_null(conn_find(t, &k));
	}
	conn_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(judge_name),
	    cmocka_unit_test(judge_range_and_unknown),
	    cmocka_unit_test(records),
	    cmocka_unit_test(records_grow),
	};
	return cmocka_run_group_tests_name("revoke", tests, NULL, NULL);
}
