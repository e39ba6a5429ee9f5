/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_ENGINE_H
#define EGRESSD_ENGINE_H
/*
 * The decision engine: bytes and time in, verdicts and events out.
 * It owns the flow table (first-payload reassembly, held packets) and reads
 * the policy and the bindings. It performs no I/O: verdicts, events and
 * resolution requests go to callbacks, called synchronously before the
 * engine_* call returns. Times are monotonic nanoseconds from the caller.
 *
 * A packet handed to engine_packet() gets exactly one verdict, now or
 * later (held until its flow is decided, or until engine_tick() finds a
 * bound exceeded, or engine_free()). Verdicts are never issued twice.
 */
#include "addr.h"
#include "bind.h"
#include "dns.h"
#include "indicators.h"
#include "policy.h"
#include "reason.h"
#include <stdint.h>

enum verdict {
	VERDICT_PASS = 0,  /* accept this packet; the flow stays undecided (keep queueing) */
	VERDICT_ALLOW = 1, /* accept and mark the connection allowed (kernel carries the rest) */
	VERDICT_DENY = 2,  /* drop, mark the connection denied; TCP gets a reset */
	VERDICT_DROP = 3,  /* drop this packet only (duplicate of a held segment) */
	VERDICT_INSPECT = 4, /* accept; the connection stays inspected (plain HTTP: every
	                      * client payload is queued, replies and bare ACKs are not) */
};

enum name_source {
	NAME_SOURCE_NONE = 0,
	NAME_SOURCE_SNI,
	NAME_SOURCE_HTTP_HOST,
	NAME_SOURCE_QUIC_SNI,
	NAME_SOURCE_DNS,
};
const char *name_source_str(enum name_source s); /* "sni", ...; "" for NONE */

enum unknown_ip_mode {
	UNKNOWN_IP_DENY = 0,
	UNKNOWN_IP_VERIFY = 1,
};

/* [tls] ech: outer (default) decides an ECH hello on its outer SNI and strips
 * ech SvcParams from relayed HTTPS/SVCB answers; deny refuses ECH hellos (and
 * answers HTTPS/SVCB queries empty); allow is outer with ech params relayed. */
enum ech_mode {
	ECH_OUTER = 0,
	ECH_DENY = 1,
	ECH_ALLOW = 2,
};

struct engine_config {
	bool enforce;                 /* false: audit, every verdict becomes PASS/ALLOW */
	enum unknown_ip_mode unknown_ip;
	enum ech_mode ech;
	bool quic_inspect;
	uint64_t hold_ns;             /* wait for a complete first payload (default 2 s) */
	size_t hold_bytes;            /* per flow (default 16 KiB) */
	unsigned hold_segments;       /* per flow (default 24) */
	/*
	 * Host mode: the local TCP stack sends no more of a socket's data while
	 * earlier segments of it sit in the queue (autocorking, TCP small
	 * queues), so a first payload split over several segments would never
	 * complete if they were held. With drop_partial, a segment that does not
	 * complete the decision is recorded and dropped (never delivered); the
	 * client retransmits it once the flow is allowed. Gateway mode holds.
	 */
	bool drop_partial;
	size_t hold_bytes_total;      /* all flows (default 32 MiB) */
	size_t max_flows;             /* tracked flows (default 65536) */
	uint64_t flow_idle_ns;        /* forget undecided flows idle this long (default 30 s) */
	uint64_t bind_grace_ns;       /* added to DNS TTLs (default 60 s) */
	uint32_t bind_min_ttl, bind_max_ttl; /* clamp answer TTLs (defaults 0 / 3600: [dns] max_ttl) */
	/* Registrable domain of name (libpsl in the shell), for look-alikes; may be NULL. */
	const char *(*registrable)(const char *name, void *arg);
	void *registrable_arg;
	/*
	 * Fairness (DESIGN.md "Floods"). A source is the client address, and in
	 * host mode the socket's uid with it. Held packets wait in the kernel
	 * queue (QUEUE_MAXLEN), so their total stays well below its length; a
	 * flow that would hold past a cap is denied (fail closed). Bare flows
	 * (SYN passed, no payload yet) per source: a SYN beyond is denied.
	 */
	size_t hold_packets_total;    /* all flows (default 2048) */
	size_t hold_packets_source;   /* the flows of one source (default 256) */
	unsigned bare_flows_source;   /* SYN-only flows of one source (default 512; sized once) */
	unsigned bare_packets;        /* payload-less packets one undecided flow passes (default 32) */
	/* Hash seed of the flow table and the engine's own tables (sized once):
	 * the daemon passes getrandom's; the core has no RNG. */
	uint64_t hash_seed;
	/* [egressd] metadata (issue 12): false (deny, the default) guards the
	 * cloud metadata endpoints (engine_is_metadata): a flow to one is denied
	 * unless an IP entry of the allowlist lists the address (a name bound to
	 * it by DNS is not enough), flagged `metadata`; critical when
	 * metadata_critical (host mode), else high. true: no guard. */
	bool metadata_allow;
	bool metadata_critical;
};
void engine_config_defaults(struct engine_config *c);
/* 169.254.169.254, fd00:ec2::254 (IMDS), 169.254.170.2 (ECS task metadata). */
bool engine_is_metadata(const struct addr *a);

/* One logged decision (SPEC.md "Event log"). Valid until the callback returns. */
struct flow_event {
	enum { EVENT_ALLOW = 1, EVENT_DENY, EVENT_DNS_ALLOW, EVENT_DNS_DENY } kind;
	uint8_t proto;
	struct addr src, dst;
	uint16_t sport, dport;
	const char *name;                 /* "" if none */
	enum name_source name_source;
	const char *qname;                /* DNS events */
	uint16_t qtype;
	enum reason reason;
	const char *detail;               /* parser reason name (tls_err_name...), or NULL */
	struct indicators ind;
	bool enforced;
	const struct policy_rule *rule;   /* allow: the entry that allowed it */
	bool has_uid;
	uint32_t uid;
	unsigned count;                   /* identical repeats aggregated (>= 1) */
	/* An aggregated line (the repeats of an event already written): the
	 * times (the caller's monotonic clock) of the first and the last repeat
	 * it counts (aggregated = true); unset on an event's own line. */
	bool aggregated;
	uint64_t first_ns, last_ns;
};

struct engine_hooks {
	void (*verdict)(void *arg, uint64_t pkt_handle, enum verdict v);
	void (*event)(void *arg, const struct flow_event *ev);
	/* verify mode: please resolve name and call engine_resolved(). */
	void (*resolve)(void *arg, const char *name);
	void *arg;
};

struct engine;

/* policy and bindings are borrowed: they must outlive the engine (or be swapped). */
struct engine *engine_new(const struct engine_config *cfg, const struct policy *policy,
			  struct bindings *bindings, const struct engine_hooks *hooks);
void engine_free(struct engine *e); /* NULL-safe; drops (DENY) every held packet first */

/* Reload: new policy (old one may be freed after this returns) and config. */
void engine_set_policy(struct engine *e, const struct policy *policy,
		       const struct engine_config *cfg);

/*
 * One queued packet (layer 3 first, borrowed). pkt_handle is the caller's
 * id for the verdict. uid < 0: unknown.
 */
/* engine_packet_flags(): the kernel computed the checksums of this packet
 * (not NFQA_SKB_CSUMNOTREADY): a TCP packet of an undecided flow with a bad
 * checksum is denied (the server would discard what egressd decided on). */
#define ENGINE_PKT_CSUM_VALID 0x1u
/* conntrack had no entry for this packet (ct state new when queued): on a
 * decided flow it means conntrack forgot the connection (timeout, early drop,
 * flush, revoke) while the engine remembers it; see decided_same_incarnation */
#define ENGINE_PKT_CT_NEW 0x2u
/* the ruleset passed the client's bare handshake ACK in the kernel (ct mark
 * ACKED, nfq/ruleset.c render_pending): on an undecided TCP flow it counts
 * as that ACK (f->acked, one bare packet) */
#define ENGINE_PKT_ACKED 0x4u
void engine_packet_flags(struct engine *e, uint64_t pkt_handle, const uint8_t *pkt, size_t len,
                         int64_t uid, unsigned flags, uint64_t now);
void engine_packet(struct engine *e, uint64_t pkt_handle, const uint8_t *pkt, size_t len,
		   int64_t uid, uint64_t now);

/* Enforce hold bounds and expire idle flows and bindings. Call every ~100 ms. */
void engine_tick(struct engine *e, uint64_t now);

/* Verify mode: the addresses name resolved to (n == 0: resolution failed). */
void engine_resolved(struct engine *e, const char *name, const struct dns_addr *addrs,
		     size_t n, uint64_t now);

/* DNS guard. */
enum dns_action {
	DNS_FORWARD = 0,  /* send upstream, then engine_dns_answer() */
	DNS_REFUSE,       /* answer locally with rcode (refused or nxdomain per config) */
	DNS_EMPTY,        /* answer NOERROR with no records (HTTPS/SVCB with ech = deny) */
	DNS_DROP,         /* unparseable: drop silently */
};
/* Decide a client query (raw message, borrowed). Logs dns_deny itself. */
enum dns_action engine_dns_query(struct engine *e, const uint8_t *msg, size_t len,
				 const struct addr *client, uint16_t client_port,
				 struct dns_query *q_out, uint64_t now);
/* An upstream answer for an allowed query: binds its addresses. Logs dns_allow. */
/* Must the shell strip ech SvcParams from answers it relays (ech != allow)? */
bool engine_dns_strip_ech(const struct engine *e);
void engine_dns_answer(struct engine *e, const struct dns_query *q, const uint8_t *msg,
		       size_t len, const struct addr *client, uint64_t now);

struct engine_stats {
	size_t flows_tracked;
	size_t held_packets;
	size_t held_bytes;
	size_t conns_recorded; /* allowed connections remembered for revoke */
	size_t conns_max;
};
void engine_stats(const struct engine *e, struct engine_stats *st);

/*
 * Back to the state engine_new() left (same policy, bindings, hooks, table
 * size and seed): every held packet dropped (DENY) and pending aggregated
 * events emitted first, as engine_free() does. For the fuzzer, which reuses
 * one engine per input. 0, or -ENOMEM (the engine is then as before).
 */
int engine_reset(struct engine *e);

/*
 * Revoke on reload (SPEC.md [egressd] revoke; issue 9, class 11; the
 * judgement is in revoke.h). The engine remembers every connection it
 * allowed and the name it allowed it for; the shell lists the connections
 * conntrack carries with the ALLOW mark.
 */
struct engine_conn {
	uint8_t proto;
	struct addr src, dst; /* the original direction, as the engine saw it */
	uint16_t sport, dport;
	uint16_t zone; /* the caller's (conntrack zone): passed back to cut, unread */
};
/*
 * After engine_set_policy(): judge conns[0..n), the connections conntrack
 * carries as allowed, against the current policy (complete = false: the
 * list could not be read; the engine's own records are judged instead).
 * For each one the policy no longer allows: a deny event with reason
 * `revoked` (one per connection, not aggregated), its decided flow, if the
 * engine still tracks it, denies every later packet, and, enforcing,
 * cut(arg, c) (a connection known only from the records gets zone 0).
 * Audit mode logs (enforced = false), cuts nothing, and logs each recorded
 * connection once; connections it has no record of are not judged (their
 * ALLOW mark carries would-be denials). Records conntrack no longer lists
 * are forgotten. Returns the number revoked.
 */
size_t engine_revoke(struct engine *e, const struct engine_conn *conns, size_t n, bool complete,
                     void (*cut)(void *arg, const struct engine_conn *c), void *arg,
                     uint64_t now);
/* Forget the records of connections not in conns[0..n) (conntrack's ALLOW list). */
void engine_conns_sync(struct engine *e, const struct engine_conn *conns, size_t n);
/* Does e hold a revoke record of c (it allowed c)? Workers split conntrack's
 * list by this before engine_revoke: each connection is judged once. */
bool engine_conn_recorded(struct engine *e, const struct engine_conn *c);

#endif
