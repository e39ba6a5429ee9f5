/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_PACKET_H
#define EGRESSD_PACKET_H
/*
 * IPv4 / IPv6 (extension header chain walked with bounds) / TCP / UDP / ICMP
 * headers of one packet as the kernel queued it (layer 3 first).
 * Captured length is checked against every stated length (ihl, doff,
 * total/payload length); the payload is borrowed from the caller's buffer.
 */
#include "addr.h"
#include "cur.h"

enum pkt_err {
	PKT_OK = 0,
	PKT_TRUNCATED,      /* captured length shorter than a header says */
	PKT_BAD_VERSION,    /* not 4 or 6 */
	PKT_BAD_IHL,        /* IPv4 ihl < 5 or past the packet */
	PKT_BAD_LENGTH,     /* total/payload length inconsistent */
	PKT_BAD_TCP_DOFF,   /* TCP data offset < 5 or past the segment */
	PKT_BAD_EXT_CHAIN,  /* IPv6 extension chain too long or malformed */
	PKT_FRAGMENT,       /* a non-first fragment or a fragment conntrack did not reassemble */
	PKT_BAD_UDP_LENGTH, /* UDP length field inconsistent */
	PKT_ERR_COUNT_,
};
const char *pkt_err_name(enum pkt_err e);

/* TCP flags as on the wire. */
enum {
	PKT_TCP_FIN = 0x01,
	PKT_TCP_SYN = 0x02,
	PKT_TCP_RST = 0x04,
	PKT_TCP_PSH = 0x08,
	PKT_TCP_ACK = 0x10,
	PKT_TCP_URG = 0x20,
};

struct pkt {
	struct addr src, dst;
	uint8_t proto;      /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, other */
	uint16_t sport, dport; /* TCP/UDP only */
	uint8_t tcp_flags;
	uint32_t seq;          /* TCP sequence number */
	uint8_t icmp_type, icmp_code; /* ICMP/ICMPv6 only */
	const uint8_t *payload; /* borrowed: L4 payload (after TCP/UDP header) */
	size_t payload_len;
	const uint8_t *l4; /* borrowed: the whole TCP segment (header + payload), for its checksum */
	size_t l4_len;
};

/*
 * Parse one packet starting at the IP header. Returns PARSE_OK, or PARSE_BAD
 * with *why set. (Never PARSE_MORE: a queued packet is whole.) On PARSE_BAD,
 * src and dst are valid when their family is set (the fixed IP header was
 * read), proto and ports as far as they were read; nothing else is.
 */
enum parse pkt_parse(const uint8_t *buf, size_t len, struct pkt *out, enum pkt_err *why);

#endif
