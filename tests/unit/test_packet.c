/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Packet headers: IPv4/IPv6 (extension chain), TCP, UDP, ICMP, hostile lengths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "packet.h"

#define BLD_CAP 2048
#include "bld.h"
static void set16(struct bld *b, size_t at, unsigned v)
{
	b->d[at] = (uint8_t)(v >> 8);
	b->d[at + 1] = (uint8_t)v;
}

static const uint8_t src4[] = {192, 0, 2, 10}, dst4[] = {203, 0, 113, 5};
static const uint8_t src6[] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a};
static const uint8_t dst6[] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05};

/* IPv4 header with ihl words (options zero-filled); total length patched by fin4. */
static void ip4(struct bld *b, unsigned ihl, uint8_t proto, unsigned frag)
{
	put8(b, 0x40 | ihl);
	put8(b, 0);
	put16(b, 0);
	put16(b, 0x1234);
	put16(b, frag);
	put8(b, 64);
	put8(b, proto);
	put16(b, 0);
	putb(b, src4, 4);
	putb(b, dst4, 4);
	for (unsigned i = 5; i < ihl; i++)
		put32(b, 0x01010101); /* NOP options */
}
static void fin4(struct bld *b)
{
	set16(b, 2, (unsigned)b->n);
}

static void ip6(struct bld *b, uint8_t next)
{
	put32(b, 0x60000000);
	put16(b, 0);
	put8(b, next);
	put8(b, 64);
	putb(b, src6, 16);
	putb(b, dst6, 16);
}
static void fin6(struct bld *b)
{
	set16(b, 4, (unsigned)(b->n - 40));
}

static void tcp(struct bld *b, unsigned doff, uint8_t flags, const char *payload)
{
	put16(b, 40000);
	put16(b, 443);
	put32(b, 0xdeadbeef);
	put32(b, 0);
	put8(b, (uint8_t)(doff << 4));
	put8(b, flags);
	put16(b, 65535);
	put16(b, 0);
	put16(b, 0);
	for (unsigned i = 5; i < doff; i++)
		put32(b, 0x01010101);
	putb(b, payload, strlen(payload));
}

static void udp(struct bld *b, const char *payload)
{
	put16(b, 5353);
	put16(b, 53);
	put16(b, (unsigned)(8 + strlen(payload)));
	put16(b, 0);
	putb(b, payload, strlen(payload));
}

static void parse_ok(const struct bld *b, struct pkt *p)
{
	enum pkt_err why = PKT_ERR_COUNT_;
	enum parse r = pkt_parse(b->d, b->n, p, &why);
	if (r != PARSE_OK)
		fail_msg("got %s", pkt_err_name(why));
	assert_int_equal(why, PKT_OK);
}

static void parse_bad(const uint8_t *d, size_t n, enum pkt_err want)
{
	struct pkt p;
	enum pkt_err why = PKT_OK;
	assert_int_equal(pkt_parse(d, n, &p, &why), PARSE_BAD);
	if (why != want)
		fail_msg("got %s, want %s", pkt_err_name(why), pkt_err_name(want));
}

static void v4_tcp(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip4(&b, 6, IPPROTO_TCP, 0x4000 /* DF */);
	tcp(&b, 8, PKT_TCP_PSH | PKT_TCP_ACK, "hello");
	fin4(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.src.family, ADDR_V4);
	assert_memory_equal(p.src.b, src4, 4);
	assert_memory_equal(p.dst.b, dst4, 4);
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 443);
	assert_int_equal(p.seq, 0xdeadbeef);
	assert_int_equal(p.tcp_flags, PKT_TCP_PSH | PKT_TCP_ACK);
	assert_int_equal(p.payload_len, 5);
	assert_memory_equal(p.payload, "hello", 5);
	assert_ptr_equal(p.payload, b.d + 24 + 32); /* borrowed, not copied */

	/* captured bytes past total length are not payload */
	struct bld pad = b;
	put8(&pad, 0);
	pad.n = b.n + 6;
	parse_ok(&pad, &p);
	assert_int_equal(p.payload_len, 5);
}

static void v4_bad(void **state)
{
	(void)state;
	struct bld b = {0};
	ip4(&b, 5, IPPROTO_TCP, 0);
	tcp(&b, 5, PKT_TCP_SYN, "");
	fin4(&b);

	parse_bad(b.d, 0, PKT_TRUNCATED);
	parse_bad(b.d, 19, PKT_TRUNCATED);
	struct bld t = b;
	t.d[0] = 0x44; /* ihl 4 */
	parse_bad(t.d, t.n, PKT_BAD_IHL);
	t = b;
	t.d[0] = 0x4f; /* ihl 15 = 60 bytes > 40 captured */
	parse_bad(t.d, t.n, PKT_BAD_IHL);
	t = b;
	t.d[0] = 0x4f;
	parse_bad(t.d, 24, PKT_BAD_IHL);
	t = b;
	set16(&t, 2, 19); /* total < ihl */
	parse_bad(t.d, t.n, PKT_BAD_LENGTH);
	t = b;
	set16(&t, 2, (unsigned)b.n + 1); /* total > captured */
	parse_bad(t.d, t.n, PKT_TRUNCATED);
	t = b;
	t.d[0] = 0x55;
	parse_bad(t.d, t.n, PKT_BAD_VERSION);
	t = b;
	set16(&t, 6, 0x2000); /* MF: first fragment */
	parse_bad(t.d, t.n, PKT_FRAGMENT);
	t = b;
	set16(&t, 6, 0x0010); /* offset != 0 */
	parse_bad(t.d, t.n, PKT_FRAGMENT);
	t = b;
	t.d[32] = 0x40; /* doff 4 */
	parse_bad(t.d, t.n, PKT_BAD_TCP_DOFF);
	t = b;
	t.d[32] = 0x60; /* doff 6: past the segment */
	parse_bad(t.d, t.n, PKT_BAD_TCP_DOFF);
	t = b;
	set16(&t, 2, 30); /* TCP header cut by total length */
	parse_bad(t.d, t.n, PKT_TRUNCATED);
}

static void v4_udp(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip4(&b, 5, IPPROTO_UDP, 0);
	udp(&b, "query");
	fin4(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.sport, 5353);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.payload_len, 5);

	struct bld t = b;
	set16(&t, 24, 7);
	parse_bad(t.d, t.n, PKT_BAD_UDP_LENGTH);
	t = b;
	set16(&t, 24, 14); /* longer than the datagram */
	parse_bad(t.d, t.n, PKT_BAD_UDP_LENGTH);
	t = b;
	set16(&t, 24, 10); /* shorter: only 2 bytes of payload count */
	parse_ok(&t, &p);
	assert_int_equal(p.payload_len, 2);
	parse_bad(b.d, 27, PKT_TRUNCATED); /* total length says more than captured */
}

static void v4_icmp(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip4(&b, 5, IPPROTO_ICMP, 0);
	put8(&b, 3); /* dest unreachable */
	put8(&b, 4); /* frag needed */
	put16(&b, 0);
	put32(&b, 1400);
	putb(&b, "inner", 5);
	fin4(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.proto, IPPROTO_ICMP);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 4);
	assert_int_equal(p.payload_len, 5);
	struct bld t = {0};
	ip4(&t, 5, IPPROTO_ICMP, 0);
	put8(&t, 8);
	put8(&t, 0);
	fin4(&t);
	parse_bad(t.d, t.n, PKT_TRUNCATED);
}

static void v6_tcp_with_ext_chain(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip6(&b, 0);
	/* hop-by-hop: next=60, len 0 (8 bytes), PadN */
	put8(&b, 60);
	put8(&b, 0);
	put8(&b, 1);
	put8(&b, 4);
	put32(&b, 0);
	/* dest opts: next=44, len 1 (16 bytes) */
	put8(&b, 44);
	put8(&b, 1);
	put8(&b, 1);
	put8(&b, 12);
	for (int i = 0; i < 12; i++)
		put8(&b, 0);
	/* atomic fragment: offset 0, M clear -> fine */
	put8(&b, 51);
	put8(&b, 0);
	put16(&b, 0);
	put32(&b, 0x11223344);
	/* AH: next=6, len 4 -> (4+2)*4 = 24 bytes */
	put8(&b, IPPROTO_TCP);
	put8(&b, 4);
	put16(&b, 0);
	for (int i = 0; i < 20; i++)
		put8(&b, 0);
	tcp(&b, 5, PKT_TCP_SYN, "x");
	fin6(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.src.family, ADDR_V6);
	assert_memory_equal(p.src.b, src6, 16);
	assert_memory_equal(p.dst.b, dst6, 16);
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.dport, 443);
	assert_int_equal(p.payload_len, 1);

	/* fragment header with M set, or with an offset */
	struct bld t = b;
	set16(&t, 40 + 8 + 16 + 2, 0x0001);
	parse_bad(t.d, t.n, PKT_FRAGMENT);
	t = b;
	set16(&t, 40 + 8 + 16 + 2, 0x0008);
	parse_bad(t.d, t.n, PKT_FRAGMENT);
	/* dest opts length running past the payload */
	t = b;
	t.d[40 + 8 + 1] = 200;
	parse_bad(t.d, t.n, PKT_BAD_EXT_CHAIN);
	/* payload length past captured, and zero */
	t = b;
	set16(&t, 4, (unsigned)(b.n - 40 + 1));
	parse_bad(t.d, t.n, PKT_TRUNCATED);
	t = b;
	set16(&t, 4, 0);
	parse_bad(t.d, t.n, PKT_BAD_LENGTH);
	parse_bad(b.d, 39, PKT_TRUNCATED);
	/* hop-by-hop not first */
	t = b;
	t.d[40] = 0; /* hbh says next is hbh again */
	parse_bad(t.d, t.n, PKT_BAD_EXT_CHAIN);
}

static void v6_chain_too_long(void **state)
{
	(void)state;
	struct bld b = {0};
	ip6(&b, 60);
	for (int i = 0; i < 9; i++) {
		put8(&b, i == 8 ? IPPROTO_UDP : 60);
		put8(&b, 0);
		put16(&b, 0x0104);
		put32(&b, 0);
	}
	udp(&b, "");
	fin6(&b);
	parse_bad(b.d, b.n, PKT_BAD_EXT_CHAIN);
	/* 8 headers are still fine */
	struct bld ok8 = {0};
	struct pkt p;
	ip6(&ok8, 60);
	for (int i = 0; i < 8; i++) {
		put8(&ok8, i == 7 ? IPPROTO_UDP : 60);
		put8(&ok8, 0);
		put16(&ok8, 0x0104);
		put32(&ok8, 0);
	}
	udp(&ok8, "");
	fin6(&ok8);
	parse_ok(&ok8, &p);
	assert_int_equal(p.proto, IPPROTO_UDP);
	/* chain cut in the middle of a header */
	parse_bad(b.d, 44, PKT_TRUNCATED);
	struct bld cut = {0};
	ip6(&cut, 60);
	put8(&cut, 6);
	fin6(&cut);
	parse_bad(cut.d, cut.n, PKT_BAD_EXT_CHAIN);
}

static void v6_icmp(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip6(&b, IPPROTO_ICMPV6);
	put8(&b, 135); /* neighbour solicitation */
	put8(&b, 0);
	put16(&b, 0);
	put32(&b, 0);
	putb(&b, dst6, 16);
	fin6(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.proto, IPPROTO_ICMPV6);
	assert_int_equal(p.icmp_type, 135);
	assert_int_equal(p.payload_len, 16);
}

static void other_proto(void **state)
{
	(void)state;
	struct bld b = {0};
	struct pkt p;
	ip4(&b, 5, 47 /* GRE */, 0);
	put32(&b, 0x00000800);
	fin4(&b);
	parse_ok(&b, &p);
	assert_int_equal(p.proto, 47);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.payload_len, 4);
}

/* ---- pkt_plain_headers: what a bare packet of an undecided flow may carry ---- */

/* A TCP packet without payload: IPv4 (ihl words, frag field) or IPv6 with a
 * destination options header when v6ext; TCP flags, the options given (padded
 * with EOL to words), reserved nibble rsv, urgent pointer urp. */
static enum pkt_err plain(bool v6, unsigned ihl, unsigned frag, bool v6ext, uint8_t flags,
                          const uint8_t *opt, size_t optlen, unsigned rsv, unsigned urp)
{
	struct bld b = {.n = 0};
	if (v6) {
		ip6(&b, v6ext ? 60 : 6);
		if (v6ext) {
			put8(&b, 6);
			put8(&b, 0);
			put8(&b, 1); /* PadN */
			put8(&b, 4);
			put32(&b, 0);
		}
	} else {
		ip4(&b, ihl, 6, frag);
	}
	size_t words = (optlen + 3) / 4;
	put16(&b, 40000);
	put16(&b, 443);
	put32(&b, 1000);
	put32(&b, flags & 0x10 ? 1 : 0);
	put8(&b, (uint8_t)((5 + words) << 4 | rsv));
	put8(&b, flags);
	put16(&b, 65535);
	put16(&b, 0);
	put16(&b, urp);
	putb(&b, opt, optlen);
	for (size_t i = optlen; i < words * 4; i++)
		put8(&b, 0);
	if (v6)
		fin6(&b);
	else
		fin4(&b);
	struct pkt p;
	parse_ok(&b, &p);
	assert_int_equal(p.payload_len, 0);
	assert_int_equal(p.tcp_opt_len, words * 4);
	return pkt_plain_headers(&p);
}

#define SYN_ 0x02
#define ACK_ 0x10
#define OPT(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void plain_stacks_pass(void **state)
{
	(void)state;
	/* Linux SYN: MSS, SACK-permitted, timestamps (TSecr 0), NOP, window scale 7 */
	assert_int_equal(plain(false, 5, 0x4000, false, SYN_,
	                       OPT(2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7),
	                       0, 0),
	                 PKT_OK);
	/* Windows SYN: MSS, NOP, WS 8, NOP, NOP, SACK-permitted; AccECN's AE bit */
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2),
	                       1, 0),
	                 PKT_OK);
	/* macOS SYN ends in EOL EOL; a Fast Open cookie request */
	assert_int_equal(plain(true, 0, 0, false, SYN_,
	                       OPT(2, 4, 5, 0xa0, 1, 3, 3, 6, 34, 2, 4, 2, 0, 0), 0, 0),
	                 PKT_OK);
	/* bare ACKs: NOP NOP timestamps; and two SACK blocks */
	assert_int_equal(plain(false, 5, 0x4000, false, ACK_,
	                       OPT(1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7), 0, 0),
	                 PKT_OK);
	assert_int_equal(plain(false, 5, 0, false, ACK_,
	                       OPT(1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4), 0,
	                       0),
	                 PKT_OK);
	assert_int_equal(plain(false, 5, 0, false, ACK_, NULL, 0, 0, 0), PKT_OK);
}

static void covert_headers_refused(void **state)
{
	(void)state;
	/* IP layer */
	assert_int_equal(plain(false, 6, 0, false, SYN_, NULL, 0, 0, 0), PKT_IP_OPTIONS);
	assert_int_equal(plain(true, 0, 0, true, SYN_, NULL, 0, 0, 0), PKT_IP_EXT_HEADERS);
	assert_int_equal(plain(false, 5, 0x8000, false, SYN_, NULL, 0, 0, 0),
	                 PKT_IP_RESERVED_FLAG);
	/* TCP header */
	assert_int_equal(plain(false, 5, 0, false, ACK_, NULL, 0, 0x2, 0), PKT_TCP_RESERVED_BITS);
	assert_int_equal(plain(false, 5, 0, false, ACK_, NULL, 0, 0, 77), PKT_TCP_URGENT_POINTER);
	/* unknown kinds: experimental 253/254, MPTCP 30, MD5 19, user timeout 28 */
	static const uint8_t kinds[] = {253, 254, 30, 19, 28, 29, 6, 7, 9};
	for (size_t i = 0; i < sizeof kinds; i++)
		assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(kinds[i], 6, 'E', 'X', 'F', 'L'),
		                       0, 0),
		                 PKT_TCP_OPTION);
	/* a Fast Open cookie without payload; SYN-only options on an ACK; SACK on a SYN */
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(34, 10, 1, 2, 3, 4, 5, 6, 7, 8), 0, 0),
	                 PKT_TCP_OPTION);
	assert_int_equal(plain(false, 5, 0, false, ACK_, OPT(2, 4, 5, 0xb4), 0, 0), PKT_TCP_OPTION);
	assert_int_equal(plain(false, 5, 0, false, ACK_, OPT(1, 3, 3, 7), 0, 0), PKT_TCP_OPTION);
	assert_int_equal(plain(false, 5, 0, false, ACK_, OPT(4, 2), 0, 0), PKT_TCP_OPTION);
	assert_int_equal(plain(false, 5, 0, false, SYN_,
	                       OPT(1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2), 0, 0),
	                 PKT_TCP_OPTION);
	/* malformed: bytes after EOL, a repeated kind, bad lengths, shift > 14, TSecr on a SYN */
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(2, 4, 5, 0xb4, 0, 'E', 'X'), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(2, 4, 5, 0xb4, 2, 4, 1, 1), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(2, 5, 5, 0xb4, 1), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(2, 1), 0, 0), PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(8, 40), 0, 0), PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_, OPT(1, 3, 3, 15), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, SYN_,
	                       OPT(8, 10, 0, 0, 0, 1, 'E', 'X', 'F', 'L'), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, ACK_,
	                       OPT(5, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0), 0, 0),
	                 PKT_TCP_OPTION_BAD);
	assert_int_equal(plain(false, 5, 0, false, ACK_, OPT(34, 2), 0, 0), PKT_TCP_OPTION);
	/* names for the log */
	assert_string_equal(pkt_err_name(PKT_IP_OPTIONS), "ip_options");
	assert_string_equal(pkt_err_name(PKT_TCP_OPTION), "tcp_option");
}

static void names(void **state)
{
	(void)state;
	for (int e = 0; e < PKT_ERR_COUNT_; e++)
		assert_string_not_equal(pkt_err_name((enum pkt_err)e), "unknown");
	assert_string_equal(pkt_err_name(PKT_FRAGMENT), "fragment");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(v4_tcp),
	    cmocka_unit_test(v4_bad),
	    cmocka_unit_test(v4_udp),
	    cmocka_unit_test(v4_icmp),
	    cmocka_unit_test(v6_tcp_with_ext_chain),
	    cmocka_unit_test(v6_chain_too_long),
	    cmocka_unit_test(v6_icmp),
	    cmocka_unit_test(other_proto),
	    cmocka_unit_test(names),
	    cmocka_unit_test(plain_stacks_pass),
	    cmocka_unit_test(covert_headers_refused),
	};
	return cmocka_run_group_tests_name("packet", tests, NULL, NULL);
}
