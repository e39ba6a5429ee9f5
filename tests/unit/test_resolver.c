/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resolver's defence against forged answers (issue 9, class 6): 0x20
 * case randomisation of the question, checked on the answer. The helpers
 * alone, then a real resolver (c-ares) against a fake upstream on loopback
 * served from this test's event loop, which can answer with the case it
 * was sent (the real server) or in lowercase (a forger who cannot see it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "../../proxy/resolver.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 300
/* 40 letters: the chance that 0x20 leaves them all as they were is 2^-40 */
#define LONG_NAME "AbcdefghIj.klmnopqrst.UVWXYZabcd.efghijklmn.example"

enum up_mode {
	UP_ECHO = 0,     /* the question as sent (a real server) */
	UP_FORGED_FIRST, /* a lowercase copy first (a forger's guess), then the real answer */
	UP_FORGED_ONLY,  /* only the lowercase copy */
};

struct fixture {
	struct event_base *base;
	struct resolver *r;
	int up_fd;
	struct event *up_ev;
	enum up_mode mode;
	uint8_t seen[512]; /* the last query the upstream read */
	size_t seen_len;
	unsigned up_packets;
	/* send callback */
	bool done;
	int status;
	uint8_t answer[512];
	size_t answer_len;
	/* lookup callback */
	size_t naddrs;
};

static size_t build_query(uint8_t *out, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
	size_t n = 12;
	const char *p = name;

	assert_true(cap > 12 + strlen(name) + 6);
	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* qdcount */
	while (*p) {
		size_t l = strcspn(p, ".");
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	out[n++] = (uint8_t)(qtype >> 8);
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = 1; /* IN */
	return n;
}

/* The query with QR/RA and one A (or AAAA) record appended; lower: the question in lowercase. */
static size_t make_answer(const uint8_t *q, size_t qlen, uint8_t *a, bool lower)
{
	size_t len = qlen;
	bool aaaa = q[qlen - 3] == 28;

	memcpy(a, q, qlen);
	a[2] = 0x81;
	a[3] = 0x80;
	a[7] = 1;
	if (lower)
		for (size_t i = 12; i < qlen - 4; i++)
			a[i] = (uint8_t)tolower(a[i]);
	const uint8_t rr4[16] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1};
	const uint8_t rr6[28] = {0xc0, 12, 0, 28, 0, 1, 0, 0, 1, 44, 0, 16, 0x20, 0x01,
	                         0x0d, 0xb8};
	memcpy(a + len, aaaa ? rr6 : rr4, aaaa ? sizeof(rr6) : sizeof(rr4));
	return len + (aaaa ? sizeof(rr6) : sizeof(rr4));
}

static void upstream_read(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	uint8_t q[512], a[600];
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	ssize_t n = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&sa, &salen);

	(void)what;
	if (n < 12 + 5)
		return;
	f->up_packets++;
	memcpy(f->seen, q, (size_t)n);
	f->seen_len = (size_t)n;
	if (f->mode != UP_ECHO) {
		size_t len = make_answer(q, (size_t)n, a, true);
		assert_int_equal(sendto(fd, a, len, 0, (struct sockaddr *)&sa, salen), (ssize_t)len);
	}
	if (f->mode != UP_FORGED_ONLY) {
		size_t len = make_answer(q, (size_t)n, a, false);
		assert_int_equal(sendto(fd, a, len, 0, (struct sockaddr *)&sa, salen), (ssize_t)len);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	struct conf_endpoint up = {.port = 0};
	struct resolver_opts ro = {.timeout_ms = TIMEOUT_MS, .tries = 1};
	char err[256] = "";

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->up_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_not_equal(f->up_fd, -1);
	assert_int_equal(bind(f->up_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(f->up_fd, (struct sockaddr *)&sin, &sl), 0);
	f->up_ev = event_new(f->base, f->up_fd, EV_READ | EV_PERSIST, upstream_read, f);
	assert_int_equal(event_add(f->up_ev, NULL), 0);
	assert_true(addr_parse("127.0.0.1", &up.addr));
	up.port = ntohs(sin.sin_port);
	f->r = resolver_new_opts(f->base, &up, 1, 0, &ro, err, sizeof(err));
	if (!f->r)
		fail_msg("resolver: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	resolver_free(f->r);
	event_free(f->up_ev);
	close(f->up_fd);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void run_until(struct fixture *f, bool *flag, unsigned ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!*flag) {
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			break;
		usleep(1000);
	}
}

static void on_raw(void *arg, int status, const uint8_t *answer, size_t len)
{
	struct fixture *f = arg;

	f->done = true;
	f->status = status;
	f->answer_len = 0;
	if (status == 0 && len <= sizeof(f->answer)) {
		memcpy(f->answer, answer, len);
		f->answer_len = len;
	}
}

static void on_addrs(void *arg, const char *name, const struct dns_addr *addrs, size_t n)
{
	struct fixture *f = arg;

	(void)name;
	(void)addrs;
	f->naddrs = n;
	f->done = true;
}

/* ---- the helpers ---- */

static void qname_len_plain_names_only(void **state)
{
	uint8_t q[128];
	size_t n = build_query(q, sizeof(q), 1, "a.bc.example", 1);

	(void)state;
	assert_int_equal(resolver_qname_len(q, n), 1 + 1 + 1 + 2 + 1 + 7 + 1);
	assert_int_equal(resolver_qname_len(q, 12 + 5), 0); /* runs past the end */
	q[5] = 2;                                          /* two questions */
	assert_int_equal(resolver_qname_len(q, n), 0);
	q[5] = 0;
	assert_int_equal(resolver_qname_len(q, n), 0);
	q[5] = 1;
	q[12] = 0xc0; /* a pointer */
	assert_int_equal(resolver_qname_len(q, n), 0);
	q[12] = 64; /* reserved label type */
	assert_int_equal(resolver_qname_len(q, n), 0);
	n = build_query(q, sizeof(q), 1, "", 1); /* the root */
	assert_int_equal(resolver_qname_len(q, n), 1);
}

static void case_randomise_letters_only(void **state)
{
	uint8_t q[128], ones[32], zeros[32] = {0};
	size_t n = build_query(q, sizeof(q), 1, "Ab-9.x_Y.example", 1);
	size_t qn = resolver_qname_len(q, n);

	(void)state;
	memset(ones, 0xff, sizeof(ones));
	resolver_case_randomise(q + 12, qn, ones);
	assert_memory_equal(q + 12, "\x04" "AB-9" "\x03" "X_Y" "\x07" "EXAMPLE", qn);
	resolver_case_randomise(q + 12, qn, zeros);
	assert_memory_equal(q + 12, "\x04" "ab-9" "\x03" "x_y" "\x07" "example", qn);
	/* bit k is the case of the k-th letter; bits 0 and 2: A, b, X, y */
	uint8_t bits[32] = {0x05};
	resolver_case_randomise(q + 12, qn, bits);
	assert_memory_equal(q + 12, "\x04" "Ab-9" "\x03" "X_y" "\x07" "example", qn);
}

static void question_is_exact(void **state)
{
	uint8_t q[128];
	size_t n = build_query(q, sizeof(q), 1, "MiXeD.example", 1);
	size_t qn = resolver_qname_len(q, n);
	uint8_t name[64];

	(void)state;
	memcpy(name, q + 12, qn);
	assert_true(resolver_question_is(q, n, name, qn));
	name[2] = 'I'; /* "MIXeD": same name, another case */
	assert_false(resolver_question_is(q, n, name, qn));
	assert_false(resolver_question_is(q, n, name, 0));
	assert_false(resolver_question_is(q, n, q + 12, qn - 1));
}

/* ---- end to end ---- */

static void send_randomises_case_and_restores_it(void **state)
{
	struct fixture *f = *state;
	uint8_t q[256];
	size_t n = build_query(q, sizeof(q), 0x4242, LONG_NAME, 1);
	size_t qn = resolver_qname_len(q, n);

	f->mode = UP_ECHO;
	assert_int_equal(resolver_send(f->r, q, n, on_raw, f), 0);
	run_until(f, &f->done, 2000);
	assert_true(f->done);
	assert_int_equal(f->status, 0);
	/* the upstream saw the same name in another case */
	assert_int_equal(f->seen_len, n);
	assert_true(strncasecmp((char *)f->seen + 12, (char *)q + 12, qn) == 0);
	assert_memory_not_equal(f->seen + 12, q + 12, qn);
	/* the client gets its own case back */
	assert_memory_equal(f->answer + 12, q + 12, qn);
	assert_int_equal(f->answer[7], 1);
	assert_int_equal(resolver_case_mismatches(f->r), 0);
}

static void forged_case_dropped_real_answer_taken(void **state)
{
	struct fixture *f = *state;
	uint8_t q[256];
	size_t n = build_query(q, sizeof(q), 0x4343, LONG_NAME, 1);
	size_t qn = resolver_qname_len(q, n);

	f->mode = UP_FORGED_FIRST;
	assert_int_equal(resolver_send(f->r, q, n, on_raw, f), 0);
	run_until(f, &f->done, 2000);
	assert_true(f->done);
	assert_int_equal(f->status, 0);
	assert_memory_equal(f->answer + 12, q + 12, qn);
	/* the lowercase copy was dropped below c-ares and counted */
	assert_int_equal(resolver_case_mismatches(f->r), 1);
}

static void forged_case_alone_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t q[256];
	size_t n = build_query(q, sizeof(q), 0x4444, LONG_NAME, 1);

	f->mode = UP_FORGED_ONLY;
	assert_int_equal(resolver_send(f->r, q, n, on_raw, f), 0);
	run_until(f, &f->done, 3000);
	assert_true(f->done);
	assert_int_not_equal(f->status, 0); /* timed out: never the forged answer */
	assert_int_equal(f->answer_len, 0);
	assert_int_equal(resolver_case_mismatches(f->r), 1);
}

static void send_refuses_what_it_cannot_check(void **state)
{
	struct fixture *f = *state;
	uint8_t q[256];
	size_t n = build_query(q, sizeof(q), 0x4545, "two.example", 1);

	q[5] = 2;
	assert_int_equal(resolver_send(f->r, q, n, on_raw, f), -EINVAL);
	q[5] = 1;
	q[12] = 0xc0;
	assert_int_equal(resolver_send(f->r, q, n, on_raw, f), -EINVAL);
	assert_false(f->done);
}

static void lookup_randomises_and_checks(void **state)
{
	struct fixture *f = *state;

	f->mode = UP_ECHO;
	assert_int_equal(resolver_lookup(f->r, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn.example",
	                                 on_addrs, f),
	                 0);
	run_until(f, &f->done, 2000);
	assert_true(f->done);
	assert_int_equal(f->naddrs, 2); /* A + AAAA */
	/* the last query (AAAA) left in another case than given */
	assert_memory_not_equal(f->seen + 13, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn", 40);

	f->done = false;
	f->mode = UP_FORGED_ONLY;
	assert_int_equal(resolver_lookup(f->r, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn.example",
	                                 on_addrs, f),
	                 0);
	run_until(f, &f->done, 3000);
	assert_true(f->done);
	assert_int_equal(f->naddrs, 0);
	assert_int_equal(resolver_case_mismatches(f->r), 2);
}

/* [dns] max_ttl: every TTL above it in an answer to a client is clamped, OPT's is not. */
static void clamp_ttls_answer_authority_additional(void **state)
{
	uint8_t q[128], a[256];
	size_t n = build_query(q, sizeof(q), 7, "x.example", 1);
	size_t len = make_answer(q, n, a, false); /* one A, TTL 300 */

	(void)state;
	/* TTL 86400 on the A; then an authority record with TTL 100
	 * (uncompressed owner name), then OPT with a "TTL" of 0xffffffff */
	a[len - 10] = 0;
	a[len - 9] = 1;
	a[len - 8] = 0x51;
	a[len - 7] = 0x80;
	const uint8_t ns[] = {1, 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 5, 0, 1,
	                      0, 0, 0, 100, 0, 2, 0xc0, 12};
	memcpy(a + len, ns, sizeof(ns));
	len += sizeof(ns);
	const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0xff, 0xff, 0xff, 0xff, 0, 0};
	memcpy(a + len, opt, sizeof(opt));
	len += sizeof(opt);
	a[9] = 1;  /* nscount */
	a[11] = 1; /* arcount */
	resolver_clamp_ttls(a, len, 3600);
	size_t ttl_a = n + 6;
	assert_memory_equal(a + ttl_a, "\x00\x00\x0e\x10", 4); /* 3600 */
	assert_memory_equal(a + n + 16 + 15, "\x00\x00\x00\x64", 4);   /* 100 kept */
	assert_memory_equal(a + len - 6, "\xff\xff\xff\xff", 4);         /* OPT untouched */
	/* 0: nothing changes; a truncated message: no write past it */
	resolver_clamp_ttls(a, len, 0);
	assert_memory_equal(a + ttl_a, "\x00\x00\x0e\x10", 4);
	resolver_clamp_ttls(a, n + 8, 60); /* cut inside the first record */
	assert_memory_equal(a + ttl_a, "\x00\x00\x0e\x10", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(qname_len_plain_names_only),
	    cmocka_unit_test(case_randomise_letters_only),
	    cmocka_unit_test(question_is_exact),
	    cmocka_unit_test(clamp_ttls_answer_authority_additional),
	    cmocka_unit_test_setup_teardown(send_randomises_case_and_restores_it, setup, teardown),
	    cmocka_unit_test_setup_teardown(forged_case_dropped_real_answer_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(forged_case_alone_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(send_refuses_what_it_cannot_check, setup, teardown),
	    cmocka_unit_test_setup_teardown(lookup_randomises_and_checks, setup, teardown),
	};
	return cmocka_run_group_tests_name("resolver", tests, NULL, NULL);
}
