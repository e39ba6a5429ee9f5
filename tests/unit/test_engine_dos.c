/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine under floods and covert headers (issue 9): what bare packets of
 * undecided flows may carry, how many of them a flow passes, SYN-only flows
 * per source, held packets per source and in total, host-mode sources by
 * uid. Every handle gets exactly one verdict (checked at teardown).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine.h"

#define BLD_CAP 1600
#include "bld.h"

#define S 1000000000ull
#define MAXH 256
#define SYN 0x02
#define ACK 0x10
#define PSH 0x08
#define ISN 5000u

struct t {
	unsigned vcount[MAXH];
	enum verdict vlast[MAXH];
	uint64_t next;
	enum reason reason;
	char detail[64];
	unsigned nev;
	struct engine *e;
	struct policy *p;
	struct bindings *b;
};

static void on_verdict(void *arg, uint64_t h, enum verdict v)
{
	struct t *t = arg;
	assert_true(h < MAXH);
	t->vcount[h]++;
	t->vlast[h] = v;
}

static void on_event(void *arg, const struct flow_event *ev)
{
	struct t *t = arg;
	t->nev++;
	t->reason = ev->reason;
	snprintf(t->detail, sizeof t->detail, "%s", ev->detail ? ev->detail : "");
}

static void on_resolve(void *arg, const char *name)
{
	(void)arg;
	(void)name;
}

static const uint16_t P80[] = {80, 443};

static struct t *up(enum unknown_ip_mode mode, void (*tweak)(struct engine_config *))
{
	static struct t t;
	memset(&t, 0, sizeof t);
	struct policy_builder *pb = policy_builder_new();
	assert_int_equal(policy_builder_add_name(pb, "www.example.com", false, P80, 2, "t.list", 1,
	                                         "www.example.com:80,443"),
	                 0);
	t.p = policy_builder_finish(pb);
	assert_non_null(t.p);
	t.b = bind_new(64);
	struct addr a4, a6;
	assert_true(addr_parse("198.51.100.10", &a4));
	assert_true(addr_parse("2001:db8:1::10", &a6));
	assert_int_equal(bind_add(t.b, "www.example.com", &a4, 1000 * S, 0), 0);
	assert_int_equal(bind_add(t.b, "www.example.com", &a6, 1000 * S, 0), 0);
	struct engine_config c;
	engine_config_defaults(&c);
	c.unknown_ip = mode;
	c.hash_seed = 0x0123456789abcdefull;
	if (tweak)
		tweak(&c);
	struct engine_hooks hooks = {on_verdict, on_event, on_resolve, &t};
	t.e = engine_new(&c, t.p, t.b, &hooks);
	assert_non_null(t.e);
	return &t;
}

static void down(struct t *t)
{
	engine_free(t->e);
	for (uint64_t i = 0; i < t->next; i++)
		if (t->vcount[i] != 1)
			fail_msg("handle %llu got %u verdicts", (unsigned long long)i, t->vcount[i]);
	bind_free(t->b);
	policy_free(t->p);
}

struct seg {
	const char *src, *dst;
	uint16_t sport, dport;
	uint32_t seq;
	uint8_t flags;
	const uint8_t *opt; /* TCP options, padded with EOL */
	size_t optlen;
	const uint8_t *ipopt; /* IPv4 options / an IPv6 destination options header (8 bytes) */
	size_t ipoptlen;
	const char *data;
	int64_t uid;
};

static uint64_t feed(struct t *t, const struct seg *s, uint64_t now)
{
	struct addr src, dst;
	assert_true(addr_parse(s->src, &src));
	assert_true(addr_parse(s->dst, &dst));
	size_t dlen = s->data ? strlen(s->data) : 0, ow = (s->optlen + 3) / 4;
	size_t l4 = 20 + ow * 4 + dlen;
	struct bld b = {.n = 0};
	if (src.family == ADDR_V4) {
		assert_true(s->ipoptlen % 4 == 0);
		put8(&b, 0x45 + (unsigned)(s->ipoptlen / 4));
		put8(&b, 0);
		put16(&b, (unsigned)(20 + s->ipoptlen + l4));
		put32(&b, 0x00014000);
		put16(&b, 0x4006);
		put16(&b, 0);
		putb(&b, src.b, 4);
		putb(&b, dst.b, 4);
		putb(&b, s->ipopt, s->ipoptlen);
	} else {
		put32(&b, 0x60000000);
		put16(&b, (unsigned)(s->ipoptlen + l4));
		put8(&b, s->ipoptlen ? 60 : 6);
		put8(&b, 64);
		putb(&b, src.b, 16);
		putb(&b, dst.b, 16);
		putb(&b, s->ipopt, s->ipoptlen);
	}
	put16(&b, s->sport);
	put16(&b, s->dport);
	put32(&b, s->seq);
	put32(&b, s->flags & ACK ? 77 : 0);
	put8(&b, (unsigned)((5 + ow) << 4));
	put8(&b, s->flags);
	put16(&b, 65535);
	put16(&b, 0);
	put16(&b, 0);
	putb(&b, s->opt, s->optlen);
	for (size_t i = s->optlen; i < ow * 4; i++)
		put8(&b, 0);
	putb(&b, s->data, dlen);
	uint64_t h = t->next++;
	assert_true(h < MAXH);
	engine_packet(t->e, h, b.d, b.n, s->uid ? s->uid : -1, now);
	return h;
}

#define OPT(...) .opt = (const uint8_t[]){__VA_ARGS__}, .optlen = sizeof((const uint8_t[]){__VA_ARGS__})
#define LINUX_SYN OPT(2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7)
#define V4 .src = "192.0.2.1", .dst = "203.0.113.66"
#define HTTP_REQ "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"

static void covert_headers_deny_the_flow(void **state)
{
	(void)state;
	struct t *t = up(UNKNOWN_IP_VERIFY, NULL);
	/* the control: the options Linux sends, on the SYN and on the ACK */
	uint64_t a = feed(t, &(struct seg){V4, .sport = 1, .dport = 443, .seq = ISN, .flags = SYN,
	                                   LINUX_SYN},
	                  1);
	uint64_t b = feed(t, &(struct seg){V4, .sport = 1, .dport = 443, .seq = ISN + 1, .flags = ACK,
	                                   OPT(1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 9)},
	                  1);
	assert_int_equal(t->vlast[a], VERDICT_PASS);
	assert_int_equal(t->vlast[b], VERDICT_PASS);
	assert_int_equal(t->nev, 0);
	/* IPv4 options on a SYN: denied, with the flow */
	static const uint8_t ipopt[] = {0x1e, 6, 'E', 'X', 'F', 'L', 0, 0};
	uint64_t c = feed(t, &(struct seg){V4, .sport = 2, .dport = 443, .seq = ISN, .flags = SYN,
	                                   .ipopt = ipopt, .ipoptlen = 8},
	                  2);
	assert_int_equal(t->vlast[c], VERDICT_DENY);
	assert_int_equal(t->reason, REASON_MALFORMED);
	assert_string_equal(t->detail, "ip_options");
	uint64_t c2 = feed(t, &(struct seg){V4, .sport = 2, .dport = 443, .seq = ISN + 1,
	                                    .flags = ACK},
	                   2);
	assert_int_equal(t->vlast[c2], VERDICT_DENY);
	/* an unknown TCP option on the bare ACK of a passed flow: the flow is denied */
	feed(t, &(struct seg){V4, .sport = 3, .dport = 443, .seq = ISN, .flags = SYN, LINUX_SYN}, 3);
	uint64_t d = feed(t, &(struct seg){V4, .sport = 3, .dport = 443, .seq = ISN + 1, .flags = ACK,
	                                   OPT(253, 6, 'E', 'X', 'F', 'L')},
	                  3);
	assert_int_equal(t->vlast[d], VERDICT_DENY);
	assert_string_equal(t->detail, "tcp_option");
	/* a Fast Open cookie on a SYN without data */
	uint64_t e = feed(t, &(struct seg){V4, .sport = 4, .dport = 443, .seq = ISN, .flags = SYN,
	                                   OPT(34, 10, 'E', 'X', 'F', 'I', 'L', 'T', 'R', 'T')},
	                  4);
	assert_int_equal(t->vlast[e], VERDICT_DENY);
	/* IPv6: a destination options header on a SYN */
	static const uint8_t dstopt[] = {6, 0, 0x1e, 4, 'E', 'X', 'F', 'L'};
	uint64_t f = feed(t, &(struct seg){.src = "2001:db8::1", .dst = "2001:db8:2::66", .sport = 5,
	                                   .dport = 443, .seq = ISN, .flags = SYN, .ipopt = dstopt,
	                                   .ipoptlen = 8},
	                  5);
	assert_int_equal(t->vlast[f], VERDICT_DENY);
	assert_string_equal(t->detail, "ipv6_ext_headers");
	down(t);
}

static void held_packets_are_judged_with_the_flow(void **state)
{
	(void)state;
	struct t *t = up(UNKNOWN_IP_DENY, NULL);
	/* Fast Open: a cookie and the request in the SYN: held, then allowed with the flow */
	uint64_t a = feed(t, &(struct seg){.src = "192.0.2.1", .dst = "198.51.100.10", .sport = 1,
	                                   .dport = 80, .seq = ISN, .flags = SYN,
	                                   OPT(2, 4, 5, 0xb4, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8),
	                                   .data = HTTP_REQ},
	                  1);
	assert_int_equal(t->vlast[a], VERDICT_INSPECT);
	/* IPv6 extension headers on a payload segment: held and decided on the payload */
	static const uint8_t dstopt[] = {6, 0, 1, 4, 0, 0, 0, 0};
	feed(t, &(struct seg){.src = "2001:db8::1", .dst = "2001:db8:1::10", .sport = 2, .dport = 80,
	                      .seq = ISN, .flags = SYN, LINUX_SYN},
	     2);
	uint64_t b = feed(t, &(struct seg){.src = "2001:db8::1", .dst = "2001:db8:1::10", .sport = 2,
	                                   .dport = 80, .seq = ISN + 1, .flags = ACK | PSH,
	                                   .ipopt = dstopt, .ipoptlen = 8, .data = HTTP_REQ},
	                  2);
	assert_int_equal(t->vlast[b], VERDICT_INSPECT);
	down(t);
}

static void few_bare(struct engine_config *c)
{
	c->bare_packets = 4;
}

static void bare_packets_per_flow(void **state)
{
	(void)state;
	struct t *t = up(UNKNOWN_IP_VERIFY, few_bare);
	uint64_t h = feed(t, &(struct seg){V4, .sport = 1, .dport = 443, .seq = ISN, .flags = SYN},
	                  1);
	assert_int_equal(t->vlast[h], VERDICT_PASS);
	for (int i = 0; i < 3; i++) {
		h = feed(t, &(struct seg){V4, .sport = 1, .dport = 443, .seq = ISN + 1, .flags = ACK},
		         2);
		assert_int_equal(t->vlast[h], VERDICT_PASS);
	}
	h = feed(t, &(struct seg){V4, .sport = 1, .dport = 443, .seq = ISN + 1, .flags = ACK}, 3);
	assert_int_equal(t->vlast[h], VERDICT_DENY);
	assert_int_equal(t->reason, REASON_INCOMPLETE);
	assert_string_equal(t->detail, "bare_packets");
	down(t);
}

static void two_bare_flows(struct engine_config *c)
{
	c->bare_flows_source = 2;
}

static void syn_only_flows_per_source(void **state)
{
	(void)state;
	struct t *t = up(UNKNOWN_IP_VERIFY, two_bare_flows);
	assert_int_equal(t->vlast[feed(t, &(struct seg){V4, .sport = 1, .dport = 80, .seq = ISN,
	                                                .flags = SYN},
	                               1)],
	                 VERDICT_PASS);
	assert_int_equal(t->vlast[feed(t, &(struct seg){V4, .sport = 2, .dport = 80, .seq = ISN,
	                                                .flags = SYN},
	                               1)],
	                 VERDICT_PASS);
	uint64_t h = feed(t, &(struct seg){V4, .sport = 3, .dport = 80, .seq = ISN, .flags = SYN}, 1);
	assert_int_equal(t->vlast[h], VERDICT_DENY);
	assert_string_equal(t->detail, "syn_flows_source");
	/* another source is not affected */
	h = feed(t, &(struct seg){.src = "192.0.2.2", .dst = "203.0.113.66", .sport = 3, .dport = 80,
	                          .seq = ISN, .flags = SYN},
	         1);
	assert_int_equal(t->vlast[h], VERDICT_PASS);
	/* a flow that sends payload is no longer SYN-only: room for another */
	uint64_t p = feed(t, &(struct seg){V4, .sport = 1, .dport = 80, .seq = ISN + 1 + 4,
	                                   .flags = ACK | PSH, .data = "part"},
	                  2);
	assert_int_equal(t->vcount[p], 0); /* held: the stream has a gap */
	h = feed(t, &(struct seg){V4, .sport = 4, .dport = 80, .seq = ISN, .flags = SYN}, 2);
	assert_int_equal(t->vlast[h], VERDICT_PASS);
	/* host mode: the same address, another uid, is another source */
	h = feed(t, &(struct seg){V4, .sport = 5, .dport = 80, .seq = ISN, .flags = SYN, .uid = 1001},
	         2);
	assert_int_equal(t->vlast[h], VERDICT_PASS);
	down(t);
}

static void small_holds(struct engine_config *c)
{
	c->hold_packets_source = 3;
	c->hold_packets_total = 5;
}

/* An out-of-order segment of (src, sport) at offset off: held, the stream never starts. */
static uint64_t gap(struct t *t, const char *src, uint16_t sport, uint32_t off, uint64_t now)
{
	return feed(t, &(struct seg){.src = src, .dst = "198.51.100.10", .sport = sport, .dport = 80,
	                             .seq = ISN + 1 + off, .flags = ACK | PSH, .data = "xx"},
	            now);
}

static void held_packets_per_source_and_total(void **state)
{
	(void)state;
	struct t *t = up(UNKNOWN_IP_DENY, small_holds);
	const char *A = "192.0.2.1", *B = "192.0.2.2", *C = "192.0.2.3";
	for (uint16_t sp = 1; sp <= 2; sp++) {
		feed(t, &(struct seg){.src = A, .dst = "198.51.100.10", .sport = sp, .dport = 80,
		                      .seq = ISN, .flags = SYN},
		     1);
	}
	uint64_t a1 = gap(t, A, 1, 10, 1), a2 = gap(t, A, 1, 20, 1);
	uint64_t b1 = gap(t, A, 2, 10, 1);
	assert_int_equal(t->vcount[a1] + t->vcount[a2] + t->vcount[b1], 0);
	/* A's fourth held packet: the flow asking is denied, with what it held */
	uint64_t b2 = gap(t, A, 2, 20, 1);
	assert_int_equal(t->vlast[b1], VERDICT_DENY);
	assert_int_equal(t->vlast[b2], VERDICT_DENY);
	assert_string_equal(t->detail, "hold_packets_source");
	assert_int_equal(t->vcount[a1] + t->vcount[a2], 0); /* A's other flow still waits */
	/* B holds 2, A 2: total 4; C's first makes 5, its second 6 > 5 */
	for (uint16_t sp = 1; sp <= 1; sp++) {
		feed(t, &(struct seg){.src = B, .dst = "198.51.100.10", .sport = sp, .dport = 80,
		                      .seq = ISN, .flags = SYN},
		     1);
		feed(t, &(struct seg){.src = C, .dst = "198.51.100.10", .sport = sp, .dport = 80,
		                      .seq = ISN, .flags = SYN},
		     1);
	}
	uint64_t x1 = gap(t, B, 1, 10, 1), x2 = gap(t, B, 1, 20, 1);
	uint64_t c1 = gap(t, C, 1, 10, 1);
	assert_int_equal(t->vcount[x1] + t->vcount[x2] + t->vcount[c1], 0);
	uint64_t c2 = gap(t, C, 1, 20, 1);
	assert_int_equal(t->vlast[c1], VERDICT_DENY);
	assert_int_equal(t->vlast[c2], VERDICT_DENY);
	assert_string_equal(t->detail, "hold_packets_total");
	/* the others wait for their hold timeout, as before */
	engine_tick(t->e, 5 * S);
	assert_int_equal(t->vlast[a1], VERDICT_DENY);
	assert_string_equal(t->detail, "hold_timeout");
	assert_int_equal(t->vlast[x1], VERDICT_DENY);
	down(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(covert_headers_deny_the_flow),
	    cmocka_unit_test(held_packets_are_judged_with_the_flow),
	    cmocka_unit_test(bare_packets_per_flow),
	    cmocka_unit_test(syn_only_flows_per_source),
	    cmocka_unit_test(held_packets_per_source_and_total),
	};
	return cmocka_run_group_tests_name("engine_dos", tests, NULL, NULL);
}
