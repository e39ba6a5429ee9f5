/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_MARKS_H
#define EGRESSD_MARKS_H
/*
 * Packet and conntrack mark bits owned by egressd ([queue] mark_mask; other
 * bits are left alone). The ruleset, the verdicts and egressd's own sockets
 * agree on these; see doc/DESIGN.md "Mark bits".
 *
 * Each mark is a small value (1..12: ALLOW 1, DENY 2, PASS 3, QUEUED 4, INSPECT 5,
 * QUEUED_NEW 6, INBOUND 7, SELF 8, PENDING 9, ACKED 10, QUEUED_ACKED 12) placed
 * in the mask's bits, lowest bit first, so the mask needs MARK_BITS set bits
 * (contiguous or not). With the default mask the values are 0x01000000
 * (ALLOW) ... 0x08000000 (SELF) ... 0x0c000000 (QUEUED_ACKED).
 */
#include <errno.h>
#include <stdint.h>

#define MARK_MASK_DEFAULT 0x0f000000u
#define MARK_BITS 4 /* set bits a mask needs: the values below go up to 12 */

struct marks {
	uint32_t mask;
	uint32_t allow;  /* connection allowed: ct mark, fast path */
	uint32_t deny;   /* connection denied: reset/drop */
	uint32_t pass;   /* this packet passes, flow undecided */
	uint32_t queued; /* set before queueing; still set after = not queued: drop */
	uint32_t self;   /* egressd's own sockets (SO_MARK): exempt */
	uint32_t inspect;    /* allowed plain HTTP: client payload still queued */
	uint32_t queued_new; /* as queued, and conntrack had no entry for the packet */
	uint32_t inbound;    /* ct mark, host mode: a connection to this host (its port
	                      * forwards: Docker -p), not egress of the containers */
	/* ct marks of an undecided TCP connection whose SYN the engine passed:
	 * PENDING until the ruleset passes one bare ACK in the kernel, ACKED
	 * after it (doc/DESIGN.md "Round trips") */
	uint32_t pending;
	uint32_t acked;
	/* as queued, and the connection's ct mark is ACKED: the client's bare
	 * ACK passed in the kernel (the engine never saw it). QUEUED, QUEUED_NEW
	 * and QUEUED_ACKED (4, 6, 12) are the values v with v & 0b0101 == 0b0100
	 * in use: the xt queue rule matches them with one mask */
	uint32_t queued_acked;
};

/* v's bits, lowest first, placed in mask's set bits (PDEP). */
static inline uint32_t marks_deposit(uint32_t v, uint32_t mask)
{
	uint32_t out = 0;

	for (uint32_t bit = 1; bit && mask; bit <<= 1) {
		if (!(mask & bit))
			continue;
		if (v & 1u)
			out |= bit;
		v >>= 1;
		mask &= ~bit;
	}
	return out;
}

static inline int marks_bits(uint32_t mask)
{
	return __builtin_popcount(mask);
}

/* The marks for mask (0 = MARK_MASK_DEFAULT). 0, or -EINVAL when the mask
 * has fewer than MARK_BITS bits (m is then filled for the default mask). */
static inline int marks_from_mask(uint32_t mask, struct marks *m)
{
	int rc = 0;

	if (mask == 0)
		mask = MARK_MASK_DEFAULT;
	if (marks_bits(mask) < MARK_BITS) {
		mask = MARK_MASK_DEFAULT;
		rc = -EINVAL;
	}
	m->mask = mask;
	m->allow = marks_deposit(0x1u, mask);
	m->deny = marks_deposit(0x2u, mask);
	m->pass = marks_deposit(0x3u, mask);
	m->queued = marks_deposit(0x4u, mask);
	m->self = marks_deposit(0x8u, mask);
	m->inspect = marks_deposit(0x5u, mask);
	m->queued_new = marks_deposit(0x6u, mask);
	m->inbound = marks_deposit(0x7u, mask);
	m->pending = marks_deposit(0x9u, mask);
	m->acked = marks_deposit(0xau, mask);
	m->queued_acked = marks_deposit(0xcu, mask);
	return rc;
}

#endif
