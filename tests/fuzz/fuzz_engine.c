/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine as a whole, driven by a byte script:
 *
 *   config(1)    bit 0 audit, bit 1 unknown_ip = verify, bit 2 quic inspect,
 *                bit 3 ech allow, bits 4-7 hold_segments / 2
 *   then records: op(1) len(2, big endian) data(len)
 *     op % 4 == 0  a packet (layer 3), handle = next
 *     op % 4 == 1  engine_tick after len * 10 ms; bit 7: then a reload to a smaller
 *                  policy (api.example.com only) and its revoke pass over the engine's
 *                  records (bit 6: conntrack's list read, empty)
 *     op % 4 == 2  a DNS query from a client; FORWARDed ones are answered with data
 *                  of the next record if that record's op % 4 == 2 too
 *     op % 4 == 3  engine_resolved(data as name) with 198.51.100.10 and 203.0.113.5
 *
 * Invariants checked (abort on violation): every handle gets exactly one
 * verdict by engine_free; a verdict is a known value; event counts >= 1.
 */
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
};

static void fz_verdict(void *arg, uint64_t h, enum verdict v)
{
	struct fz *z = arg;
	if (h >= z->next || h >= MAX_HANDLES || v > VERDICT_DROP) {
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

static void fz_cut(void *arg, const struct engine_conn *c)
{
	(void)arg;
	if (c->proto != 6 && c->proto != 17)
		abort(); /* only TCP and UDP flows are allowed, so only they are cut */
}

static struct policy *fz_policy_small(void)
{
	static const uint16_t p443[] = {443};
	struct policy_builder *b = policy_builder_new();
	if (!b)
		return NULL;
	policy_builder_add_name(b, "api.example.com", false, p443, 1, "g", 1, "api.example.com");
	return policy_builder_finish(b);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct fz *z = calloc(1, sizeof *z);
	struct policy *p = fz_policy();
	struct bindings *bi = bind_new(64);
	if (!z || !p || !bi)
		abort();
	struct engine_config cfg;
	engine_config_defaults(&cfg);
	cfg.enforce = !(data[0] & 1);
	cfg.unknown_ip = data[0] & 2 ? UNKNOWN_IP_VERIFY : UNKNOWN_IP_DENY;
	cfg.quic_inspect = data[0] & 4;
	cfg.ech = data[0] & 8 ? ECH_ALLOW : ECH_OUTER;
	cfg.hold_segments = (unsigned)(data[0] >> 4) * 2 + 1;
	cfg.max_flows = 16;
	cfg.hold_bytes_total = 64 * 1024;
	struct engine_hooks hooks = {fz_verdict, fz_event, fz_resolve, z};
	struct engine *e = engine_new(&cfg, p, bi, &hooks);
	if (!e)
		abort();
	struct addr b1 = {.family = ADDR_V4, .b = {198, 51, 100, 10}};
	bind_add(bi, "api.example.com", &b1, 30000000000ull, 0);
	bind_add(bi, "ssh.example.com", &b1, 30000000000ull, 0);

	struct policy *p2 = NULL; /* after a reload (op 1, bit 7) */
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
			/* bit 6: the kernel computed the checksum (the engine checks it) */
			engine_packet_flags(e, z->next++, d, len, op & 0x80 ? 1000 : -1,
			                    op & 0x40 ? ENGINE_PKT_CSUM_VALID : 0, now);
			break;
		case 1:
			now += (uint64_t)len * 10000000ull;
			engine_tick(e, now);
			if (op & 0x80) {
				if (!p2) {
					p2 = fz_policy_small();
					if (!p2)
						abort();
					engine_set_policy(e, p2, &cfg);
				}
				(void)engine_revoke(e, NULL, 0, op & 0x40, fz_cut, z, now);
			}
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
	engine_free(e);
	for (uint64_t i = 0; i < z->next; i++) {
		if (z->count[i] != 1) {
			fprintf(stderr, "handle %llu got %u verdicts\n", (unsigned long long)i,
			        z->count[i]);
			abort();
		}
	}
	bind_free(bi);
	policy_free(p);
	policy_free(p2);
	free(z);
	return 0;
}
