/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_FLOW_H
#define EGRESSD_FLOW_H
/*
 * The engine's flow table and first-payload reassembly (internal to the
 * core; the shells only see engine.h).
 *
 * Flows are keyed by (proto, src, sport, dst, dport) in a chained hash with
 * a per-table seed (the caller's, from getrandom in the daemon), and kept on
 * one of two age lists (undecided, decided), oldest first, so idle expiry
 * stops at the first young flow.
 *
 * Sources: every flow belongs to the source that opened it, (address, uid)
 * (uid is -1 in gateway mode, so there the address alone). A source counts
 * its flows, the packets they hold, and its bare flows: undecided flows that
 * never held a packet (a SYN passed, no payload yet), on a list of their
 * own, oldest first. A source may have at most bare_per_source of them: a
 * new one beyond is refused (FLOW_REFUSE_SOURCE).
 *
 * A full table makes room by evicting, in this order: the oldest decided
 * flow; else the oldest bare flow of the source with the most bare flows,
 * the asking source first among those tied (one flood cannot push out
 * another client's connection while it has more bare flows than that client). Evicted flows hold nothing, so nothing is
 * released: their later packets find no flow and are denied (`no_syn`) or,
 * a SYN, inspected from scratch. Eviction never fails open. Flows that hold
 * packets are never evicted (the hold bounds end them); when nothing can be
 * evicted the new flow is refused (FLOW_REFUSE_FULL) and the engine denies it.
 *
 * Reassembly: bytes of the stream relative to ISN+1, in a buffer that grows
 * up to the hold bound, with a bitmap of the bytes present. Overlaps must
 * repeat the same bytes.
 */
#include "engine.h"
#include "http.h"
#include "name.h"
#include "quic.h"

enum flow_state {
	FLOW_UNDECIDED = 0, /* SYN passed (or QUIC Initial incomplete): waiting for first payload */
	FLOW_WAIT_RESOLVE,  /* verify mode: hello parsed, waiting for engine_resolved() */
	FLOW_DECIDED,       /* verdict in f->verdict for every later packet */
};

struct flow_key {
	uint8_t proto;
	uint16_t sport, dport;
	struct addr src, dst;
};
/* The flow table's key hash (seeded) and equality; revoke.c's records share them. */
uint32_t flow_key_hash(uint64_t seed, const struct flow_key *k);
bool flow_key_eq(const struct flow_key *a, const struct flow_key *b);

struct flow {
	struct flow *hnext;         /* hash chain */
	struct flow *aprev, *anext; /* age list (undecided or decided) */
	struct flow *wprev, *wnext; /* holding list: flows with a hold timer */
	struct flow_key key;
	uint32_t hash;
	enum flow_state state;
	enum verdict verdict; /* FLOW_DECIDED: what later packets get */
	bool on_hold_list;
	bool have_isn;
	bool split; /* hello seen in several records or segments */
	/* Audit mode: the SYN would have been denied for this; the flow goes on
	 * to its first payload so the event can carry the name. */
	enum reason audit_reason;
	uint32_t audit_ind;
	uint32_t isn;
	/* Incarnation (engine.c): the client ACKed the handshake (the stream is
	 * never re-based after that), and when the flow was decided (a decided
	 * verdict is re-issued only for a short time after it). */
	bool acked;
	uint64_t decided_ns;
	int64_t uid;
	uint64_t last_ns, hold_since;

	/* first payload */
	uint8_t *buf, *have;     /* bytes, and a bit per byte present */
	size_t cap, contig, end; /* capacity; contiguous prefix; highest end seen */
	unsigned segments;       /* payload packets taken into the stream */
	size_t held_bytes;       /* payload bytes of held packets */
	uint64_t *held;          /* packet handles waiting for the verdict */
	size_t nheld, capheld;
	/* Source accounting (flow.c): who opened the flow; its place on the
	 * source's bare list while it is bare; how many of held[] the source
	 * counts (flow_held_sync() after taking packets out of held[]). */
	struct flow_src *src;
	struct flow *bprev, *bnext;
	bool bare;
	size_t src_held;
	unsigned bare_passed; /* payload-less packets passed while undecided (engine.c) */

	/* QUIC (UDP 443): CRYPTO bytes go into the stream above by offset. */
	bool quic;                     /* a QUIC flow: its denials carry IND_QUIC */
	uint8_t quic_dcid[QUIC_CID_MAX]; /* the first Initial's DCID: all must match */
	uint8_t quic_dcid_len;
	uint32_t quic_version;
	unsigned quic_crypto_dgrams; /* datagrams that brought new CRYPTO bytes */

	char name[NAME_MAX_LEN + 1]; /* the name decided on (SNI, Host, DNS) */
	enum name_source name_source;

	struct http_insp *http; /* VERDICT_INSPECT: the request stream (owned, freed here) */
};

/*
 * A plain-HTTP connection under VERDICT_INSPECT (engine.c): the client's
 * request stream read in sequence order. ring keeps the last bytes read
 * (ring[seq % FLOW_INSPECT_RING]) so that a retransmission must repeat them;
 * head keeps an unfinished request head (allocated while there is one, up
 * to HTTP_HEAD_MAX).
 */
#define FLOW_INSPECT_RING 4096
struct http_insp {
	struct http_stream st;
	uint32_t next_seq;  /* client sequence number of the next unread byte */
	uint32_t sig_end;   /* end of the last segment with bytes other than Content-Length body */
	uint64_t read;      /* bytes read so far */
	uint64_t expire_ns; /* idle expiry (shorter after the client's FIN or RST) */
	uint8_t *head;
	size_t have;
	uint8_t ring[FLOW_INSPECT_RING];
};

struct flow_table;
struct flow_src;

/* seed: the hash seed (0 is a seed like any other). bare_per_source >= 1. */
struct flow_table *flow_table_new(size_t max_flows, unsigned bare_per_source, uint64_t seed);
void flow_table_free(struct flow_table *t); /* frees flows; caller releases held packets first */

struct flow *flow_find(struct flow_table *t, const struct flow_key *k);

enum flow_refuse {
	FLOW_REFUSE_NONE = 0,
	FLOW_REFUSE_FULL,   /* the table is full of flows that hold packets */
	FLOW_REFUSE_SOURCE, /* bare: the source has bare_per_source bare flows */
	FLOW_REFUSE_NOMEM,
};
/*
 * A new undecided flow opened by (k->src, uid), or NULL with *why set.
 * bare: it holds nothing yet (a TCP SYN passed; it stays bare until a
 * packet is held); a flow that is about to hold its first packet (UDP) is
 * not bare and is not counted against the source's bare cap. May evict (see
 * above); the caller's pointers to other flows may then dangle.
 */
struct flow *flow_create(struct flow_table *t, const struct flow_key *k, int64_t uid, bool bare,
                         uint64_t now, enum flow_refuse *why);
/* Packets the flows of f's source hold (f included). */
size_t flow_src_held(const struct flow *f);
/* Bare flows of f's source (for tests and stats). */
unsigned flow_src_bare(const struct flow *f);
/* After the caller took packets out of f->held: the source counts f->nheld. */
void flow_held_sync(struct flow *f);
void flow_touch(struct flow_table *t, struct flow *f, uint64_t now);
/* Moves f to the decided age list and frees its stream buffer. */
void flow_mark_decided(struct flow_table *t, struct flow *f, enum verdict v);
void flow_remove(struct flow_table *t, struct flow *f);
size_t flow_count(const struct flow_table *t);
/* Attach f->http (zeroed); NULL when out of memory. flow_remove frees it. */
struct http_insp *flow_inspect_new(struct flow_table *t, struct flow *f);
/* Detach and free f->http (and its head buffer). */
void flow_inspect_free(struct flow_table *t, struct flow *f);
/* Flows with f->http. */
size_t flow_inspecting(const struct flow_table *t);
/* Oldest of the undecided / decided age lists (NULL if empty). */
struct flow *flow_oldest(struct flow_table *t, bool decided);
struct flow *flow_holding_first(struct flow_table *t);
void flow_hold_start(struct flow_table *t, struct flow *f, uint64_t now);
void flow_hold_stop(struct flow_table *t, struct flow *f);

enum flow_add {
	FLOW_ADD_NEW = 0,  /* some bytes were new */
	FLOW_ADD_DUP,      /* every byte already present, identical */
	FLOW_ADD_CONFLICT, /* an overlap carries different bytes */
	FLOW_ADD_TOO_BIG,  /* past the hold bound, or before the stream start */
	FLOW_ADD_NOMEM,
};
/* Put n bytes at stream offset rel (relative to ISN+1) into the stream, within limit. */
enum flow_add flow_stream_add(struct flow *f, uint32_t rel, const uint8_t *p, size_t n,
                              size_t limit);
/* Calls fn on each run of present bytes (for the credential scan). */
void flow_stream_runs(const struct flow *f, void (*fn)(const uint8_t *p, size_t n, void *arg),
                      void *arg);
/* Append a held packet handle (the flow stops being bare; its source counts it). 0 or -ENOMEM. */
int flow_hold_packet(struct flow *f, uint64_t handle);
/* Free a held[] array taken out of a flow (cap: its capheld); small ones go
 * back to t's pool. t NULL: free(). */
void flow_held_free(struct flow_table *t, uint64_t *held, size_t cap);

#endif
