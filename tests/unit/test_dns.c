/* SPDX-License-Identifier: GPL-2.0-or-later */
/* DNS: query parsing, replies, answers with CNAME chains, hostile names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"

#include "bld.h"
static void hdr(struct bld *b, uint16_t id, uint16_t flags, unsigned qd, unsigned an)
{
	put16(b, id);
	put16(b, flags);
	put16(b, qd);
	put16(b, an);
	put16(b, 0);
	put16(b, 0);
}
/* "a.b.c" as labels, with the root's 0; no compression. */
static void name(struct bld *b, const char *s)
{
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		put8(b, (unsigned)l);
		putb(b, s, l);
		s += l + (dot ? 1 : 0);
	}
	put8(b, 0);
}
static void ptr(struct bld *b, unsigned off)
{
	put16(b, 0xc000 | off);
}
static size_t rr_begin(struct bld *b, unsigned type, uint32_t ttl)
{
	put16(b, type);
	put16(b, DNS_CLASS_IN);
	put32(b, ttl);
	size_t at = b->n;
	put16(b, 0);
	return at;
}
static void rr_end(struct bld *b, size_t at)
{
	size_t len = b->n - at - 2;
	b->d[at] = (uint8_t)(len >> 8);
	b->d[at + 1] = (uint8_t)len;
}
static void query(struct bld *b, const char *qname, unsigned qtype)
{
	hdr(b, 0xbeef, 0x0100, 1, 0);
	name(b, qname);
	put16(b, qtype);
	put16(b, DNS_CLASS_IN);
}

static enum parse qparse(const struct bld *b, struct dns_query *q, enum dns_err *why)
{
	return dns_query_parse(cur_make(b->d, b->n), q, why);
}
static void qbad(const struct bld *b, enum dns_err want)
{
	struct dns_query q;
	enum dns_err why = DNS_OK;
	assert_int_equal(qparse(b, &q, &why), PARSE_BAD);
	if (why != want)
		fail_msg("got %s, want %s", dns_err_name(why), dns_err_name(want));
}

static void query_ok(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_query q;
	enum dns_err why;
	query(&b, "WWW.Example.COM", DNS_TYPE_AAAA);
	put8(&b, 0); /* EDNS OPT in additional is ignored (arcount 0 here: trailing ok) */
	b.n--;
	assert_int_equal(qparse(&b, &q, &why), PARSE_OK);
	assert_int_equal(why, DNS_OK);
	assert_int_equal(q.id, 0xbeef);
	assert_int_equal(q.qtype, DNS_TYPE_AAAA);
	assert_int_equal(q.qclass, DNS_CLASS_IN);
	assert_string_equal(q.qname, "www.example.com");
	assert_string_equal(q.raw_qname, "www.example.com");
	assert_int_equal(q.question_end, b.n);
}

static void query_raw_escapes(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_query q;
	enum dns_err why;
	hdr(&b, 1, 0, 1, 0);
	put8(&b, 4);
	putb(&b, "A\x01.b", 4);
	name(&b, "Tunnel_x.example");
	put16(&b, DNS_TYPE_TXT);
	put16(&b, DNS_CLASS_IN);
	assert_int_equal(qparse(&b, &q, &why), PARSE_BAD);
	assert_int_equal(why, DNS_NAME_REFUSED);
	assert_int_equal(q.name_err, NAME_BAD_CHAR);
	assert_int_equal(q.qtype, DNS_TYPE_TXT);
	assert_string_equal(q.raw_qname, "a\\001\\046b.tunnel_x.example");
	assert_string_equal(q.qname, "");
}

static void query_refused_names(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_query q;
	enum dns_err why;
	query(&b, "192.0.2.1", DNS_TYPE_A);
	assert_int_equal(qparse(&b, &q, &why), PARSE_BAD);
	assert_int_equal(why, DNS_NAME_REFUSED);
	assert_int_equal(q.name_err, NAME_IP_LITERAL);
	assert_string_equal(q.raw_qname, "192.0.2.1");
	struct bld r = {0};
	query(&r, "", DNS_TYPE_NS); /* the root */
	assert_int_equal(qparse(&r, &q, &why), PARSE_BAD);
	assert_int_equal(why, DNS_NAME_REFUSED);
	assert_int_equal(q.name_err, NAME_EMPTY);
	assert_true(q.question_end > 12);
}

static void query_bad(void **state)
{
	(void)state;
	struct bld b = {0};
	hdr(&b, 1, 0x0100, 2, 0); /* two questions */
	name(&b, "a.example");
	put32(&b, 0x00010001);
	name(&b, "b.example");
	put32(&b, 0x00010001);
	qbad(&b, DNS_QDCOUNT);
	struct bld z = {0};
	hdr(&z, 1, 0x0100, 0, 0);
	qbad(&z, DNS_QDCOUNT);

	struct bld c = {0};
	hdr(&c, 1, 0x0100, 1, 0);
	name(&c, "version.bind");
	put16(&c, DNS_TYPE_TXT);
	put16(&c, 3); /* CHAOS */
	qbad(&c, DNS_BAD_CLASS);

	struct bld o = {0};
	hdr(&o, 1, 0x2800 /* opcode 5 UPDATE */, 1, 0);
	name(&o, "a.example");
	put32(&o, 0x00060001);
	qbad(&o, DNS_NOT_QUERY);
	o.d[2] = 0x10; /* opcode 2 STATUS */
	qbad(&o, DNS_NOT_QUERY);
	o.d[2] = 0x81; /* QR set */
	qbad(&o, DNS_NOT_QUERY);

	struct bld t = {0};
	query(&t, "a.example", DNS_TYPE_A);
	t.n = 11;
	qbad(&t, DNS_TRUNCATED);
	t.n = 16; /* inside the name */
	qbad(&t, DNS_TRUNCATED);
	query(memset(&t, 0, sizeof t), "a.example", DNS_TYPE_A);
	t.n -= 1; /* qclass cut */
	qbad(&t, DNS_TRUNCATED);
}

static void names_hostile(void **state)
{
	(void)state;
	/* pointer to itself */
	struct bld b = {0};
	hdr(&b, 1, 0, 1, 0);
	ptr(&b, 12);
	put32(&b, 0x00010001);
	qbad(&b, DNS_BAD_NAME);
	/* pointer forward */
	struct bld f = {0};
	hdr(&f, 1, 0, 1, 0);
	ptr(&f, 18);
	put32(&f, 0x00010001);
	name(&f, "a.example");
	qbad(&f, DNS_BAD_NAME);
	/* label, then a pointer back to that label: a loop through backward pointers */
	struct bld l = {0};
	hdr(&l, 1, 0, 1, 0);
	put8(&l, 1);
	put8(&l, 'a');
	ptr(&l, 12);
	put32(&l, 0x00010001);
	qbad(&l, DNS_BAD_NAME);
	/* extended label type 01xxxxxx */
	struct bld e = {0};
	hdr(&e, 1, 0, 1, 0);
	put8(&e, 0x41);
	put32(&e, 0);
	qbad(&e, DNS_BAD_NAME);
	/* name over 255 octets on the wire: 5 labels of 63 */
	struct bld g = {0};
	hdr(&g, 1, 0, 1, 0);
	for (int i = 0; i < 5; i++) {
		put8(&g, 63);
		for (int k = 0; k < 63; k++)
			put8(&g, 'x');
	}
	put8(&g, 0);
	put32(&g, 0x00010001);
	qbad(&g, DNS_BAD_NAME);
	/* exactly 255 on the wire: 3*64 + 62 + 1 -> 253 as text, the longest name */
	struct bld m = {0};
	struct dns_query q;
	enum dns_err why;
	hdr(&m, 1, 0, 1, 0);
	for (int i = 0; i < 3; i++) {
		put8(&m, 63);
		for (int k = 0; k < 63; k++)
			put8(&m, 'x');
	}
	put8(&m, 61);
	for (int k = 0; k < 61; k++)
		put8(&m, 'y');
	put8(&m, 0);
	put32(&m, 0x00010001);
	assert_int_equal(qparse(&m, &q, &why), PARSE_OK);
	assert_int_equal(strlen(q.qname), 253);
	/* one more byte in the last label: 256 on the wire */
	m.d[12 + 3 * 64] = 62;
	m.n = 12 + 3 * 64 + 1;
	for (int k = 0; k < 62; k++)
		put8(&m, 'y');
	put8(&m, 0);
	put32(&m, 0x00010001);
	qbad(&m, DNS_BAD_NAME);
	/* a backward pointer into the header: legal on the wire, here it reads the root */
	struct bld v = {0};
	hdr(&v, 1, 0, 1, 0);
	ptr(&v, 0);
	put32(&v, 0x00010001);
	assert_int_equal(qparse(&v, &q, &why), PARSE_BAD);
	assert_int_equal(why, DNS_NAME_REFUSED);
	assert_int_equal(q.name_err, NAME_EMPTY);
}

static void reply(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_query q;
	enum dns_err why;
	hdr(&b, 0x1234, 0x0110 /* RD, CD */, 1, 0);
	b.d[11] = 1; /* arcount 1: the OPT record is not copied */
	name(&b, "evil.example");
	put16(&b, DNS_TYPE_A);
	put16(&b, DNS_CLASS_IN);
	size_t qend = b.n;
	put8(&b, 0);
	put16(&b, 41);
	put16(&b, 1232);
	put32(&b, 0);
	put16(&b, 0);
	assert_int_equal(qparse(&b, &q, &why), PARSE_OK);
	assert_int_equal(q.question_end, qend);

	uint8_t out[512];
	size_t n = dns_build_reply(b.d, b.n, &q, DNS_RCODE_REFUSED, out, sizeof out);
	assert_int_equal(n, qend);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(out[1], 0x34);
	assert_int_equal(out[2], 0x81);                     /* QR, opcode 0, RD */
	assert_int_equal(out[3], 0x80 | DNS_RCODE_REFUSED); /* RA */
	const uint8_t counts[] = {0, 1, 0, 0, 0, 0, 0, 0};
	assert_memory_equal(out + 4, counts, 8);
	assert_memory_equal(out + 12, b.d + 12, qend - 12);
	assert_int_equal(dns_build_reply(b.d, b.n, &q, DNS_RCODE_NXDOMAIN, out, qend - 1), 0);
	/* the question cannot be copied: the header alone answers, qdcount 0 */
	assert_int_equal(dns_build_reply(b.d, qend - 1, &q, DNS_RCODE_NXDOMAIN, out, sizeof out),
	                 12);
	assert_int_equal(out[3], 0x80 | DNS_RCODE_NXDOMAIN);
	assert_int_equal(out[5], 0);
	/* a query refused for having two questions still gets an answer */
	{
		struct dns_query q2;
		uint8_t two[sizeof b.d];
		memcpy(two, b.d, b.n);
		two[5] = 2; /* qdcount 2 */
		assert_int_equal(dns_query_parse(cur_make(two, b.n), &q2, &why), PARSE_BAD);
		assert_int_equal(why, DNS_QDCOUNT);
		assert_int_equal(dns_build_reply(two, b.n, &q2, DNS_RCODE_REFUSED, out, sizeof out),
		                 12);
		assert_int_equal(out[0], 0x12);
		assert_int_equal(out[3], 0x80 | DNS_RCODE_REFUSED);
		assert_int_equal(out[5], 0);
	}
	n = dns_build_reply(b.d, b.n, &q, DNS_RCODE_NOERROR, out, sizeof out);
	assert_int_equal(out[3], 0x80);

	/* the reply parses as an answer with no addresses */
	struct dns_addr a[4];
	size_t na = 9;
	uint8_t rcode = 0xff;
	n = dns_build_reply(b.d, b.n, &q, DNS_RCODE_NXDOMAIN, out, sizeof out);
	assert_int_equal(
	    dns_answer_addrs(cur_make(out, n), "evil.example", true, a, 4, &na, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(na, 0);
	assert_int_equal(rcode, DNS_RCODE_NXDOMAIN);

	dns_set_id(out, n, 0xabcd);
	assert_int_equal(out[0], 0xab);
	assert_int_equal(out[1], 0xcd);
}

/*
 * www.example.com CNAME cdn.example.net (ttl 300)
 * cdn.example.net CNAME edge.cdn.example.net (ttl 30)
 * edge.cdn.example.net A 198.51.100.7 (ttl 600) and AAAA 2001:db8::7 (ttl 10)
 * other.example A 203.0.113.9: not on the chain
 */
static size_t chain_answer(struct bld *b, unsigned ancount_extra)
{
	size_t at;
	hdr(b, 7, 0x8180, 1, 5 + ancount_extra);
	name(b, "www.example.com"); /* offset 12 */
	put32(b, 0x00010001);
	ptr(b, 12);
	at = rr_begin(b, DNS_TYPE_CNAME, 300);
	size_t cdn = b->n;
	name(b, "CDN.example.net");
	rr_end(b, at);
	ptr(b, (unsigned)cdn);
	at = rr_begin(b, DNS_TYPE_CNAME, 30);
	size_t edge = b->n;
	put8(b, 4);
	putb(b, "edge", 4);
	ptr(b, (unsigned)cdn);
	rr_end(b, at);
	ptr(b, (unsigned)edge);
	at = rr_begin(b, DNS_TYPE_A, 600);
	putb(b, "\xc6\x33\x64\x07", 4);
	rr_end(b, at);
	ptr(b, (unsigned)edge);
	at = rr_begin(b, DNS_TYPE_AAAA, 10);
	putb(b, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07", 16);
	rr_end(b, at);
	name(b, "other.example");
	at = rr_begin(b, DNS_TYPE_A, 600);
	putb(b, "\xcb\x00\x71\x09", 4);
	rr_end(b, at);
	return b->n;
}

static void answer_chain(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_addr a[8];
	size_t n = 0;
	uint8_t rcode = 0xff;
	enum dns_err why;
	chain_answer(&b, 0);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "www.example.com", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(rcode, 0);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].addr.family, ADDR_V4);
	assert_memory_equal(a[0].addr.b, "\xc6\x33\x64\x07", 4);
	assert_int_equal(a[0].ttl, 30);
	assert_int_equal(a[1].addr.family, ADDR_V6);
	assert_int_equal(a[1].addr.b[15], 7);
	assert_int_equal(a[1].ttl, 10);
	/* the middle of the chain also works as qname; unrelated names bind nothing */
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "cdn.example.net", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].ttl, 30);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "nothing.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "other.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].ttl, 600);
	/* cap */
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "WWW.example.com.", false, a, 1, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 1);
}

static void answer_truncated(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_addr a[8];
	size_t n = 5, full;
	uint8_t rcode;
	enum dns_err why;
	full = chain_answer(&b, 1); /* ancount says 6, there are 5 */
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, full), "www.example.com", false, a, 8, &n, &rcode, &why),
	    PARSE_BAD);
	assert_int_equal(why, DNS_BAD_RR);
	assert_int_equal(n, 0);
	memset(&b, 0, sizeof b);
	full = chain_answer(&b, 0);
	for (size_t cut = 12; cut < full; cut++) {
		enum parse r = dns_answer_addrs(cur_make(b.d, cut), "www.example.com", false, a, 8,
		                                &n, &rcode, &why);
		if (r != PARSE_BAD)
			fail_msg("cut at %zu of %zu accepted", cut, full);
		if (cut > 33 && why != DNS_BAD_RR) /* past the question */
			fail_msg("cut at %zu: %s", cut, dns_err_name(why));
	}
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, 11), "www.example.com", false, a, 8, &n, &rcode, &why),
	    PARSE_BAD);
	assert_int_equal(why, DNS_TRUNCATED);
	/* an A record with 5 bytes of rdata */
	struct bld w = {0};
	hdr(&w, 1, 0x8180, 1, 1);
	name(&w, "a.example");
	put32(&w, 0x00010001);
	ptr(&w, 12);
	size_t at = rr_begin(&w, DNS_TYPE_A, 60);
	putb(&w, "\x01\x02\x03\x04\x05", 5);
	rr_end(&w, at);
	assert_int_equal(
	    dns_answer_addrs(cur_make(w.d, w.n), "a.example", false, a, 8, &n, &rcode, &why),
	    PARSE_BAD);
	assert_int_equal(why, DNS_BAD_RR);
	/* a query (QR clear) is not an answer */
	struct bld q = {0};
	query(&q, "a.example", DNS_TYPE_A);
	assert_int_equal(
	    dns_answer_addrs(cur_make(q.d, q.n), "a.example", false, a, 8, &n, &rcode, &why),
	    PARSE_BAD);
	assert_int_equal(why, DNS_NOT_QUERY);
}

static void answer_cname_loop(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_addr a[8];
	size_t n, at;
	uint8_t rcode;
	enum dns_err why;
	hdr(&b, 1, 0x8180, 1, 3);
	name(&b, "a.example");
	put32(&b, 0x00010001);
	ptr(&b, 12);
	at = rr_begin(&b, DNS_TYPE_CNAME, 100);
	size_t bn = b.n;
	name(&b, "b.example");
	rr_end(&b, at);
	ptr(&b, (unsigned)bn);
	at = rr_begin(&b, DNS_TYPE_CNAME, 50);
	ptr(&b, 12);
	rr_end(&b, at);
	ptr(&b, (unsigned)bn);
	at = rr_begin(&b, DNS_TYPE_A, 70);
	putb(&b, "\xc0\x00\x02\x05", 4);
	rr_end(&b, at);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "a.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].ttl, 70 < 100 ? 70 : 100);

	/* a long chain c0 -> c1 -> ... -> c20 with the address at the end: not followed that far */
	struct bld l = {0};
	hdr(&l, 1, 0x8180, 1, 21);
	name(&l, "c0.example");
	put32(&l, 0x00010001);
	char nm[32];
	for (int i = 0; i < 20; i++) {
		snprintf(nm, sizeof nm, "c%d.example", i);
		name(&l, nm);
		at = rr_begin(&l, DNS_TYPE_CNAME, 100);
		snprintf(nm, sizeof nm, "c%d.example", i + 1);
		name(&l, nm);
		rr_end(&l, at);
	}
	name(&l, "c20.example");
	at = rr_begin(&l, DNS_TYPE_A, 100);
	putb(&l, "\xc0\x00\x02\x06", 4);
	rr_end(&l, at);
	assert_int_equal(
	    dns_answer_addrs(cur_make(l.d, l.n), "c0.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(
	    dns_answer_addrs(cur_make(l.d, l.n), "c10.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 1);
}

static void answer_https_hints(void **state)
{
	(void)state;
	struct bld b = {0};
	struct dns_addr a[8];
	size_t n, at;
	uint8_t rcode;
	enum dns_err why;
	hdr(&b, 1, 0x8180, 1, 1);
	name(&b, "svc.example");
	put16(&b, DNS_TYPE_HTTPS);
	put16(&b, DNS_CLASS_IN);
	ptr(&b, 12);
	at = rr_begin(&b, DNS_TYPE_HTTPS, 120);
	put16(&b, 1); /* priority */
	put8(&b, 0);  /* target "." */
	put16(&b, 1); /* alpn */
	put16(&b, 3);
	putb(&b, "\x02h2", 3);
	put16(&b, 4); /* ipv4hint */
	put16(&b, 8);
	putb(&b, "\xc6\x33\x64\x01\xc6\x33\x64\x02", 8);
	put16(&b, 6); /* ipv6hint */
	put16(&b, 16);
	putb(&b, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09", 16);
	rr_end(&b, at);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "svc.example", true, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(a[1].addr.b[3], 2);
	assert_int_equal(a[2].addr.family, ADDR_V6);
	assert_int_equal(a[2].ttl, 120);
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "svc.example", false, a, 8, &n, &rcode, &why),
	    PARSE_OK);
	assert_int_equal(n, 0);
	/* an ipv4hint of 7 bytes is malformed */
	b.d[b.n - 16 - 4 - 8 - 1] = 7;
	assert_int_equal(
	    dns_answer_addrs(cur_make(b.d, b.n), "svc.example", true, a, 8, &n, &rcode, &why),
	    PARSE_BAD);
	assert_int_equal(why, DNS_BAD_RR);
}

/* An HTTPS answer, with or without an ech param, then a CNAME and an A whose owner points past it. */
static void ech_answer(struct bld *b, bool ech)
{
	hdr(b, 1, 0x8180, 1, 3);
	name(b, "svc.example");
	put16(b, DNS_TYPE_HTTPS);
	put16(b, DNS_CLASS_IN);
	ptr(b, 12);
	size_t at = rr_begin(b, DNS_TYPE_HTTPS, 120);
	put16(b, 1); /* priority */
	put8(b, 0);  /* target "." */
	put16(b, 1); /* alpn */
	put16(b, 3);
	putb(b, "\x02h2", 3);
	put16(b, 4); /* ipv4hint */
	put16(b, 4);
	putb(b, "\xc6\x33\x64\x01", 4);
	if (ech) {
		put16(b, 5); /* ech */
		put16(b, 6);
		putb(b, "ECHCFG", 6);
	}
	put16(b, 6); /* ipv6hint */
	put16(b, 16);
	putb(b, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x09", 16);
	rr_end(b, at);
	size_t owner = b->n;
	name(b, "a.example");
	at = rr_begin(b, DNS_TYPE_CNAME, 60);
	ptr(b, 12);
	rr_end(b, at);
	ptr(b, (unsigned)owner);
	at = rr_begin(b, DNS_TYPE_A, 60);
	putb(b, "\xc6\x33\x64\x07", 4);
	rr_end(b, at);
}

static void strip_ech(void **state)
{
	(void)state;
	struct bld with = {0}, without = {0};
	uint8_t out[1024], again[1024];
	bool changed = false;
	ech_answer(&with, true);
	ech_answer(&without, false);
	size_t n = dns_strip_ech(with.d, with.n, out, sizeof out, &changed);
	assert_true(changed);
	assert_int_equal(n, without.n);
	assert_memory_equal(out, without.d, n); /* RDLENGTH and the later pointer moved */
	/* nothing to strip: copied byte for byte */
	n = dns_strip_ech(without.d, without.n, again, sizeof again, &changed);
	assert_false(changed);
	assert_int_equal(n, without.n);
	assert_memory_equal(again, without.d, n);
	/* hints still read from the stripped answer */
	struct dns_addr a[8];
	size_t na;
	uint8_t rcode;
	enum dns_err why;
	assert_int_equal(dns_answer_addrs(cur_make(out, without.n), "svc.example", true, a, 8, &na,
	                                  &rcode, &why),
	                 PARSE_OK);
	assert_int_equal(na, 2);
	/* too small an output, a param running past its RDATA, a pointer into the cut: 0 */
	assert_int_equal(dns_strip_ech(with.d, with.n, out, 20, &changed), 0);
	size_t ech_at = 12 + 13 + 4 + 2 + 10 + 2 + 1 + 7 + 8; /* the ech param's key */
	assert_int_equal(with.d[ech_at + 1], 5);
	struct bld bad = {0};
	ech_answer(&bad, true);
	bad.d[ech_at + 2] = 0xff; /* ech value length */
	assert_int_equal(dns_strip_ech(bad.d, bad.n, out, sizeof out, &changed), 0);
	struct bld into = {0};
	ech_answer(&into, true);
	into.d[into.n - 16] = (uint8_t)(0xc0 | (ech_at + 4) >> 8); /* the A's owner */
	into.d[into.n - 15] = (uint8_t)((ech_at + 4) & 0xff);
	assert_int_equal(dns_strip_ech(into.d, into.n, out, sizeof out, &changed), 0);
	/* a truncated message */
	assert_int_equal(dns_strip_ech(with.d, with.n - 1, out, sizeof out, &changed), 0);
}

static void tcp_stream(void **state)
{
	(void)state;
	struct bld q = {0}, s = {0};
	query(&q, "a.example", DNS_TYPE_A);
	put16(&s, (unsigned)q.n);
	putb(&s, q.d, q.n);
	put16(&s, (unsigned)q.n);
	putb(&s, q.d, q.n);
	struct cur st = cur_make(s.d, s.n - 1), msg;
	assert_int_equal(dns_tcp_next(&st, &msg), PARSE_OK);
	assert_int_equal(msg.left, q.n);
	assert_ptr_equal(msg.p, s.d + 2);
	assert_int_equal(dns_tcp_next(&st, &msg), PARSE_MORE);
	assert_int_equal(st.left, q.n + 1); /* unchanged on MORE */
	st = cur_make(s.d, 1);
	assert_int_equal(dns_tcp_next(&st, &msg), PARSE_MORE);
	const uint8_t tiny[] = {0, 3, 1, 2, 3};
	st = cur_make(tiny, sizeof tiny);
	assert_int_equal(dns_tcp_next(&st, &msg), PARSE_BAD);
}

static void names(void **state)
{
	(void)state;
	for (int e = 0; e < DNS_ERR_COUNT_; e++)
		assert_string_not_equal(dns_err_name((enum dns_err)e), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(query_ok),
	    cmocka_unit_test(query_raw_escapes),
	    cmocka_unit_test(query_refused_names),
	    cmocka_unit_test(query_bad),
	    cmocka_unit_test(names_hostile),
	    cmocka_unit_test(reply),
	    cmocka_unit_test(answer_chain),
	    cmocka_unit_test(answer_truncated),
	    cmocka_unit_test(answer_cname_loop),
	    cmocka_unit_test(answer_https_hints),
	    cmocka_unit_test(strip_ech),
	    cmocka_unit_test(tcp_stream),
	    cmocka_unit_test(names),
	};
	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
