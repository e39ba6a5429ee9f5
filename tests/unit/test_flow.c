/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow table's sources: bare-flow cap per source, eviction order (oldest
 * decided, then the oldest bare flow of the source with the most), flows that
 * hold packets never evicted, held-packet accounting per source, host-mode
 * sources (address, uid).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>

#include "flow.h"

static struct flow_key key(const char *src, uint16_t sport)
{
	struct flow_key k = {.proto = IPPROTO_TCP, .sport = sport, .dport = 443};
	assert_true(addr_parse(src, &k.src));
	assert_true(addr_parse("203.0.113.9", &k.dst));
	return k;
}

static struct flow *open_bare(struct flow_table *t, const char *src, uint16_t sport, int64_t uid,
                              uint64_t now)
{
	struct flow_key k = key(src, sport);
	enum flow_refuse why = FLOW_REFUSE_NOMEM;
	struct flow *f = flow_create(t, &k, uid, true, now, &why);
	assert_non_null(f);
	assert_int_equal(why, FLOW_REFUSE_NONE);
	return f;
}

static bool present(struct flow_table *t, const char *src, uint16_t sport)
{
	struct flow_key k = key(src, sport);
	return flow_find(t, &k) != NULL;
}

static void bare_cap_per_source(void **state)
{
	(void)state;
	struct flow_table *t = flow_table_new(64, 3, 0x1234);
	assert_non_null(t);
	struct flow *f = NULL;
	for (uint16_t i = 0; i < 3; i++)
		f = open_bare(t, "192.0.2.1", (uint16_t)(1000 + i), -1, i);
	assert_int_equal(flow_src_bare(f), 3);
	struct flow_key k = key("192.0.2.1", 2000);
	enum flow_refuse why;
	assert_null(flow_create(t, &k, -1, true, 5, &why));
	assert_int_equal(why, FLOW_REFUSE_SOURCE);
	/* not bare (UDP about to hold): not counted, not refused */
	struct flow *u = flow_create(t, &k, -1, false, 5, &why);
	assert_non_null(u);
	assert_int_equal(flow_src_bare(u), 3);
	/* another source is not affected */
	open_bare(t, "192.0.2.2", 1000, -1, 6);
	/* a bare flow that holds a packet is no longer bare: room for one more */
	assert_int_equal(flow_hold_packet(f, 7), 0);
	assert_false(f->bare);
	assert_int_equal(flow_src_bare(u), 2);
	open_bare(t, "192.0.2.1", 2001, -1, 8);
	assert_int_equal(flow_count(t), 6);
	flow_table_free(t);
}

static void eviction_order_and_fairness(void **state)
{
	(void)state;
	struct flow_table *t = flow_table_new(6, 8, 99);
	/* A: 4 bare flows (1000..1003), B: 1 bare, one decided flow of C */
	for (uint16_t i = 0; i < 4; i++)
		open_bare(t, "192.0.2.1", (uint16_t)(1000 + i), -1, i);
	open_bare(t, "192.0.2.2", 1000, -1, 10);
	struct flow *c = open_bare(t, "192.0.2.3", 1000, -1, 11);
	flow_mark_decided(t, c, VERDICT_DENY);
	assert_int_equal(flow_count(t), 6);
	/* full: the decided flow goes first */
	open_bare(t, "192.0.2.2", 1001, -1, 12);
	assert_false(present(t, "192.0.2.3", 1000));
	/* then A's bare flows, oldest first, while A has the most (A 4, B 2) */
	open_bare(t, "192.0.2.2", 1002, -1, 13);
	assert_false(present(t, "192.0.2.1", 1000));
	assert_true(present(t, "192.0.2.1", 1001));
	/* tied (A 3, B 3): the source asking pays */
	open_bare(t, "192.0.2.2", 1003, -1, 14);
	assert_false(present(t, "192.0.2.2", 1000));
	assert_true(present(t, "192.0.2.1", 1001));
	/* a newcomer: one of the tied sources loses its oldest, never the newcomer's */
	open_bare(t, "192.0.2.4", 1000, -1, 15);
	assert_true(present(t, "192.0.2.1", 1001) != present(t, "192.0.2.2", 1001));
	open_bare(t, "192.0.2.4", 1001, -1, 16);
	assert_false(present(t, "192.0.2.1", 1001));
	assert_false(present(t, "192.0.2.2", 1001));
	assert_true(present(t, "192.0.2.4", 1000));
	/* D (2) asks while A and B have 2 each: D pays */
	open_bare(t, "192.0.2.4", 1002, -1, 17);
	assert_false(present(t, "192.0.2.4", 1000));
	assert_true(present(t, "192.0.2.1", 1002) && present(t, "192.0.2.2", 1002));
	assert_int_equal(flow_count(t), 6);
	flow_table_free(t);
}

static void holding_flows_never_evicted(void **state)
{
	(void)state;
	struct flow_table *t = flow_table_new(2, 8, 0);
	struct flow *a = open_bare(t, "192.0.2.1", 1000, -1, 0);
	struct flow *b = open_bare(t, "192.0.2.1", 1001, -1, 0);
	assert_int_equal(flow_hold_packet(a, 1), 0);
	assert_int_equal(flow_hold_packet(b, 2), 0);
	assert_int_equal(flow_hold_packet(b, 3), 0);
	assert_int_equal(flow_src_held(a), 3);
	struct flow_key k = key("192.0.2.9", 1000);
	enum flow_refuse why;
	assert_null(flow_create(t, &k, -1, true, 1, &why));
	assert_int_equal(why, FLOW_REFUSE_FULL);
	/* taking packets out and syncing: the source counts what is left */
	b->nheld = 1;
	flow_held_sync(b);
	assert_int_equal(flow_src_held(a), 2);
	a->nheld = 0; /* the caller gave a's packet its verdict */
	flow_mark_decided(t, a, VERDICT_ALLOW);
	assert_int_equal(flow_src_held(b), 1);
	/* a decided flow makes room */
	assert_non_null(flow_create(t, &k, -1, true, 2, &why));
	assert_false(present(t, "192.0.2.1", 1000));
	b->nheld = 0;
	flow_table_free(t);
}

static void sources_are_address_and_uid(void **state)
{
	(void)state;
	struct flow_table *t = flow_table_new(64, 2, 7);
	open_bare(t, "203.0.113.1", 1000, 1000, 0);
	struct flow *f = open_bare(t, "203.0.113.1", 1001, 1000, 0);
	assert_int_equal(flow_src_bare(f), 2);
	struct flow_key k = key("203.0.113.1", 1002);
	enum flow_refuse why;
	assert_null(flow_create(t, &k, 1000, true, 1, &why));
	assert_int_equal(why, FLOW_REFUSE_SOURCE);
	/* the same address, another user: its own source */
	struct flow *g = flow_create(t, &k, 1001, true, 1, &why);
	assert_non_null(g);
	assert_int_equal(flow_src_bare(g), 1);
	/* the source entry goes with its last flow and comes back empty */
	flow_remove(t, g);
	g = flow_create(t, &k, 1001, true, 2, &why);
	assert_int_equal(flow_src_bare(g), 1);
	assert_int_equal(flow_src_held(g), 0);
	flow_table_free(t);
}

static void seeds_do_not_change_lookups(void **state)
{
	(void)state;
	static const uint64_t seeds[] = {0, 1, 0xffffffffffffffffull, 0x9e3779b97f4a7c15ull};
	for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
		struct flow_table *t = flow_table_new(300, 300, seeds[s]);
		for (uint16_t i = 0; i < 256; i++)
			open_bare(t, "192.0.2.1", (uint16_t)(5000 + i), -1, i);
		for (uint16_t i = 0; i < 256; i++)
			assert_true(present(t, "192.0.2.1", (uint16_t)(5000 + i)));
		assert_false(present(t, "192.0.2.1", 4999));
		flow_table_free(t);
	}
}

/* Issue 10: a finished connection's flow, stream buffer and held array go
 * back to the table's pools; the next connection gets them clean. */
static void pools_reuse_clean(void **state)
{
	(void)state;
	struct flow_table *t = flow_table_new(16, 16, 1);
	uint8_t data[100];
	memset(data, 'x', sizeof data);
	struct flow *f = open_bare(t, "192.0.2.1", 5000, -1, 1);
	assert_int_equal(flow_hold_packet(f, 42), 0);
	assert_int_equal(flow_stream_add(f, 0, data, sizeof data, 65536), FLOW_ADD_NEW);
	assert_int_equal(f->contig, sizeof data);
	struct flow *old = f;
	uint8_t *buf = f->buf;
	uint64_t *held = f->held;
	flow_remove(t, f);
	f = open_bare(t, "192.0.2.2", 5001, -1, 2);
	assert_ptr_equal(f, old);
	assert_null(f->buf);
	assert_int_equal(f->nheld, 0);
	assert_int_equal(f->contig, 0);
	assert_int_equal(f->end, 0);
	assert_false(f->acked);
	/* a gap first: the reused bitmap must be clear, so nothing is contiguous */
	assert_int_equal(flow_stream_add(f, 10, data, 5, 65536), FLOW_ADD_NEW);
	assert_ptr_equal(f->buf, buf);
	assert_int_equal(f->contig, 0);
	assert_int_equal(flow_stream_add(f, 0, data, 10, 65536), FLOW_ADD_NEW);
	assert_int_equal(f->contig, 15);
	assert_int_equal(flow_hold_packet(f, 43), 0);
	assert_ptr_equal(f->held, held);
	assert_int_equal(f->held[0], 43);
	/* decided: the stream goes back, the flow stays */
	flow_mark_decided(t, f, VERDICT_ALLOW);
	assert_null(f->buf);
	flow_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bare_cap_per_source),
	    cmocka_unit_test(eviction_order_and_fairness),
	    cmocka_unit_test(holding_flows_never_evicted),
	    cmocka_unit_test(sources_are_address_and_uid),
	    cmocka_unit_test(seeds_do_not_change_lookups),
	    cmocka_unit_test(pools_reuse_clean),
	};
	return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
