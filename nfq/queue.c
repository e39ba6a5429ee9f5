/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NFQUEUE I/O: one netlink socket per queue, non-blocking, read from a
 * libevent event; messages built and parsed with libmnl and the nfq_nlmsg_*
 * helpers of libnetfilter_queue (not its deprecated handle API).
 *
 * A packet message (NFQNL_MSG_PACKET), attributes we use:
 *   nlmsghdr | nfgenmsg(res_id = queue) | NFQA_PACKET_HDR{id be32, hw_protocol,
 *   hook} | NFQA_MARK be32 | NFQA_PAYLOAD <bytes> | NFQA_CAP_LEN be32 (only when
 *   the packet was truncated to the copy range) | NFQA_UID be32 (when the
 *   packet has a socket and we asked for NFQA_CFG_F_UID_GID)
 *
 * The verdict carries the whole packet mark (the kernel replaces skb->mark),
 * so the packet's mark is remembered per packet id, and the verdict writes
 * (orig & ~mark_mask) | verdict bits: other users' bits survive, and the
 * QUEUED bit set by the ruleset is cleared.
 *
 * Batches (issue 10, cheap per-packet path): one wakeup reads up to
 * QUEUE_RECV_BATCH datagrams per recvmmsg(), reads the clock once for them
 * (the callback's now), and the verdicts given while they are handled are
 * concatenated into one datagram, sent once per batch: nfnetlink handles
 * every message of a datagram in order, each as if sent alone (an error is
 * answered for that one message only). NFQNL_MSG_VERDICT_BATCH is not used:
 * it applies to every lower id, held packets included, with one mark, and
 * our verdicts each carry the packet's own mark. Verdicts given outside a
 * batch (a resolved name, a timer) are sent at once. No allocation per
 * packet: buffers, the mark table and the verdict buffer are made once.
 */
#define _GNU_SOURCE /* recvmmsg */
#include "queue.h"
#include "errf.h"
#include "marks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_RCVBUF (8u << 20) /* socket buffer for bursts */
#define QUEUE_COPY_RANGE 0xffff
#define QUEUE_READ_BUDGET 256          /* messages per wakeup, then back to the loop */
/* one packet of copy range + attributes; a multiple of the netlink alignment,
 * since the batch's buffers lie back to back (nlmsghdr needs 4-byte alignment) */
#define QUEUE_BUF_SIZE NLMSG_ALIGN(0x10000 + 8192)
#define QUEUE_RECV_BATCH 16            /* datagrams per recvmmsg() */
_Static_assert(QUEUE_BUF_SIZE % 8 == 0, "recvmmsg buffers stay aligned");
#define QUEUE_VBUF_SIZE 16384          /* verdicts of one batch, one datagram */
#define QUEUE_VERDICT_MAX 128          /* room one verdict message needs (about 40 bytes) */
/* Outstanding packets are at most QUEUE_MAXLEN (the kernel drops beyond),
 * so a table of twice that never fills past half: linear probing stays short. */
#define QUEUE_SLOTS (2 * QUEUE_MAXLEN)

struct slot {
	uint32_t id;
	uint32_t mark;
	bool used;
};

struct queue {
	struct mnl_socket *nl;
	struct event *ev;
	uint16_t num;
	uint32_t portid;
	queue_packet_fn fn;
	void *arg;
	char *buf;          /* QUEUE_RECV_BATCH * QUEUE_BUF_SIZE */
	struct mmsghdr msgs[QUEUE_RECV_BATCH];
	struct iovec iov[QUEUE_RECV_BATCH];
	char *vbuf;         /* QUEUE_VBUF_SIZE: verdicts waiting for the end of the batch */
	size_t vlen;
	bool batching;      /* inside on_readable: verdicts go to vbuf */
	uint64_t now_ns;    /* CLOCK_MONOTONIC, read once per batch */
	struct slot *slots; /* QUEUE_SLOTS, id -> original mark */
	unsigned outstanding;
	uint64_t packets;
	uint64_t verdict_errors;
	uint64_t read_overruns;
	uint64_t bad_messages;
	struct marks marks; /* queue_set_mark_mask */
};


/* ------------------------------------------------------------ mark table */

static uint32_t slot_hash(uint32_t id)
{
	/* ids are sequential: multiplicative hash spreads neighbours anyway */
	return (id * 2654435761u) & (QUEUE_SLOTS - 1);
}

static struct slot *slot_find(struct queue *q, uint32_t id)
{
	for (uint32_t i = slot_hash(id), n = 0; n < QUEUE_SLOTS;
	     n++, i = (i + 1) & (QUEUE_SLOTS - 1)) {
		if (!q->slots[i].used)
			return NULL;
		if (q->slots[i].id == id)
			return &q->slots[i];
	}
	return NULL;
}

static int slot_put(struct queue *q, uint32_t id, uint32_t mark)
{
	if (q->outstanding >= QUEUE_SLOTS - 1)
		return -ENOSPC;
	for (uint32_t i = slot_hash(id), n = 0; n < QUEUE_SLOTS;
	     n++, i = (i + 1) & (QUEUE_SLOTS - 1)) {
		struct slot *s = &q->slots[i];

		if (s->used && s->id == id)
			return -EEXIST; /* the kernel never reuses a live id */
		if (!s->used) {
			*s = (struct slot){.id = id, .mark = mark, .used = true};
			q->outstanding++;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void slot_del(struct queue *q, struct slot *s)
{
	uint32_t i = (uint32_t)(s - q->slots);
	uint32_t j = i;

	q->slots[i].used = false;
	q->outstanding--;
	for (;;) {
		uint32_t home;

		j = (j + 1) & (QUEUE_SLOTS - 1);
		if (!q->slots[j].used)
			return;
		home = slot_hash(q->slots[j].id);
		/* move j into the hole i unless its home lies in (i, j] */
		if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
			q->slots[i] = q->slots[j];
			q->slots[j].used = false;
			i = j;
		}
	}
}

/* ------------------------------------------------------------ netlink out */

/* Send the verdicts of the batch: one datagram; if the socket refuses it
 * as a whole, message by message (each failure counted). */
static void verdict_flush(struct queue *q)
{
	size_t len = q->vlen;

	q->vlen = 0;
	if (len == 0 || mnl_socket_sendto(q->nl, q->vbuf, len) != -1)
		return;
	int left = (int)len;
	for (const struct nlmsghdr *h = (const struct nlmsghdr *)q->vbuf; mnl_nlmsg_ok(h, left);
	     h = mnl_nlmsg_next(h, &left))
		if (mnl_socket_sendto(q->nl, h, h->nlmsg_len) == -1)
			q->verdict_errors++;
}

static int send_verdict(struct queue *q, uint32_t id, int nf_verdict, bool with_mark, uint32_t mark)
{
	char buf[QUEUE_VERDICT_MAX];
	bool batch = q->batching && q->vbuf;

	if (batch && q->vlen + QUEUE_VERDICT_MAX > QUEUE_VBUF_SIZE)
		verdict_flush(q);
	struct nlmsghdr *nlh = nfq_nlmsg_put(batch ? q->vbuf + q->vlen : buf, NFQNL_MSG_VERDICT,
	                                     q->num);

	nfq_nlmsg_verdict_put(nlh, (int)id, nf_verdict);
	if (with_mark)
		nfq_nlmsg_verdict_put_mark(nlh, mark);
	if (batch) {
		q->vlen += NLMSG_ALIGN(nlh->nlmsg_len);
		return 0;
	}
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) == -1) {
		q->verdict_errors++;
		return -errno;
	}
	return 0;
}

int queue_verdict(struct queue *q, uint64_t handle, enum verdict v)
{
	uint32_t id = (uint32_t)handle;
	struct slot *s;
	uint32_t orig, bits;

	if (!q || (handle >> 32) != q->num)
		return -EINVAL;
	s = slot_find(q, id);
	if (!s)
		return -ENOENT; /* unknown or already decided: never twice */
	orig = s->mark;
	slot_del(q, s);

	switch (v) {
	case VERDICT_ALLOW:
		bits = q->marks.allow;
		break;
	case VERDICT_DENY:
		bits = q->marks.deny; /* accepted here; chain post sets ct mark, resets/drops */
		break;
	case VERDICT_PASS:
		bits = q->marks.pass;
		break;
	case VERDICT_INSPECT:
		bits = q->marks.inspect; /* chain post sets the ct mark */
		break;
	case VERDICT_DROP:
		return send_verdict(q, id, NF_DROP, false, 0);
	default:
		/* not a verdict we know: the packet must not pass */
		send_verdict(q, id, NF_DROP, false, 0);
		return -EINVAL;
	}
	return send_verdict(q, id, NF_ACCEPT, true, (orig & ~q->marks.mask) | bits);
}

/* ------------------------------------------------------------- netlink in */

/* A packet message: validate, remember its mark, hand it over. Anything we
 * cannot read is dropped, never accepted. */
static void on_packet(struct queue *q, const struct nlmsghdr *nlh, bool deliver)
{
	struct nlattr *attr[NFQA_MAX + 1] = {NULL};
	const struct nfqnl_msg_packet_hdr *ph;
	const uint8_t *payload;
	uint32_t id, mark = 0, plen;
	int64_t uid = -1;

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(*ph)) {
		/* no id: nothing we can even drop; the kernel's queue keeps it
		 * until the socket closes (then it is dropped: no fail-open) */
		q->bad_messages++;
		return;
	}
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	id = ntohl(ph->packet_id);
	q->packets++;

	if (!attr[NFQA_PAYLOAD] || !deliver) {
		q->bad_messages += !deliver ? 0 : 1;
		send_verdict(q, id, NF_DROP, false, 0);
		return;
	}
	payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	if (attr[NFQA_CAP_LEN]) {
		/* truncated to the copy range: the captured part must be shorter
		 * than the packet it claims to come from */
		if (mnl_attr_validate(attr[NFQA_CAP_LEN], MNL_TYPE_U32) < 0 ||
		    ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) < plen) {
			q->bad_messages++;
			send_verdict(q, id, NF_DROP, false, 0);
			return;
		}
	}
	if (plen == 0) {
		q->bad_messages++;
		send_verdict(q, id, NF_DROP, false, 0);
		return;
	}
	if (attr[NFQA_MARK]) {
		if (mnl_attr_validate(attr[NFQA_MARK], MNL_TYPE_U32) < 0) {
			q->bad_messages++;
			send_verdict(q, id, NF_DROP, false, 0);
			return;
		}
		mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
	}
	if (attr[NFQA_UID] && mnl_attr_validate(attr[NFQA_UID], MNL_TYPE_U32) == 0)
		uid = (int64_t)ntohl(mnl_attr_get_u32(attr[NFQA_UID]));
	/* NFQA_CFG_F_GSO: locally generated packets may come with their checksum
	 * still to be filled in by the device; say so, the engine must not judge it. */
	unsigned pflags = 0;
	if (attr[NFQA_SKB_INFO] && (mnl_attr_validate(attr[NFQA_SKB_INFO], MNL_TYPE_U32) < 0 ||
	                            ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) &
	                                NFQA_SKB_CSUMNOTREADY))
		pflags |= QUEUE_PKT_CSUM_NOT_READY;
	if ((mark & q->marks.mask) == q->marks.queued_new)
		pflags |= QUEUE_PKT_CT_NEW;
	else if ((mark & q->marks.mask) == q->marks.queued_acked)
		pflags |= QUEUE_PKT_ACKED;

	if (slot_put(q, id, mark) != 0) {
		/* cannot remember it, so cannot give the right verdict later */
		q->verdict_errors++;
		send_verdict(q, id, NF_DROP, false, 0);
		return;
	}
	q->fn(q->arg, ((uint64_t)q->num << 32) | id, payload, plen, uid, pflags, q->now_ns);
}

/* Walk one datagram. deliver=false (setup): packets are dropped. Returns
 * the number of NLMSG_ERROR answers seen; *first_err the first error. */
static unsigned walk(struct queue *q, const char *buf, ssize_t len, bool deliver, int *first_err)
{
	int left = (int)len;
	unsigned answers = 0;

	for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(h, left);
	     h = mnl_nlmsg_next(h, &left)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

			if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				continue;
			answers++;
			if (e->error != 0) {
				if (first_err && *first_err == 0)
					*first_err = e->error;
				/* an error for a verdict we sent (id gone) */
				if (deliver)
					q->verdict_errors++;
			}
			continue;
		}
		if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
			on_packet(q, h, deliver);
	}
	return answers;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	q->batching = true;
	for (int got = 0; got < QUEUE_READ_BUDGET;) {
		int n = recvmmsg(fd, q->msgs, QUEUE_RECV_BATCH, MSG_DONTWAIT, NULL);

		if (n == -1) {
			if (errno == ENOBUFS) {
				/* the kernel dropped messages for us (user_dropped
				 * counts them); those packets are dropped: go on */
				q->read_overruns++;
				got++;
				continue;
			}
			if (errno == EINTR)
				continue;
			break; /* EAGAIN: drained */
		}
		q->now_ns = mono_ns();
		for (int i = 0; i < n; i++)
			if (q->msgs[i].msg_len > 0)
				walk(q, q->iov[i].iov_base, (ssize_t)q->msgs[i].msg_len, true, NULL);
		verdict_flush(q);
		got += n;
		if (n < QUEUE_RECV_BATCH)
			break; /* drained: level-triggered, a late arrival wakes us again */
	}
	q->batching = false;
	verdict_flush(q);
}

/* ------------------------------------------------------------- setup */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * One datagram: BIND, PARAMS(copy packet, 0xffff), QMAXLEN, FLAGS (GSO,
 * UID_GID; FAIL_OPEN in the mask so it is explicitly off), each acked.
 */
static int configure(struct queue *q, char *err, size_t errlen)
{
	char buf[1024];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
	struct nlmsghdr *nlh;
	uint32_t flags = NFQA_CFG_F_GSO | NFQA_CFG_F_UID_GID;
	uint32_t mask = flags | NFQA_CFG_F_FAIL_OPEN;
	unsigned acks = 0, want = 0;
	int first_err = 0;
	int64_t deadline;

	nlh = nfq_nlmsg_put(mnl_nlmsg_batch_current(b), NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nlh->nlmsg_flags |= NLM_F_ACK;
	mnl_nlmsg_batch_next(b);
	want++;

	nlh = nfq_nlmsg_put(mnl_nlmsg_batch_current(b), NFQNL_MSG_CONFIG, q->num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, QUEUE_COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
	nlh->nlmsg_flags |= NLM_F_ACK;
	mnl_nlmsg_batch_next(b);
	want++;

	if (mnl_socket_sendto(q->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) == -1) {
		errf(err, errlen, "nfqueue %u: send config: %s", q->num, strerror(errno));
		mnl_nlmsg_batch_stop(b);
		return -1;
	}
	mnl_nlmsg_batch_stop(b);

	deadline = mono_ms() + 3000;
	while (acks < want) {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(q->nl), .events = POLLIN};
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			errf(err, errlen, "nfqueue %u: no answer to the config", q->num);
			return -1;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			errf(err, errlen, "nfqueue %u: poll: %s", q->num, strerror(errno));
			return -1;
		}
		n = recv(pfd.fd, q->buf, QUEUE_BUF_SIZE, MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS)
				continue;
			errf(err, errlen, "nfqueue %u: recv: %s", q->num, strerror(errno));
			return -1;
		}
		/* packets that race the config are dropped (fail closed) */
		acks += walk(q, q->buf, n, false, &first_err);
	}
	if (first_err != 0) {
		errf(err, errlen, "nfqueue %u: bind/config refused: %s%s", q->num,
		     strerror(-first_err),
		     first_err == -EBUSY ? " (another process holds this queue)" : "");
		return -1;
	}
	return 0;
}

int queue_set_mark_mask(struct queue *q, uint32_t mask)
{
	struct marks m;

	if (!q || mask == 0 || marks_from_mask(mask, &m) != 0)
		return -EINVAL;
	q->marks = m;
	return 0;
}

struct queue *queue_open(struct event_base *base, uint16_t num, queue_packet_fn fn, void *arg,
                         char *errbuf, size_t errlen)
{
	struct queue *q = calloc(1, sizeof(*q));
	int fd, one = 1, rcv = QUEUE_RCVBUF;

	if (!q || !base || !fn) {
		errf(errbuf, errlen, q ? "queue_open: bad arguments" : "out of memory");
		free(q);
		return NULL;
	}
	q->num = num;
	marks_from_mask(MARK_MASK_DEFAULT, &q->marks);
	q->fn = fn;
	q->arg = arg;
	q->buf = malloc((size_t)QUEUE_RECV_BATCH * QUEUE_BUF_SIZE);
	q->vbuf = malloc(QUEUE_VBUF_SIZE);
	q->slots = calloc(QUEUE_SLOTS, sizeof(*q->slots));
	if (!q->buf || !q->vbuf || !q->slots) {
		errf(errbuf, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < QUEUE_RECV_BATCH; i++) {
		q->iov[i] = (struct iovec){.iov_base = q->buf + (size_t)i * QUEUE_BUF_SIZE,
		                           .iov_len = QUEUE_BUF_SIZE};
		q->msgs[i].msg_hdr = (struct msghdr){.msg_iov = &q->iov[i], .msg_iovlen = 1};
	}
	q->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!q->nl) {
		errf(errbuf, errlen, "nfqueue %u: netlink socket: %s", num, strerror(errno));
		goto fail;
	}
	fd = mnl_socket_get_fd(q->nl);
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) == -1) {
		errf(errbuf, errlen, "nfqueue %u: bind netlink: %s", num, strerror(errno));
		goto fail;
	}
	q->portid = mnl_socket_get_portid(q->nl);
	/* a burst must not overflow silently; without CAP_NET_ADMIN the force
	 * variant fails and the sysctl cap (rmem_max) applies */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) == -1)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	/* ENOBUFS would only tell us what user_dropped counts anyway */
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (configure(q, errbuf, errlen) != 0)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		errf(errbuf, errlen, "nfqueue %u: O_NONBLOCK: %s", num, strerror(errno));
		goto fail;
	}
	q->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, q);
	if (!q->ev || event_add(q->ev, NULL) == -1) {
		errf(errbuf, errlen, "nfqueue %u: event: cannot add", num);
		goto fail;
	}
	return q;
fail:
	queue_close(q);
	return NULL;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	if (q->ev)
		event_free(q->ev);
	/* closing the socket unbinds the queue; the kernel drops whatever
	 * still waits for a verdict (no fail-open, no bypass) */
	if (q->nl)
		mnl_socket_close(q->nl);
	free(q->slots);
	free(q->vbuf);
	free(q->buf);
	free(q);
}

/* /proc/net/netfilter/nfnetlink_queue, one line per queue in this netns:
 * queue portid queue_total copy_mode copy_range queue_dropped user_dropped
 * id_sequence 1 */
static void kernel_counters(uint16_t num, uint64_t *qdrop, uint64_t *udrop)
{
	FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
	char line[256];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned qn, portid, total, mode, range;
		unsigned long long qd, ud;

		if (sscanf(line, "%u %u %u %u %u %llu %llu", &qn, &portid, &total, &mode, &range,
		           &qd, &ud) == 7 &&
		    qn == num) {
			*qdrop = qd;
			*udrop = ud;
			break;
		}
	}
	fclose(f);
}

void queue_stats(const struct queue *q, struct queue_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!q)
		return;
	st->packets = q->packets;
	st->verdict_errors = q->verdict_errors;
	st->read_overruns = q->read_overruns;
	st->bad_messages = q->bad_messages;
	st->outstanding = q->outstanding;
	kernel_counters(q->num, &st->queue_dropped, &st->user_dropped);
}
