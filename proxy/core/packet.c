/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "packet.h"

#include <netinet/in.h>
#include <string.h>

const char *pkt_err_name(enum pkt_err e)
{
	static const char *const names[PKT_ERR_COUNT_] = {
	    [PKT_OK] = "ok",
	    [PKT_TRUNCATED] = "truncated",
	    [PKT_BAD_VERSION] = "bad_version",
	    [PKT_BAD_IHL] = "bad_ihl",
	    [PKT_BAD_LENGTH] = "bad_length",
	    [PKT_BAD_TCP_DOFF] = "bad_tcp_doff",
	    [PKT_BAD_EXT_CHAIN] = "bad_ext_chain",
	    [PKT_FRAGMENT] = "fragment",
	    [PKT_BAD_UDP_LENGTH] = "bad_udp_length",
	    [PKT_IP_OPTIONS] = "ip_options",
	    [PKT_IP_EXT_HEADERS] = "ipv6_ext_headers",
	    [PKT_IP_RESERVED_FLAG] = "ip_reserved_flag",
	    [PKT_TCP_RESERVED_BITS] = "tcp_reserved_bits",
	    [PKT_TCP_URGENT_POINTER] = "tcp_urgent_pointer",
	    [PKT_TCP_OPTION] = "tcp_option",
	    [PKT_TCP_OPTION_BAD] = "tcp_option_malformed",
	};
	if ((unsigned)e >= PKT_ERR_COUNT_)
		return "unknown";
	return names[e];
}

#define PKT_V6_EXT_MAX 8

/*
 * IPv4 (RFC 791 3.1):
 * ver|ihl(1) tos(1) total_len(2) id(2) flags|frag_off(2) ttl(1) proto(1)
 * csum(2) src(4) dst(4) options(ihl*4-20)
 * A fragment (MF set or offset != 0) is refused: conntrack reassembles
 * before our hooks, so one we still see is odd and denied.
 */
static enum pkt_err pkt_ipv4(struct cur *c, struct pkt *out, struct cur *l4)
{
	struct cur save = *c;
	uint8_t vihl, tos, ttl, proto;
	uint16_t total, id, frag, csum;

	if (c->left < 20)
		return PKT_TRUNCATED;
	cur_u8(c, &vihl);
	size_t ihl = (size_t)(vihl & 0x0f) * 4;
	if (ihl < 20 || ihl > save.left)
		return PKT_BAD_IHL;
	cur_u8(c, &tos);
	cur_u16(c, &total);
	cur_u16(c, &id);
	cur_u16(c, &frag);
	cur_u8(c, &ttl);
	cur_u8(c, &proto);
	cur_u16(c, &csum);
	out->src.family = ADDR_V4;
	out->dst.family = ADDR_V4;
	cur_copy(c, out->src.b, 4);
	cur_copy(c, out->dst.b, 4);
	out->proto = proto;
	if (total < ihl)
		return PKT_BAD_LENGTH;
	if (total > save.left)
		return PKT_TRUNCATED;
	if ((frag & 0x2000) || (frag & 0x1fff))
		return PKT_FRAGMENT;
	out->ip_opt_len = (uint16_t)(ihl - 20);
	out->ip_rsv_flag = (frag & 0x8000) != 0;
	/* The datagram is exactly total bytes; anything captured beyond is not ours. */
	struct cur dgram;
	cur_sub(&save, total, &dgram);
	cur_skip(&dgram, ihl);
	*l4 = dgram;
	return PKT_OK;
}

/*
 * IPv6 (RFC 8200 3, 4):
 * ver|tc|flow(4) payload_len(2) next(1) hop(1) src(16) dst(16)
 * then extension headers: hop-by-hop(0), routing(43), dest opts(60):
 *   next(1) len(1) in 8-octet units beyond the first 8
 * fragment(44): next(1) res(1) offset|res|M(2) id(4)
 * AH(51): next(1) len(1) in 4-octet units minus 2
 * Walked with bounds, at most PKT_V6_EXT_MAX of them.
 */
static enum pkt_err pkt_ipv6(struct cur *c, struct pkt *out, struct cur *l4)
{
	uint32_t vtf;
	uint16_t plen;
	uint8_t next, hop;

	if (c->left < 40)
		return PKT_TRUNCATED;
	cur_u32(c, &vtf);
	cur_u16(c, &plen);
	cur_u8(c, &next);
	cur_u8(c, &hop);
	out->src.family = ADDR_V6;
	out->dst.family = ADDR_V6;
	cur_copy(c, out->src.b, 16);
	cur_copy(c, out->dst.b, 16);
	if (plen == 0) /* jumbogram or nonsense: neither is queued to us */
		return PKT_BAD_LENGTH;
	struct cur pl;
	if (!cur_sub(c, plen, &pl))
		return PKT_TRUNCATED;

	for (unsigned n = 0;; n++) {
		struct cur save = pl, hdr;
		uint8_t nh, hlen;
		uint16_t frag;
		size_t len;

		switch (next) {
		case 0:  /* hop-by-hop */
		case 43: /* routing */
		case 60: /* destination options */
		case 44: /* fragment */
		case 51: /* AH */
			break;
		default:
			out->proto = next;
			*l4 = pl;
			out->ip_opt_len = (uint16_t)(plen - pl.left);
			return PKT_OK;
		}
		if (n >= PKT_V6_EXT_MAX)
			return PKT_BAD_EXT_CHAIN;
		if (!cur_u8(&pl, &nh) || !cur_u8(&pl, &hlen))
			return PKT_BAD_EXT_CHAIN;
		if (next == 44) {
			len = 8;
		} else if (next == 51) {
			len = ((size_t)hlen + 2) * 4;
		} else {
			len = ((size_t)hlen + 1) * 8;
		}
		pl = save;
		if (!cur_sub(&pl, len, &hdr))
			return PKT_BAD_EXT_CHAIN;
		if (next == 44) {
			cur_skip(&hdr, 2);
			cur_u16(&hdr, &frag);
			if ((frag & 0xfff8) || (frag & 0x0001))
				return PKT_FRAGMENT;
		}
		if (next == 0 && n != 0) /* hop-by-hop only first (RFC 8200 4.3) */
			return PKT_BAD_EXT_CHAIN;
		next = nh;
	}
}

/*
 * TCP (RFC 9293 3.1): sport(2) dport(2) seq(4) ack(4) doff|rsv(1) flags(1)
 * win(2) csum(2) urg(2) options(doff*4-20)
 */
static enum pkt_err pkt_tcp(struct cur seg, struct pkt *out)
{
	struct cur save = seg;
	uint32_t ack;
	uint8_t doff;

	if (seg.left < 20)
		return PKT_TRUNCATED;
	cur_u16(&seg, &out->sport);
	cur_u16(&seg, &out->dport);
	cur_u32(&seg, &out->seq);
	cur_u32(&seg, &ack);
	cur_u8(&seg, &doff);
	cur_u8(&seg, &out->tcp_flags);
	size_t hl = (size_t)(doff >> 4) * 4;
	if (hl < 20 || hl > save.left)
		return PKT_BAD_TCP_DOFF;
	out->l4 = save.p;
	out->l4_len = save.left;
	cur_skip(&save, hl);
	out->payload = save.p;
	out->payload_len = save.left;
	out->tcp_rsv = doff & 0x0e;
	cur_skip(&seg, 4); /* window, checksum */
	cur_u16(&seg, &out->tcp_urp);
	out->tcp_opt = seg.p;
	out->tcp_opt_len = hl - 20;
	return PKT_OK;
}

/*
 * TCP options (RFC 9293 3.2): kind(1), or kind(1) len(1) data(len-2) for
 * kinds other than EOL (0) and NOP (1). MSS(2) len 4, window scale(3)
 * len 3 (RFC 7323), SACK-permitted(4) len 2, SACK(5) len 2+8n (RFC 2018),
 * timestamps(8) len 10: TSval(4) TSecr(4), Fast Open(34) len 2 (a cookie
 * request) .. 18 (RFC 7413).
 */
enum pkt_err pkt_plain_headers(const struct pkt *p)
{
	if (p->ip_opt_len)
		return p->src.family == ADDR_V4 ? PKT_IP_OPTIONS : PKT_IP_EXT_HEADERS;
	if (p->ip_rsv_flag)
		return PKT_IP_RESERVED_FLAG;
	if (p->proto != IPPROTO_TCP)
		return PKT_OK;
	if (p->tcp_rsv)
		return PKT_TCP_RESERVED_BITS;
	if (p->tcp_urp && !(p->tcp_flags & PKT_TCP_URG))
		return PKT_TCP_URGENT_POINTER;
	bool syn = p->tcp_flags & PKT_TCP_SYN, syn_only = syn && !(p->tcp_flags & PKT_TCP_ACK);
	uint32_t seen = 0; /* kinds met (all plain kinds are < 32 but Fast Open) */
	bool seen_tfo = false;
	struct cur c = cur_make(p->tcp_opt, p->tcp_opt_len);
	uint8_t kind, len;
	while (cur_u8(&c, &kind)) {
		if (kind == 0) { /* EOL: the rest is padding */
			uint8_t z;
			while (cur_u8(&c, &z))
				if (z)
					return PKT_TCP_OPTION_BAD;
			break;
		}
		if (kind == 1)
			continue;
		struct cur body;
		if (!cur_u8(&c, &len) || len < 2 || !cur_sub(&c, (size_t)len - 2, &body))
			return PKT_TCP_OPTION_BAD;
		if (kind == 34) {
			if (seen_tfo)
				return PKT_TCP_OPTION_BAD;
			seen_tfo = true;
		} else if (kind < 32) {
			if (seen & (1u << kind))
				return PKT_TCP_OPTION_BAD;
			seen |= 1u << kind;
		}
		uint8_t shift;
		uint32_t tsval, tsecr;
		switch (kind) {
		case 2: /* MSS */
			if (!syn)
				return PKT_TCP_OPTION;
			if (len != 4)
				return PKT_TCP_OPTION_BAD;
			break;
		case 3: /* window scale */
			if (!syn)
				return PKT_TCP_OPTION;
			if (len != 3 || !cur_u8(&body, &shift) || shift > 14)
				return PKT_TCP_OPTION_BAD;
			break;
		case 4: /* SACK permitted */
			if (!syn)
				return PKT_TCP_OPTION;
			if (len != 2)
				return PKT_TCP_OPTION_BAD;
			break;
		case 5: /* SACK blocks */
			if (syn)
				return PKT_TCP_OPTION;
			if (len < 10 || (len - 2) % 8 || len > 34)
				return PKT_TCP_OPTION_BAD;
			break;
		case 8: /* timestamps */
			if (len != 10 || !cur_u32(&body, &tsval) || !cur_u32(&body, &tsecr))
				return PKT_TCP_OPTION_BAD;
			if (syn_only && tsecr) /* RFC 7323 3.2: zero when ACK is clear */
				return PKT_TCP_OPTION_BAD;
			break;
		case 34: /* Fast Open: only the empty cookie request carries nothing */
			if (!syn || len != 2)
				return PKT_TCP_OPTION;
			break;
		default:
			return PKT_TCP_OPTION;
		}
	}
	return PKT_OK;
}

/* UDP (RFC 768): sport(2) dport(2) length(2) csum(2); length covers the header. */
static enum pkt_err pkt_udp(struct cur seg, struct pkt *out)
{
	uint16_t ulen, csum;

	if (seg.left < 8)
		return PKT_TRUNCATED;
	cur_u16(&seg, &out->sport);
	cur_u16(&seg, &out->dport);
	cur_u16(&seg, &ulen);
	cur_u16(&seg, &csum);
	if (ulen < 8 || (size_t)ulen - 8 > seg.left)
		return PKT_BAD_UDP_LENGTH;
	struct cur data;
	cur_sub(&seg, (size_t)ulen - 8, &data);
	out->payload = data.p;
	out->payload_len = data.left;
	return PKT_OK;
}

/* ICMP / ICMPv6: type(1) code(1) csum(2) rest(4); payload is what follows the 8 bytes. */
static enum pkt_err pkt_icmp(struct cur seg, struct pkt *out)
{
	uint16_t csum;

	if (seg.left < 8)
		return PKT_TRUNCATED;
	cur_u8(&seg, &out->icmp_type);
	cur_u8(&seg, &out->icmp_code);
	cur_u16(&seg, &csum);
	cur_skip(&seg, 4);
	out->payload = seg.p;
	out->payload_len = seg.left;
	return PKT_OK;
}

enum parse pkt_parse(const uint8_t *buf, size_t len, struct pkt *out, enum pkt_err *why)
{
	struct cur c = cur_make(buf, len), l4 = {0};
	enum pkt_err err;
	uint8_t v;

	memset(out, 0, sizeof *out);
	if (!cur_peek_u8(&c, 0, &v)) {
		err = PKT_TRUNCATED;
		goto done;
	}
	switch (v >> 4) {
	case 4:
		err = pkt_ipv4(&c, out, &l4);
		break;
	case 6:
		err = pkt_ipv6(&c, out, &l4);
		break;
	default:
		err = PKT_BAD_VERSION;
		break;
	}
	if (err != PKT_OK)
		goto done;

	switch (out->proto) {
	case IPPROTO_TCP:
		err = pkt_tcp(l4, out);
		break;
	case IPPROTO_UDP:
		err = pkt_udp(l4, out);
		break;
	case IPPROTO_ICMP:
		err = out->src.family == ADDR_V4 ? pkt_icmp(l4, out) : PKT_OK;
		break;
	case IPPROTO_ICMPV6:
		err = out->src.family == ADDR_V6 ? pkt_icmp(l4, out) : PKT_OK;
		break;
	default:
		out->payload = l4.p;
		out->payload_len = l4.left;
		break;
	}
	if (err == PKT_OK && (out->proto == IPPROTO_ICMP || out->proto == IPPROTO_ICMPV6) &&
	    out->payload == NULL && l4.left) {
		/* ICMP in the wrong IP version: opaque payload, no type. */
		out->payload = l4.p;
		out->payload_len = l4.left;
	}
done:
	if (why)
		*why = err;
	return err == PKT_OK ? PARSE_OK : PARSE_BAD;
}
