/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_FLOW_H
#define EGRESSD_FLOW_H
/*
 * The engine's flow table and first-payload reassembly (internal to the
 * core; the shells only see engine.h).
 *
 * Flows are keyed by (proto, src, sport, dst, dport) in a chained hash with
 * a per-table seed, and kept on one of two age lists (undecided, decided),
 * oldest first, so idle expiry stops at the first young flow and eviction
 * under pressure takes the oldest decided flow. A full table whose flows
 * are all undecided refuses new flows: the engine denies them `incomplete`
 * (fail closed) rather than dropping a flow that holds packets.
 *
 * Reassembly: bytes of the stream relative to ISN+1, in a buffer that grows
 * up to the hold bound, with a bitmap of the bytes present. Overlaps must
 * repeat the same bytes.
 */
#include "engine.h"
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
	int64_t uid;
	uint64_t last_ns, hold_since;

	/* first payload */
	uint8_t *buf, *have;     /* bytes, and a bit per byte present */
	size_t cap, contig, end; /* capacity; contiguous prefix; highest end seen */
	unsigned segments;       /* payload packets taken into the stream */
	size_t held_bytes;       /* payload bytes of held packets */
	uint64_t *held;          /* packet handles waiting for the verdict */
	size_t nheld, capheld;

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

struct flow_table;

struct flow_table *flow_table_new(size_t max_flows);
void flow_table_free(struct flow_table *t); /* frees flows; caller releases held packets first */

struct flow *flow_find(struct flow_table *t, const struct flow_key *k);
/* A new undecided flow, or NULL when full (after evicting the oldest decided flow) or OOM. */
struct flow *flow_create(struct flow_table *t, const struct flow_key *k, uint64_t now);
void flow_touch(struct flow_table *t, struct flow *f, uint64_t now);
/* Moves f to the decided age list and frees its stream buffer. */
void flow_mark_decided(struct flow_table *t, struct flow *f, enum verdict v);
void flow_remove(struct flow_table *t, struct flow *f);
size_t flow_count(const struct flow_table *t);
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
/* Append a held packet handle. 0 or -ENOMEM. */
int flow_hold_packet(struct flow *f, uint64_t handle);

#endif
