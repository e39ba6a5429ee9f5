/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_QUEUE_H
#define EGRESSD_QUEUE_H
/*
 * NFQUEUE over libmnl with libnetfilter_queue's nfq_nlmsg_* message API,
 * driven by libevent. Copy mode packet, GSO, uid/gid, no fail-open, no
 * bypass. Verdicts carry the packet mark (marks.h); a rule copies it to
 * the conntrack mark.
 */
#include "../proxy/core/engine.h"
#include <event2/event.h>
#include <stdint.h>

struct queue;

/* Packets waiting for a verdict in the kernel, per queue (QMAXLEN); beyond it
 * the kernel drops (fail closed). The engine holds well below it. */
#define QUEUE_MAXLEN 8192u

/* pkt is borrowed: valid until the callback returns. uid < 0: unknown.
 * The callback may call queue_verdict() (now or later) but not queue_close(). */
#define QUEUE_PKT_CSUM_NOT_READY 0x1u /* NFQA_SKB_CSUMNOTREADY: checksum not computed yet */
#define QUEUE_PKT_CT_NEW 0x2u /* queued as MARK_QUEUED_NEW: the first packet of a conntrack entry */
#define QUEUE_PKT_ACKED 0x4u /* queued as QUEUED_ACKED: the client's bare ACK passed in the kernel */
/* now: CLOCK_MONOTONIC in ns, read once per batch of packets (queue.c). */
typedef void (*queue_packet_fn)(void *arg, uint64_t handle, const uint8_t *pkt, size_t len,
				int64_t uid, unsigned flags, uint64_t now);

/* Bind queue number num. NULL with errbuf filled on failure. */
struct queue *queue_open(struct event_base *base, uint16_t num, queue_packet_fn fn, void *arg,
			 char *errbuf, size_t errlen);
void queue_close(struct queue *q); /* NULL-safe */

/* The mark bits verdicts use ([queue] mark_mask, marks.h); queue_open starts
 * with MARK_MASK_DEFAULT. 0, or -EINVAL for a mask marks_from_mask refuses
 * (the queue keeps its marks). */
int queue_set_mark_mask(struct queue *q, uint32_t mask);

/* Issue the verdict for a handle given to the callback. 0 or -errno
 * (-ENOENT: unknown handle or verdict already given; nothing is sent).
 * ALLOW/DENY/PASS: NF_ACCEPT with mark (orig & ~mask) | marks.x, orig
 * being the packet's mark when queued; DROP: NF_DROP. */
int queue_verdict(struct queue *q, uint64_t handle, enum verdict v);

struct queue_stats {
	uint64_t packets;
	uint64_t queue_dropped;  /* kernel: queue full */
	uint64_t user_dropped;   /* kernel: netlink buffer full */
	uint64_t verdict_errors;
	/* added after the first draft; zero when unknown */
	uint64_t read_overruns;  /* ENOBUFS on read (counted, reading goes on) */
	uint64_t bad_messages;   /* unreadable packet messages (dropped) */
	uint64_t outstanding;    /* packets waiting for our verdict */
};
void queue_stats(const struct queue *q, struct queue_stats *st);

#endif
