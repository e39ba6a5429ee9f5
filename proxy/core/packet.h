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
	/* pkt_plain_headers(): what a plain stack does not put in a bare packet */
	PKT_IP_OPTIONS,         /* IPv4 options */
	PKT_IP_EXT_HEADERS,     /* IPv6 extension headers */
	PKT_IP_RESERVED_FLAG,   /* the IPv4 reserved flag bit */
	PKT_TCP_RESERVED_BITS,  /* the TCP header's reserved bits */
	PKT_TCP_URGENT_POINTER, /* an urgent pointer without URG */
	PKT_TCP_OPTION,         /* an option no plain stack sends on this packet */
	PKT_TCP_OPTION_BAD,     /* bad length, repeated, out of range, or bytes after EOL */
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
	/* Header fields that carry nothing in a plain packet (pkt_plain_headers). */
	uint16_t ip_opt_len;   /* IPv4 option bytes, or IPv6 extension header bytes */
	bool ip_rsv_flag;      /* IPv4 reserved flag */
	uint8_t tcp_rsv;       /* TCP reserved bits (the low nibble of the doff byte, AE excepted) */
	uint16_t tcp_urp;      /* TCP urgent pointer */
	const uint8_t *tcp_opt; /* borrowed: TCP options */
	size_t tcp_opt_len;
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

/*
 * Does a parsed TCP packet without payload carry only what a plain stack
 * puts in its headers? Such packets pass while a flow is undecided (with
 * unknown_ip = verify, to any address), so anything else in them is a
 * channel. PKT_OK, or the first finding:
 *   IPv4 options, IPv6 extension headers, the IPv4 reserved flag, TCP
 *   reserved bits (AE, the AccECN bit, is allowed), an urgent pointer
 *   without URG;
 *   TCP options other than EOL, NOP, MSS / window scale (<= 14) /
 *   SACK-permitted / Fast Open cookie request (empty) on a SYN, SACK (1-4
 *   blocks) on a non-SYN, timestamps (TSecr 0 on a SYN without ACK);
 *   each at most once, lengths exact, nothing but zeros after EOL.
 * A Fast Open cookie, or anything else, needs payload: such a packet is
 * held with its flow and leaves only if the flow is allowed.
 */
enum pkt_err pkt_plain_headers(const struct pkt *p);

#endif
