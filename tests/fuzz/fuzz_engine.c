/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine as a whole, driven by a byte script:
 *
 *   config(1)    bit 0 audit, bit 1 unknown_ip = verify, bit 2 quic inspect,
 *                bit 3 ech allow, bits 4-7 hold_segments / 2
 *   then records: op(1) len(2, big endian) data(len)
 *     op % 4 == 0  a packet (layer 3), handle = next; with bit 5 set instead a
 *                  client segment built here on one of 8 port-80 flows to an
 *                  address bound to www.example.com (plain HTTP, INSPECT once
 *                  its first request is allowed): data[0] bits 0-1 flow, bit 2
 *                  IPv6; data[1] TCP flags (0: ACK|PSH); data[2] signed offset
 *                  from the flow's next byte (retransmissions, holes); the
 *                  rest is the payload. A flow's first use sends its SYN.
 *     op % 4 == 1  engine_tick after len * 10 ms
 *     op % 4 == 2  a DNS query from a client; FORWARDed ones are answered with data
 *                  of the next record if that record's op % 4 == 2 too
 *     op % 4 == 3  engine_resolved(data as name) with 198.51.100.10 and 203.0.113.5
 *
 * Invariants checked (abort on violation): every handle gets exactly one
 * verdict by the end of its input (engine_reset); a verdict is a known value;
 * event counts >= 1.
 *
 * The policy, the bindings and the engine are built once per process; each
 * input gets the engine back in engine_new()'s state (engine_reset, then its
 * config through engine_set_policy) and empty bindings, with a fixed hash
 * seed, so an input always runs the same way (building a policy and a
 * ~0.6 MB engine per input held libFuzzer to ~2k execs/s).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HANDLES 4096

struct fz {
	uint8_t count[MAX_HANDLES];
	uint64_t next;
	bool http_open[8];
	uint32_t http_next[8]; /* next stream offset of each port-80 flow */
};

static void fz_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void fz_put32(uint8_t *p, uint32_t v)
{
	fz_put16(p, (uint16_t)(v >> 16));
	fz_put16(p + 2, (uint16_t)v);
}

/* A TCP segment of port-80 flow idx (0-3 IPv4, 4-7 IPv6) into out; its length. */
static size_t fz_http_pkt(uint8_t *out, unsigned idx, uint32_t seq, uint8_t flags,
                          const uint8_t *pl, size_t n)
{
	static const uint8_t c4[4] = {192, 0, 2, 1}, s4[4] = {198, 51, 100, 80};
	static const uint8_t c6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	static const uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 0x80};
	size_t ip;
	if (idx < 4) {
		memset(out, 0, 20);
		out[0] = 0x45;
		fz_put16(out + 2, (uint16_t)(40 + n));
		out[8] = 64;
		out[9] = 6;
		memcpy(out + 12, c4, 4);
		memcpy(out + 16, s4, 4);
		ip = 20;
	} else {
		memset(out, 0, 40);
		out[0] = 0x60;
		fz_put16(out + 4, (uint16_t)(20 + n));
		out[6] = 6;
		out[7] = 64;
		memcpy(out + 8, c6, 16);
		memcpy(out + 24, s6, 16);
		ip = 40;
	}
	uint8_t *t = out + ip;
	memset(t, 0, 20);
	fz_put16(t, (uint16_t)(41000 + idx));
	fz_put16(t + 2, 80);
	fz_put32(t + 4, seq);
	fz_put32(t + 8, flags & 0x10 ? 1 : 0);
	t[12] = 5 << 4;
	t[13] = flags;
	fz_put16(t + 14, 65535);
	if (n)
		memcpy(t + 20, pl, n);
	return ip + 20 + n;
}

#define FZ_ISN 7000u

static void fz_http(struct engine *e, struct fz *z, const uint8_t *d, size_t len, uint64_t now)
{
	static uint8_t pkt[40 + 20 + 65536];
	if (len < 3)
		return;
	unsigned idx = (d[0] & 3) | (d[0] & 4);
	if (!z->http_open[idx]) {
		z->http_open[idx] = true;
		z->http_next[idx] = 0;
		size_t n = fz_http_pkt(pkt, idx, FZ_ISN, 0x02, NULL, 0);
		engine_packet(e, z->next++, pkt, n, -1, now);
		if (z->next >= MAX_HANDLES)
			return;
	}
	uint8_t flags = d[1] ? d[1] : 0x18;
	uint32_t off = z->http_next[idx] + (uint32_t)(int32_t)(int8_t)d[2];
	size_t n = fz_http_pkt(pkt, idx, FZ_ISN + 1 + off, flags, d + 3, len - 3);
	engine_packet(e, z->next++, pkt, n, -1, now);
	uint32_t end = off + (uint32_t)(len - 3);
	if ((int32_t)(end - z->http_next[idx]) > 0)
		z->http_next[idx] = end;
}

static void fz_verdict(void *arg, uint64_t h, enum verdict v)
{
	struct fz *z = arg;
	if (h >= z->next || h >= MAX_HANDLES || v > VERDICT_INSPECT) {
		fprintf(stderr, "verdict for unknown handle %llu or bad value %d\n",
		        (unsigned long long)h, (int)v);
		abort();
	}
	if (++z->count[h] > 1) {
		fprintf(stderr, "handle %llu got a second verdict\n", (unsigned long long)h);
		abort();
	}
}

static void fz_event(void *arg, const struct flow_event *ev)
{
	(void)arg;
	if (ev->count < 1 || !ev->name || ev->ind.ncreds > IND_MAX_CREDS)
		abort();
	/* masked forms are short and terminated */
	for (size_t i = 0; i < ev->ind.ncreds; i++)
		if (strnlen(ev->ind.creds[i].masked, sizeof ev->ind.creds[i].masked) >= 24)
			abort();
}

static void fz_resolve(void *arg, const char *name)
{
	(void)arg;
	if (!name || !*name)
		abort();
}

static struct policy *fz_policy(void)
{
	static const uint16_t p443[] = {443}, p80[] = {80, 443}, p22[] = {22, 123};
	struct policy_builder *b = policy_builder_new();
	if (!b)
		return NULL;
	struct addr n4 = {.family = ADDR_V4, .b = {203, 0, 113, 0}};
	struct addr n6 = {.family = ADDR_V6, .b = {0x20, 0x01, 0x0d, 0xb8, 0, 1}};
	policy_builder_add_name(b, "api.example.com", false, p443, 1, "f", 1, "api.example.com");
	policy_builder_add_name(b, "www.example.com", false, p80, 2, "f", 2, "www.example.com");
	policy_builder_add_name(b, "cdn.example.com", true, p443, 1, "f", 3, "*.cdn.example.com");
	policy_builder_add_name(b, "ssh.example.com", false, p22, 2, "f", 4, "ssh.example.com");
	policy_builder_add_range(b, &n4, 24, p443, 1, "f", 5, "203.0.113.0/24");
	policy_builder_add_range(b, &n6, 48, p443, 1, "f", 6, "[2001:db8:1::/48]");
	return policy_builder_finish(b);
}

static struct fz fz_state;
static struct policy *fz_pol;

/* One policy, bindings and engine for the process (a fuzzer never frees them). */
static struct engine *fz_engine(struct bindings **bi_out)
{
	static struct bindings *bi;
	static struct engine *e;
	if (!e) {
		struct engine_config cfg;
		engine_config_defaults(&cfg);
		cfg.max_flows = 16;
		cfg.hash_seed = 0x5eed5eed5eed5eedull;
		struct engine_hooks hooks = {fz_verdict, fz_event, fz_resolve, &fz_state};
		fz_pol = fz_policy();
		bi = bind_new(64);
		e = fz_pol && bi ? engine_new(&cfg, fz_pol, bi, &hooks) : NULL;
		if (!e)
			abort();
	}
	*bi_out = bi;
	return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct bindings *bi;
	struct engine *e = fz_engine(&bi);
	struct fz *z = &fz_state;
	memset(z, 0, sizeof *z);
	struct engine_config cfg;
	engine_config_defaults(&cfg);
	cfg.enforce = !(data[0] & 1);
	cfg.unknown_ip = data[0] & 2 ? UNKNOWN_IP_VERIFY : UNKNOWN_IP_DENY;
	cfg.quic_inspect = data[0] & 4;
	cfg.ech = data[0] & 8 ? ECH_ALLOW : ECH_OUTER;
	cfg.hold_segments = (unsigned)(data[0] >> 4) * 2 + 1;
	cfg.max_flows = 16;
	cfg.hold_bytes_total = 64 * 1024;
	cfg.hash_seed = 0x5eed5eed5eed5eedull;
	engine_set_policy(e, fz_pol, &cfg);
	struct addr b1 = {.family = ADDR_V4, .b = {198, 51, 100, 10}};
	bind_add(bi, "api.example.com", &b1, 30000000000ull, 0);
	bind_add(bi, "ssh.example.com", &b1, 30000000000ull, 0);
	struct addr w4 = {.family = ADDR_V4, .b = {198, 51, 100, 80}};
	struct addr w6 = {.family = ADDR_V6, .b = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 0x80}};
	bind_add(bi, "www.example.com", &w4, 30000000000ull, 0);
	bind_add(bi, "www.example.com", &w6, 30000000000ull, 0);

	uint64_t now = 1000000000ull;
	size_t off = 1;
	while (off + 3 <= size && z->next < MAX_HANDLES) {
		uint8_t op = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		const uint8_t *d = data + off;
		off += len;
		now += 1000000; /* 1 ms per record */
		switch (op % 4) {
		case 0:
			if (op & 0x20) {
				fz_http(e, z, d, len, now);
				break;
			}
			/* bit 6: the kernel computed the checksum (the engine checks it);
			 * bit 4: queued as QUEUED_ACKED (the handshake ACK passed in the
			 * kernel, issue 10) */
			engine_packet_flags(e, z->next++, d, len, op & 0x80 ? 1000 : -1,
			                    (op & 0x40 ? ENGINE_PKT_CSUM_VALID : 0) |
			                        (op & 0x10 ? ENGINE_PKT_ACKED : 0),
			                    now);
			break;
		case 1:
			now += (uint64_t)len * 10000000ull;
			engine_tick(e, now);
			break;
		case 2: {
			struct dns_query q;
			struct addr cl = {.family = ADDR_V4, .b = {192, 0, 2, 1}};
			enum dns_action a = engine_dns_query(e, d, len, &cl, 5353, &q, now);
			if (a > DNS_DROP)
				abort();
			if (a == DNS_FORWARD && off + 3 <= size && data[off] % 4 == 2) {
				size_t alen = (size_t)data[off + 1] << 8 | data[off + 2];
				if (alen > size - off - 3)
					alen = size - off - 3;
				engine_dns_answer(e, &q, data + off + 3, alen, &cl, now);
				off += 3 + alen;
			}
			break;
		}
		default: {
			char name[256];
			size_t n = len < 255 ? len : 255;
			memcpy(name, d, n);
			name[n] = '\0';
			struct dns_addr addrs[2] = {
			    {{.family = ADDR_V4, .b = {198, 51, 100, 10}}, 30},
			    {{.family = ADDR_V4, .b = {203, 0, 113, 5}}, 30},
			};
			engine_resolved(e, name, addrs, op & 0x80 ? 0 : 2, now);
			break;
		}
		}
		struct engine_stats st;
		engine_stats(e, &st);
		if (st.flows_tracked > cfg.max_flows)
			abort();
	}
	/* Back to a fresh engine; held packets get their verdict (DENY) now. */
	if (engine_reset(e) != 0)
		abort();
	for (uint64_t i = 0; i < z->next; i++) {
		if (z->count[i] != 1) {
			fprintf(stderr, "handle %llu got %u verdicts\n", (unsigned long long)i,
			        z->count[i]);
			abort();
		}
	}
	/* each input has its own time line, starting at 1 s: rewind the expiry
	 * wheel's cursor first (bind_expire assumes time never goes back) */
	bind_expire(bi, 0);
	bind_expire(bi, UINT64_MAX);
	if (bind_count(bi) != 0)
		abort();
	return 0;
}
