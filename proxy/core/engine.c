/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The decision engine (engine.h). Per packet:
 *
 *   pkt_parse ── BAD ──────────────────────────────> DENY malformed
 *      │ ICMP / other protocols ───────────────────> DENY protocol_not_allowed
 *      ├ flow decided ─────────────────────────────> its verdict again
 *      ├ TCP SYN: range ─> ALLOW | bound/verify ─> PASS (flow undecided) | DENY
 *      ├ TCP payload of an undecided flow: into the stream (ISN+1 relative),
 *      │   held until the first payload decides:
 *      │   TLS ClientHello ─> SNI | HTTP ─> Host | other ─> DNS binding (not 80/443)
 *      │   name: policy, then range or binding of dst to the name, else
 *      │   verify: resolve the name and wait | deny: sni_ip_mismatch
 *      └ UDP first datagram: 443 ─> QUIC (inspect: the Initials' CRYPTO frames into
 *          the stream, held until the hello is whole) or deny; else range / binding
 *
 * Every packet handed in gets exactly one verdict: at once, or when its
 * flow is decided (engine_resolved, a later packet, engine_tick timing out
 * the hold, engine_free). In audit mode (enforce = false) nothing is held:
 * undecided packets PASS, a would-be DENY is logged with enforced = false
 * and issued as ALLOW. A TCP SYN that would be denied passes and its flow
 * is decided at the first payload (or the hold timeout), so the one event
 * of that flow carries the name the client used; would-be-refused DNS
 * queries are forwarded (and logged dns_deny, enforced = false).
 *
 * Events: one per decided flow; identical events (kind, proto, src, dst, dport,
 * name, reason, detail, indicators with their credentials, enforced, rule,
 * uid) within 1 s are aggregated: the first goes out at once, the repeats
 * are counted and flushed with their count and first/last time by
 * engine_tick(). An event that differs in anything but its source port
 * (a GitHub token after an AWS key) is a line of its own.
 */
#include "engine.h"

#include "flow.h"
#include "http.h"
#include "packet.h"
#include "quic.h"
#include "revoke.h"
#include "tls.h"
#include "typosquat.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull
#define AGG_SLOTS 512
#define AGG_WINDOW_NS (1 * NS_PER_S)
#define BEACON_SLOTS 1024
#define BEACON_WINDOW_NS (60 * NS_PER_S)
#define BEACON_COUNT 3
#define DNSP_SLOTS 256
#define DNSP_WINDOW_NS (10 * NS_PER_S)
#define DNSP_THRESHOLD 20
#define DNSP_HASHES 32
#define INFLIGHT_MAX 256
#define DECIDED_LINGER_NS (10 * NS_PER_S) /* decided flows catch packets queued before the mark */
#define MAX_ANSWER_ADDRS 64
/* A decided ALLOW is re-issued to packets of its own incarnation queued
 * before the conntrack mark took effect: only this long after the decision. */
#define REISSUE_NS (5 * NS_PER_S)
/* A UDP datagram without a conntrack entry that raced the decision: queued
 * while the first datagram's entry was not confirmed yet (it waited for our
 * verdict). Later, no entry means conntrack forgot the flow. */
#define UDP_RACE_NS (NS_PER_S / 2)

struct agg_slot {
	bool used;
	uint32_t hash;
	uint64_t first;
	unsigned pending;     /* repeats not yet emitted */
	uint64_t rep_first, rep_last; /* times of the first and last of them */
	struct flow_event ev; /* copy; strings below */
	char name[NAME_MAX_LEN + 1];
	char qname[NAME_MAX_LEN + 1];
};

struct beacon_slot {
	uint32_t hash;
	struct addr src, dst;
	uint16_t dport;
	uint8_t n;
	uint64_t t[BEACON_COUNT]; /* most recent denials, newest last */
};

struct dnsp_slot {
	uint32_t hash;
	char parent[NAME_MAX_LEN + 1];
	uint64_t start;
	unsigned distinct;
	uint32_t names[DNSP_HASHES];
};

struct reg_entry {
	char *reg;  /* registrable domain of an allowed name */
	char *name; /* the first allowed name with it, as written ("*.x" for wildcards) */
};

struct inflight {
	char name[NAME_MAX_LEN + 1];
	uint64_t since;
	bool used;
};

struct engine {
	struct engine_config cfg;
	const struct policy *policy;
	struct bindings *bind;
	struct engine_hooks hooks;
	struct flow_table *ft;
	unsigned pkt_flags; /* ENGINE_PKT_*: of the packet being handled */
	size_t held_bytes_total, held_packets;
	uint64_t seed;
	struct agg_slot agg[AGG_SLOTS];
	struct beacon_slot beacon[BEACON_SLOTS];
	struct dnsp_slot dnsp[DNSP_SLOTS];
	struct inflight inflight[INFLIGHT_MAX];
	/* typosquat: registrable domains of the allowed names, sorted by length */
	struct reg_entry *regs;
	size_t nregs, capregs;
	bool regs_built;
	struct typo_index *typo; /* over regs (typosquat.c) */
	struct conn_table *conns; /* allowed connections, for revoke (revoke.h) */
};

const char *name_source_str(enum name_source s)
{
	switch (s) {
	case NAME_SOURCE_NONE:
		return "";
	case NAME_SOURCE_SNI:
		return "sni";
	case NAME_SOURCE_HTTP_HOST:
		return "http_host";
	case NAME_SOURCE_QUIC_SNI:
		return "quic_sni";
	case NAME_SOURCE_DNS:
		return "dns";
	}
	return "";
}

void engine_config_defaults(struct engine_config *c)
{
	*c = (struct engine_config){
	    .enforce = true,
	    .unknown_ip = UNKNOWN_IP_DENY,
	    .ech = ECH_OUTER,
	    .quic_inspect = false,
	    .hold_ns = 2 * NS_PER_S,
	    .hold_bytes = 16384,
	    .hold_segments = 24,
	    .hold_bytes_total = 32u << 20,
	    .max_flows = 65536,
	    .flow_idle_ns = 30 * NS_PER_S,
	    .bind_grace_ns = 60 * NS_PER_S,
	    .bind_min_ttl = 0,
	    .bind_max_ttl = 3600, /* [dns] max_ttl (issue 9, class 6) */
	    .hold_packets_total = 2048,
	    .hold_packets_source = 256,
	    .bare_flows_source = 512,
	    .bare_packets = 32,
	};
}

static uint32_t mix_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h = (h ^ b[i]) * 0x100000001b3ull;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

/* ---- events: aggregation ---- */

static uint32_t event_hash(const struct engine *e, const struct flow_event *ev)
{
	uint64_t h = e->seed ^ ((uint64_t)ev->kind << 40 | (uint64_t)ev->reason << 32 |
	                        (uint64_t)ev->qtype << 16 | ev->dport);
	h = mix_bytes(h, &ev->src, sizeof ev->src);
	h = mix_bytes(h, &ev->dst, sizeof ev->dst);
	h = mix_bytes(h, ev->name, strlen(ev->name));
	if (ev->detail)
		h = mix_bytes(h, ev->detail, strlen(ev->detail));
	if (ev->qname)
		h = mix_bytes(h, ev->qname, strlen(ev->qname));
	h = mix_bytes(h, &ev->ind.bits, sizeof ev->ind.bits);
	for (size_t i = 0; i < ev->ind.ncreds && i < IND_MAX_CREDS; i++)
		h = mix_bytes(h, &ev->ind.creds[i].type, sizeof ev->ind.creds[i].type);
	return (uint32_t)h;
}

/* Indicators, credentials (type and masked form, in order) and severity. */
static bool ind_same(const struct indicators *a, const struct indicators *b)
{
	if (a->bits != b->bits || a->severity != b->severity || a->ncreds != b->ncreds ||
	    strncmp(a->imitates, b->imitates, sizeof a->imitates) != 0)
		return false;
	for (size_t i = 0; i < a->ncreds && i < IND_MAX_CREDS; i++)
		if (a->creds[i].type != b->creds[i].type ||
		    strncmp(a->creds[i].masked, b->creds[i].masked, sizeof a->creds[i].masked) != 0)
			return false;
	return true;
}

static bool event_same(const struct flow_event *a, const struct flow_event *b)
{
	return a->kind == b->kind && a->reason == b->reason && a->dport == b->dport &&
	       a->qtype == b->qtype &&
	       addr_eq(&a->src, &b->src) && addr_eq(&a->dst, &b->dst) &&
	       strcmp(a->name, b->name) == 0 &&
	       strcmp(a->detail ? a->detail : "", b->detail ? b->detail : "") == 0 &&
	       strcmp(a->qname ? a->qname : "", b->qname ? b->qname : "") == 0 &&
	       a->proto == b->proto && a->name_source == b->name_source &&
	       a->enforced == b->enforced && a->rule == b->rule && a->has_uid == b->has_uid &&
	       (!a->has_uid || a->uid == b->uid) && ind_same(&a->ind, &b->ind);
}

static void agg_flush_slot(struct engine *e, struct agg_slot *s)
{
	if (s->used && s->pending) {
		struct flow_event ev = s->ev;
		ev.name = s->name;
		ev.qname = s->ev.qname ? s->qname : NULL;
		ev.count = s->pending;
		ev.aggregated = true;
		ev.first_ns = s->rep_first;
		ev.last_ns = s->rep_last;
		s->pending = 0;
		if (e->hooks.event)
			e->hooks.event(e->hooks.arg, &ev);
	}
	s->used = false;
}

static void emit(struct engine *e, struct flow_event *ev, uint64_t now)
{
	if (!ev->name)
		ev->name = "";
	uint32_t h = event_hash(e, ev);
	struct agg_slot *s = &e->agg[h % AGG_SLOTS];
	if (s->used && now - s->first >= AGG_WINDOW_NS)
		agg_flush_slot(e, s);
	if (s->used && s->hash == h) {
		struct flow_event cmp = s->ev;
		cmp.name = s->name;
		cmp.qname = s->ev.qname ? s->qname : NULL;
		if (event_same(&cmp, ev)) {
			if (s->pending++ == 0)
				s->rep_first = now;
			s->rep_last = now;
			return;
		}
	}
	agg_flush_slot(e, s);
	s->used = true;
	s->hash = h;
	s->first = now;
	s->pending = 0;
	ev->aggregated = false;
	ev->first_ns = ev->last_ns = 0;
	s->ev = *ev;
	snprintf(s->name, sizeof s->name, "%s", ev->name);
	snprintf(s->qname, sizeof s->qname, "%s", ev->qname ? ev->qname : "");
	ev->count = 1;
	if (e->hooks.event)
		e->hooks.event(e->hooks.arg, ev);
}

static void agg_flush_all(struct engine *e, uint64_t now, bool force)
{
	for (size_t i = 0; i < AGG_SLOTS; i++)
		if (e->agg[i].used && (force || now - e->agg[i].first >= AGG_WINDOW_NS))
			agg_flush_slot(e, &e->agg[i]);
}

/* ---- cloud metadata guard (issue 12) ---- */

bool engine_is_metadata(const struct addr *a)
{
	static const uint8_t imds6[16] = {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02};
	const uint8_t *v4 = NULL;
	if (a->family == ADDR_V4) {
		v4 = a->b;
	} else if (a->family == ADDR_V6) {
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
		if (memcmp(a->b, imds6, 16) == 0)
			return true;
		/* ::ffff:169.254.169.254 and the NAT64 well-known prefix reach it too */
		if (memcmp(a->b, mapped, 12) == 0 || memcmp(a->b, nat64, 12) == 0)
			v4 = a->b + 12;
	}
	return v4 && v4[0] == 169 && v4[1] == 254 &&
	       ((v4[2] == 169 && v4[3] == 254) || (v4[2] == 170 && v4[3] == 2));
}

/* Is dst a metadata endpoint the guard denies (no IP entry lists it)? */
static bool metadata_guarded(const struct engine *e, const struct addr *dst, uint16_t port)
{
	return !e->cfg.metadata_allow && engine_is_metadata(dst) &&
	       !policy_match_addr(e->policy, dst, port, NULL);
}

static void metadata_flag(const struct engine *e, const struct addr *dst, struct indicators *ind)
{
	if (e->cfg.metadata_allow || !engine_is_metadata(dst))
		return;
	ind->bits |= IND_METADATA;
	ind->severity = ind_severity(ind);
	if (e->cfg.metadata_critical)
		ind->severity = SEVERITY_CRITICAL;
}

/* ---- indicators that need memory ---- */

/* Was (src, dst, dport) denied BEACON_COUNT times within the window (this one included)? */
static bool beacon_note(struct engine *e, const struct flow_key *k, uint64_t now)
{
	uint64_t h0 = e->seed ^ k->dport;
	h0 = mix_bytes(h0, &k->src, sizeof k->src);
	uint32_t h = mix_bytes(h0, &k->dst, sizeof k->dst);
	struct beacon_slot *s = &e->beacon[h % BEACON_SLOTS];
	if (s->hash != h || s->dport != k->dport || !addr_eq(&s->src, &k->src) ||
	    !addr_eq(&s->dst, &k->dst)) {
		*s = (struct beacon_slot){
		    .hash = h, .src = k->src, .dst = k->dst, .dport = k->dport};
	}
	if (s->n == BEACON_COUNT) {
		memmove(s->t, s->t + 1, (BEACON_COUNT - 1) * sizeof *s->t);
		s->n--;
	}
	s->t[s->n++] = now;
	return s->n == BEACON_COUNT && now - s->t[0] <= BEACON_WINDOW_NS;
}

static const char *registrable(const struct engine *e, const char *name, char *buf)
{
	if (e->cfg.registrable)
		return e->cfg.registrable(name, e->cfg.registrable_arg);
	/* No public suffix list: the last two labels. */
	const char *last = NULL, *prev = NULL;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			prev = last;
			last = p;
		}
	}
	(void)buf;
	return prev ? prev + 1 : name;
}

static int cmp_len(const void *a, const void *b)
{
	const struct reg_entry *x = a, *y = b;
	size_t la = strlen(x->reg), lb = strlen(y->reg);
	if (la != lb)
		return la < lb ? -1 : 1;
	int c = strcmp(x->reg, y->reg);
	return c ? c : strcmp(x->name, y->name);
}

static void regs_free(struct engine *e)
{
	for (size_t i = 0; i < e->nregs; i++) {
		free(e->regs[i].reg);
		free(e->regs[i].name);
	}
	free(e->regs);
	e->regs = NULL;
	e->nregs = e->capregs = 0;
	e->regs_built = false;
	typo_free(e->typo);
	e->typo = NULL;
}

static void regs_collect(const char *name, bool wildcard, void *arg)
{
	struct engine *e = arg;
	char tmp[NAME_MAX_LEN + 1];
	const char *r = registrable(e, name, tmp);
	if (!r || !*r)
		return;
	if (e->nregs == e->capregs) {
		size_t nc = e->capregs ? e->capregs * 2 : 64;
		struct reg_entry *n = realloc(e->regs, nc * sizeof *n);
		if (!n)
			return;
		e->regs = n;
		e->capregs = nc;
	}
	char shown[NAME_MAX_LEN + 3];
	snprintf(shown, sizeof shown, "%s%s", wildcard ? "*." : "", name);
	struct reg_entry re = {strdup(r), strdup(shown)};
	if (re.reg && re.name) {
		e->regs[e->nregs++] = re;
	} else {
		free(re.reg);
		free(re.name);
	}
}

static void regs_build(struct engine *e)
{
	if (e->regs_built)
		return;
	e->regs_built = true;
	policy_foreach_name(e->policy, regs_collect, e);
	if (!e->nregs)
		return;
	qsort(e->regs, e->nregs, sizeof *e->regs, cmp_len);
	size_t u = 0;
	for (size_t i = 0; i < e->nregs; i++) {
		if (u && strcmp(e->regs[u - 1].reg, e->regs[i].reg) == 0 &&
		    strcmp(e->regs[u - 1].name, e->regs[i].name) == 0) {
			free(e->regs[i].reg);
			free(e->regs[i].name);
		} else {
			e->regs[u++] = e->regs[i];
		}
	}
	e->nregs = u;
	const char **v = malloc(u * sizeof *v);
	for (size_t i = 0; v && i < u; i++)
		v[i] = e->regs[i].reg;
	e->typo = v ? typo_build(v, u) : NULL; /* NULL (ENOMEM): no look-alike hints */
	free(v);
}

/*
 * A denied name whose registrable domain is not an allowed one but is
 * within a small edit distance (after the homoglyph fold) of one. imitates
 * gets the allowed name it copies: the one with the same labels below the
 * registrable domain ("updates.examp1e.com" -> "updates.example.com"), else
 * the first allowed name under that domain.
 */
static void typosquat_check(struct engine *e, const char *name, struct indicators *ind)
{
	if (!name || !*name)
		return;
	regs_build(e);
	char tmp[NAME_MAX_LEN + 1];
	const char *r = registrable(e, name, tmp);
	if (!r || !*r)
		return;
	char reg[NAME_MAX_LEN + 1];
	snprintf(reg, sizeof reg, "%s", r);
	size_t len = strlen(reg), nlen = strlen(name);
	size_t below = nlen > len ? nlen - len : 0; /* "updates." */
	unsigned max = len >= 12 ? 2 : 1;
	if (!e->typo || typo_has(e->typo, reg))
		return; /* a name under an allowed domain: not a look-alike */
	/* An IDN domain is compared by its ASCII look-alike ("xn--pple-43d.com"
	 * reads as "apple.com"), against every allowed domain: denied names only. */
	char skel[NAME_MAX_LEN + 1];
	const char *cmp = reg;
	if (ind_confusable_skeleton(reg, skel, sizeof skel)) {
		cmp = skel;
		max = strlen(skel) >= 12 ? 2 : 1;
	}
	/* The first allowed domain near cmp (typosquat.c, O(1)-ish at 100k);
	 * among its entries (adjacent), the one with the same labels below. */
	size_t first = typo_nearest(e->typo, cmp, max);
	if (first >= e->nregs)
		return;
	const struct reg_entry *best = &e->regs[first];
	for (size_t i = first; i < e->nregs && strcmp(e->regs[i].reg, best->reg) == 0; i++) {
		const struct reg_entry *c = &e->regs[i];
		size_t cl = strlen(c->name), cr = strlen(c->reg);
		if (cl - cr == below && strncmp(c->name, name, below) == 0) {
			best = c;
			break;
		}
	}
	if (!best)
		return;
	ind->bits |= IND_TYPOSQUAT;
	snprintf(ind->imitates, sizeof ind->imitates, "%s", best->name);
}

/*
 * A name that carries a credential (in clear or encoded in its labels) is
 * never logged as is: everything left of its registrable domain becomes
 * "[redacted]" (brackets cannot occur in a DNS name). Returns name itself
 * when it carries none.
 */
static const char *redact_name(const struct engine *e, const char *name, char *buf, size_t cap)
{
	struct indicators probe;
	memset(&probe, 0, sizeof probe);
	ind_scan_dns_name(&probe, name);
	if (probe.ncreds == 0)
		return name;
	char tmp[NAME_MAX_LEN + 1];
	const char *reg = registrable(e, name, tmp);
	if (reg && *reg && reg != name && strlen(reg) < strlen(name))
		snprintf(buf, cap, "[redacted].%s", reg);
	else
		snprintf(buf, cap, "[redacted]");
	return buf;
}

/* Distinct denied names under one parent within the window. */
static bool dns_parent_note(struct engine *e, const char *qname, uint64_t now)
{
	char tmp[NAME_MAX_LEN + 1];
	const char *parent = registrable(e, qname, tmp);
	if (!parent || !*parent) {
		const char *dot = strchr(qname, '.');
		parent = dot ? dot + 1 : qname;
	}
	uint32_t h = mix_bytes(e->seed, parent, strlen(parent));
	uint32_t nh = mix_bytes(e->seed + 1, qname, strlen(qname));
	struct dnsp_slot *s = &e->dnsp[h % DNSP_SLOTS];
	if (s->hash != h || strcmp(s->parent, parent) != 0 || now - s->start > DNSP_WINDOW_NS) {
		memset(s, 0, sizeof *s);
		s->hash = h;
		snprintf(s->parent, sizeof s->parent, "%s", parent);
		s->start = now;
	}
	size_t stored = s->distinct < DNSP_HASHES ? s->distinct : DNSP_HASHES;
	for (size_t i = 0; i < stored; i++)
		if (s->names[i] == nh)
			return s->distinct >= DNSP_THRESHOLD;
	if (s->distinct < DNSP_HASHES)
		s->names[s->distinct] = nh;
	s->distinct++;
	return s->distinct >= DNSP_THRESHOLD;
}

/* ---- verdicts ---- */

static void verdict(struct engine *e, uint64_t h, enum verdict v)
{
	if (e->hooks.verdict)
		e->hooks.verdict(e->hooks.arg, h, v);
}

static void release_held(struct engine *e, struct flow *f, enum verdict v)
{
	/* Detach first: a verdict callback must not see the list half-issued. */
	uint64_t *held = f->held;
	size_t n = f->nheld, cap = f->capheld;
	f->held = NULL;
	f->nheld = f->capheld = 0;
	e->held_packets -= n;
	e->held_bytes_total -= f->held_bytes;
	f->held_bytes = 0;
	flow_held_sync(f);
	for (size_t i = 0; i < n; i++)
		verdict(e, held[i], v);
	flow_held_free(e->ft, held, cap);
}

/*
 * Audit mode holds nothing: if packet h (len payload bytes) is still the
 * last one held by an undecided flow, it passes now.
 */
static void audit_pass_last(struct engine *e, struct flow *f, uint64_t h, size_t len)
{
	if (e->cfg.enforce || f->state == FLOW_DECIDED || !f->nheld || f->held[f->nheld - 1] != h)
		return;
	f->nheld--;
	e->held_packets--;
	e->held_bytes_total -= len;
	f->held_bytes -= len;
	flow_held_sync(f);
	verdict(e, h, VERDICT_PASS);
}

static void event_from_key(struct flow_event *ev, const struct flow_key *k)
{
	ev->proto = k->proto;
	ev->src = k->src;
	ev->dst = k->dst;
	ev->sport = k->sport;
	ev->dport = k->dport;
}

struct scan_ctx {
	struct indicators *ind;
};

static void scan_run(const uint8_t *p, size_t n, void *arg)
{
	ind_scan_credentials(((struct scan_ctx *)arg)->ind, p, n);
}

struct decision {
	bool allow;
	enum reason reason;
	const char *detail;
	uint32_t ind;
	const struct policy_rule *rule;
	const uint8_t *extra; /* payload not in the stream (UDP), scanned on deny */
	size_t extra_len;
};

static int http_insp_start(struct engine *e, struct flow *f, struct decision *d, uint64_t now);

/* Decide f: event, verdict to every held packet, flow moves to the decided list. */
static void flow_decide(struct engine *e, struct flow *f, const struct decision *din, uint64_t now)
{
	struct decision audit_d, *d = &audit_d;
	*d = *din;
	if (f->audit_reason != REASON_NONE) {
		/* Audit: the SYN would have been denied; the payload only named it. */
		if (d->allow) {
			d->allow = false;
			d->reason = f->audit_reason;
			d->detail = NULL;
			d->rule = NULL;
		}
		d->ind |= f->audit_ind;
	}
	if (d->allow && metadata_guarded(e, &f->key.dst, f->key.dport)) {
		/* allowed by a name (DNS binding, verify): never a metadata endpoint */
		d->allow = false;
		d->reason = REASON_IP_NOT_ALLOWED;
		d->detail = NULL;
		d->rule = NULL;
	}
	struct flow_event ev = {.kind = d->allow ? EVENT_ALLOW : EVENT_DENY};
	event_from_key(&ev, &f->key);
	ev.name = f->name;
	ev.name_source = f->name_source;
	ev.reason = d->allow ? REASON_NONE : d->reason;
	ev.detail = d->detail;
	ev.rule = d->allow ? d->rule : NULL;
	ev.has_uid = f->uid >= 0;
	ev.uid = f->uid >= 0 ? (uint32_t)f->uid : 0;
	ev.enforced = d->allow || e->cfg.enforce;
	enum verdict v = VERDICT_ALLOW;
	char redacted[NAME_MAX_LEN + 16];
	int insp = d->allow ? http_insp_start(e, f, d, now) : 0;
	if (insp > 0) {
		v = VERDICT_INSPECT;
	} else if (insp < 0) {
		/* a later head in the held bytes was refused: d now says why */
		ev.kind = EVENT_DENY;
		ev.name = f->name;
		ev.reason = d->reason;
		ev.detail = d->detail;
		ev.rule = NULL;
		ev.enforced = e->cfg.enforce;
		d->allow = false;
	}
	if (!d->allow) {
		ev.ind.bits = d->ind;
		if (f->quic)
			ev.ind.bits |= IND_QUIC;
		if (f->split)
			ev.ind.bits |= IND_SPLIT_HELLO;
		struct scan_ctx sc = {&ev.ind};
		if (f->buf)
			flow_stream_runs(f, scan_run, &sc);
		if (d->extra)
			ind_scan_credentials(&ev.ind, d->extra, d->extra_len);
		if (f->name[0]) {
			ind_scan_dns_name(&ev.ind, f->name);
			if (d->reason == REASON_NAME_NOT_ALLOWED ||
			    d->reason == REASON_SNI_IP_MISMATCH)
				typosquat_check(e, f->name, &ev.ind);
			ev.name = redact_name(e, f->name, redacted, sizeof redacted);
		}
		if (beacon_note(e, &f->key, now))
			ev.ind.bits |= IND_BEACON;
		ev.ind.severity = ind_severity(&ev.ind);
		metadata_flag(e, &f->key.dst, &ev.ind);
		v = e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW;
	}
	/* State first: a hook that re-enters sees a decided flow. */
	uint64_t *held = f->held;
	size_t nheld = f->nheld, capheld = f->capheld;
	f->held = NULL;
	f->nheld = f->capheld = 0;
	e->held_packets -= nheld;
	e->held_bytes_total -= f->held_bytes;
	f->held_bytes = 0;
	f->decided_ns = now;
	flow_mark_decided(e->ft, f, v);
	if (d->allow) /* unrecorded (full, ENOMEM): judged by its address on revoke */
		(void)conn_note(e->conns, &f->key, f->name, f->name_source, f->uid);
	for (size_t i = 0; i < nheld; i++)
		verdict(e, held[i], v);
	flow_held_free(e->ft, held, capheld);
	emit(e, &ev, now);
}

static void decide_deny(struct engine *e, struct flow *f, enum reason r, const char *detail,
                        uint32_t ind, uint64_t now)
{
	struct decision d = {.reason = r, .detail = detail, .ind = ind};
	flow_decide(e, f, &d, now);
}

static void decide_allow(struct engine *e, struct flow *f, const struct policy_rule *rule,
                         uint64_t now)
{
	struct decision d = {.allow = true, .rule = rule};
	flow_decide(e, f, &d, now);
}

/* A packet with no flow to hold it: its own verdict and event. */
static void deny_packet(struct engine *e, uint64_t h, const struct pkt *p, enum reason r,
                        const char *detail, uint32_t ind, int64_t uid, uint64_t now)
{
	struct flow_event ev = {.kind = EVENT_DENY, .reason = r, .detail = detail, .name = ""};
	if (p) {
		ev.proto = p->proto;
		ev.src = p->src;
		ev.dst = p->dst;
		ev.sport = p->sport;
		ev.dport = p->dport;
		if (p->payload_len)
			ind_scan_credentials(&ev.ind, p->payload, p->payload_len);
	}
	ev.ind.bits |= ind;
	ev.ind.severity = ind_severity(&ev.ind);
	if (p)
		metadata_flag(e, &p->dst, &ev.ind);
	ev.has_uid = uid >= 0;
	ev.uid = uid >= 0 ? (uint32_t)uid : 0;
	ev.enforced = e->cfg.enforce;
	verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
	emit(e, &ev, now);
}

/* ---- name decisions ---- */

struct cand {
	const struct engine *e;
	uint16_t port;
	char *name;
	const struct policy_rule *rule;
	bool known;
};

static bool cand_fn(const char *name, void *arg)
{
	struct cand *c = arg;
	bool known = false;
	const struct policy_rule *r = policy_match_name(c->e->policy, name, c->port, &known);
	c->known |= known;
	if (!r)
		return false;
	c->rule = r;
	if (c->name)
		snprintf(c->name, NAME_MAX_LEN + 1, "%s", name);
	return true;
}

/* Is dst bound to a name the policy allows on port? Fills name (may be NULL). */
static const struct policy_rule *bound_allowed(const struct engine *e, const struct addr *dst,
                                               uint16_t port, char *name, bool *known, uint64_t now)
{
	struct cand c = {.e = e, .port = port, .name = name};
	bind_any(e->bind, dst, now, cand_fn, &c);
	if (known)
		*known = c.known;
	return c.rule;
}

static void request_resolve(struct engine *e, const char *name, uint64_t now)
{
	struct inflight *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < INFLIGHT_MAX; i++) {
		struct inflight *s = &e->inflight[i];
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (strcmp(s->name, name) == 0)
			return; /* coalesced: one resolution per name */
		if (!oldest || s->since < oldest->since)
			oldest = s;
	}
	struct inflight *s = free_slot ? free_slot : oldest;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->since = now;
	s->used = true;
	if (e->hooks.resolve)
		e->hooks.resolve(e->hooks.arg, s->name);
}

static void inflight_done(struct engine *e, const char *name)
{
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (e->inflight[i].used && strcmp(e->inflight[i].name, name) == 0)
			e->inflight[i].used = false;
}

/*
 * The flow's first payload named `name` (SNI, Host, QUIC SNI). Allowed if
 * the policy allows it on dport and dst is in an allowed range or bound to
 * the name; verify mode asks for a resolution and waits (the resolve hook
 * is the last thing called).
 */
static void decide_name(struct engine *e, struct flow *f, const char *name, enum name_source src,
                        uint64_t now)
{
	snprintf(f->name, sizeof f->name, "%s", name);
	f->name_source = src;
	bool known = false;
	const struct policy_rule *rule = policy_match_name(e->policy, name, f->key.dport, &known);
	if (!rule) {
		decide_deny(e, f, known ? REASON_PORT_NOT_ALLOWED : REASON_NAME_NOT_ALLOWED, NULL,
		            0, now);
		return;
	}
	if (policy_match_addr(e->policy, &f->key.dst, f->key.dport, NULL) ||
	    bind_has(e->bind, &f->key.dst, name, now)) {
		decide_allow(e, f, rule, now);
		return;
	}
	if (e->cfg.unknown_ip == UNKNOWN_IP_VERIFY) {
		f->state = FLOW_WAIT_RESOLVE;
		flow_hold_start(e->ft, f, now);
		request_resolve(e, f->name, now);
		return;
	}
	decide_deny(e, f, REASON_SNI_IP_MISMATCH, NULL, IND_SNI_SPOOF, now);
}

/* Payload that is neither TLS nor HTTP. */
static void decide_other(struct engine *e, struct flow *f, uint64_t now)
{
	uint16_t port = f->key.dport;
	if (port != 80 && port != 443) {
		char name[NAME_MAX_LEN + 1];
		const struct policy_rule *r = bound_allowed(e, &f->key.dst, port, name, NULL, now);
		if (r) {
			snprintf(f->name, sizeof f->name, "%s", name);
			f->name_source = NAME_SOURCE_DNS;
			decide_allow(e, f, r, now);
			return;
		}
	}
	decide_deny(e, f, REASON_PROTOCOL_NOT_ALLOWED, NULL, 0, now);
}

static void decide_hello(struct engine *e, struct flow *f, const struct tls_hello *hello,
                         enum name_source src, uint64_t now)
{
	if (hello->ech && e->cfg.ech == ECH_DENY) {
		if (hello->has_sni) {
			snprintf(f->name, sizeof f->name, "%s", hello->sni);
			f->name_source = src;
		}
		decide_deny(e, f, REASON_ECH, NULL, IND_ECH, now);
		return;
	}
	if (!hello->has_sni) {
		decide_deny(e, f, REASON_NO_NAME, NULL, 0, now);
		return;
	}
	decide_name(e, f, hello->sni, src, now);
}

/* Try to decide a TCP flow from the contiguous start of its stream. */
static void try_decide_stream(struct engine *e, struct flow *f, uint64_t now)
{
	struct cur c = cur_make(f->buf, f->contig);
	if (f->contig == 0)
		return;
	if (tls_looks_like(c)) {
		struct tls_hello hello;
		enum tls_err why = TLS_OK;
		memset(&hello, 0, sizeof hello);
		enum parse r = tls_client_hello(c, &hello, &why);
		if (r == PARSE_MORE)
			return;
		if (r == PARSE_BAD) {
			uint32_t ind = 0;
			if (why == TLS_SNI_BAD_NAME && hello.sni_err == NAME_IP_LITERAL)
				ind |= IND_IP_LITERAL;
			decide_deny(e, f, REASON_MALFORMED, tls_err_name(why), ind, now);
			return;
		}
		f->split = hello.records > 1 || f->segments > 1;
		decide_hello(e, f, &hello, NAME_SOURCE_SNI, now);
		return;
	}
	if (http_looks_like(c)) {
		struct http_req req;
		enum http_err why = HTTP_OK;
		memset(&req, 0, sizeof req);
		enum parse r = http_request(c, &req, &why);
		if (r == PARSE_MORE)
			return;
		if (r == PARSE_OK) {
			decide_name(e, f, req.host, NAME_SOURCE_HTTP_HOST, now);
			return;
		}
		switch (why) {
		case HTTP_CONNECT:
			decide_deny(e, f, REASON_PROTOCOL_NOT_ALLOWED, http_err_name(why), 0, now);
			return;
		case HTTP_H2_PREFACE:
		case HTTP_NO_HOST:
			decide_deny(e, f, REASON_NO_NAME, http_err_name(why), 0, now);
			return;
		case HTTP_BAD_HOST:
			if (req.host_err == NAME_IP_LITERAL) {
				decide_deny(e, f, REASON_NO_NAME, http_err_name(why),
				            IND_IP_LITERAL, now);
				return;
			}
			break;
		case HTTP_NOT_HTTP:
		case HTTP_BAD_REQUEST_LINE:
		case HTTP_BAD_VERSION:
			/* Started like a method but is not HTTP (e.g. SMTP "EHLO x"). */
			if (f->key.dport != 80 && f->key.dport != 443) {
				decide_other(e, f, now);
				return;
			}
			break;
		default:
			break;
		}
		decide_deny(e, f, REASON_MALFORMED, http_err_name(why), 0, now);
		return;
	}
	decide_other(e, f, now);
}


/* ---- plain HTTP: every request head of the connection is decided ---- */

/*
 * A plain HTTP connection, once its first request is allowed, gets
 * VERDICT_INSPECT: the ruleset passes replies and the client's bare ACKs in
 * the kernel and queues every client segment with payload (and its FIN and
 * RST). Those are read in sequence order through http_stream_next, so every
 * request head (keep-alive, pipelining) has its Host checked like the first
 * one: allowed on the port and bound to the destination; a refused head
 * denies the connection (reset) and its bytes are never delivered. Bodies
 * are skipped by counting (Content-Length, chunk sizes), never held.
 *
 * What is read must be what the server reads: a segment ahead of the
 * stream is dropped (the client sends it again in order); bytes already
 * read may come again (a retransmission) only as they were: compared with
 * the ring of the last FLOW_INSPECT_RING bytes; older than the ring only
 * inside a Content-Length body (its bytes cannot change the framing).
 * Urgent data, data without ACK or with RST are refused as on undecided
 * flows; a bad checksum is dropped (the server would drop it too). The
 * tail of an unfinished head passes and is kept: the server cannot act on a
 * head before its end, which comes in a segment judged before it is
 * released.
 */
#define INSPECT_IDLE_NS (600 * NS_PER_S)
#define INSPECT_FLOWS_MAX 4096

static bool tcp_csum_ok(const struct pkt *p);

struct http_refusal {
	enum reason reason;
	const char *detail;
	uint32_t ind;
	char name[NAME_MAX_LEN + 1];
	const uint8_t *head; /* the refused bytes (borrowed), scanned for credentials */
	size_t head_len;
};

/* Is the Host of a later request as good as the first one's was? */
static bool http_insp_host_ok(struct engine *e, const struct flow *f, const struct http_req *req,
                              struct http_refusal *why, uint64_t now)
{
	bool known = false;
	snprintf(why->name, sizeof why->name, "%s", req->host);
	if (!policy_match_name(e->policy, req->host, f->key.dport, &known)) {
		why->reason = known ? REASON_PORT_NOT_ALLOWED : REASON_NAME_NOT_ALLOWED;
		return false;
	}
	if (policy_match_addr(e->policy, &f->key.dst, f->key.dport, NULL) ||
	    bind_has(e->bind, &f->key.dst, req->host, now))
		return true;
	why->reason = REASON_SNI_IP_MISMATCH; /* verify mode does not wait mid-connection */
	why->ind = IND_SNI_SPOOF;
	return false;
}

/* The reasons of try_decide_stream for a head it would refuse. */
static void http_insp_bad(enum http_err err, const struct http_req *req, struct http_refusal *why)
{
	why->detail = http_err_name(err);
	switch (err) {
	case HTTP_CONNECT:
	case HTTP_UPGRADE:
		why->reason = REASON_PROTOCOL_NOT_ALLOWED;
		break;
	case HTTP_H2_PREFACE:
	case HTTP_NO_HOST:
		why->reason = REASON_NO_NAME;
		break;
	case HTTP_BAD_HOST:
		if (req->host_err == NAME_IP_LITERAL) {
			why->reason = REASON_NO_NAME;
			why->ind = IND_IP_LITERAL;
			break;
		}
		why->reason = REASON_MALFORMED;
		break;
	default:
		why->reason = REASON_MALFORMED;
		break;
	}
}

/* Keep the n bytes of an unfinished head (n < HTTP_HEAD_MAX). */
static bool http_insp_keep(struct http_insp *hi, const uint8_t *p, size_t n,
                           struct http_refusal *why)
{
	if (!hi->head && !(hi->head = malloc(HTTP_HEAD_MAX))) {
		why->reason = REASON_INCOMPLETE;
		why->detail = "out_of_memory";
		return false;
	}
	memmove(hi->head, p, n);
	hi->have = n;
	return true;
}

/*
 * Read n bytes of the client's stream. false: a head was refused (*why);
 * true: all read, an unfinished head kept in hi->head.
 */
static bool http_insp_feed(struct engine *e, struct flow *f, const uint8_t *p, size_t n,
                           struct http_refusal *why, uint64_t now)
{
	struct http_insp *hi = f->http;
	struct http_req req;
	enum http_err err = HTTP_OK;
	size_t used;

	memset(why, 0, sizeof *why);
	while (n > 0) {
		if (hi->have > 0) {
			/* finish the kept head from p */
			size_t old = hi->have;
			size_t take = HTTP_HEAD_MAX - old < n ? HTTP_HEAD_MAX - old : n;
			memcpy(hi->head + old, p, take);
			memset(&req, 0, sizeof req);
			enum parse r = http_stream_next(&hi->st, cur_make(hi->head, old + take), &req,
			                                &used, &err);
			if (r == PARSE_BAD) {
				why->head = hi->head;
				why->head_len = old + take;
				http_insp_bad(err, &req, why);
				return false;
			}
			if (r == PARSE_MORE) {
				/* take < n cannot be: a full buffer is too_large */
				hi->have = old + take;
				return true;
			}
			if (!http_insp_host_ok(e, f, &req, why, now)) {
				why->head = hi->head;
				why->head_len = used;
				return false;
			}
			hi->have = 0;
			free(hi->head);
			hi->head = NULL;
			p += used - old; /* the head did not end in the kept bytes: used > old */
			n -= used - old;
			continue;
		}
		memset(&req, 0, sizeof req);
		enum parse r = http_stream_next(&hi->st, cur_make(p, n), &req, &used, &err);
		if (r == PARSE_BAD) {
			why->head = p + used;
			why->head_len = n - used;
			http_insp_bad(err, &req, why);
			return false;
		}
		if (r == PARSE_OK && !http_insp_host_ok(e, f, &req, why, now)) {
			why->head = p + used - req.head_len;
			why->head_len = req.head_len;
			return false;
		}
		p += used;
		n -= used;
		if (r == PARSE_MORE && n > 0)
			return http_insp_keep(hi, p, n, why); /* n < HTTP_HEAD_MAX: else too_large */
	}
	return true;
}

/* The bytes [seq, seq + n) were read: into the ring. */
static void http_insp_ring(struct http_insp *hi, uint32_t seq, const uint8_t *p, size_t n)
{
	if (n > FLOW_INSPECT_RING) {
		seq += (uint32_t)(n - FLOW_INSPECT_RING);
		p += n - FLOW_INSPECT_RING;
		n = FLOW_INSPECT_RING;
	}
	for (size_t i = 0; i < n; i++)
		hi->ring[(seq + (uint32_t)i) % FLOW_INSPECT_RING] = p[i];
}

/*
 * Called by flow_decide for an allowed flow: plain HTTP over TCP (enforcing)
 * becomes INSPECT (1), its held bytes read past the first head; -1 and d
 * turned into a refusal when a later held head is refused; 0 with d
 * untouched when the flow is not one to inspect.
 */
static int http_insp_start(struct engine *e, struct flow *f, struct decision *d, uint64_t now)
{
	if (!e->cfg.enforce || f->key.proto != IPPROTO_TCP ||
	    f->name_source != NAME_SOURCE_HTTP_HOST || !f->buf || !f->have_isn ||
	    f->audit_reason != REASON_NONE)
		return 0;
	struct http_refusal why = {0}; /* reason details are static strings */
	if (flow_inspecting(e->ft) >= INSPECT_FLOWS_MAX) {
		why.reason = REASON_INCOMPLETE;
		why.detail = "inspect_flows";
		goto refuse;
	}
	struct http_insp *hi = flow_inspect_new(e->ft, f);
	if (!hi) {
		why.reason = REASON_INCOMPLETE;
		why.detail = "out_of_memory";
		goto refuse;
	}
	hi->next_seq = f->isn + 1 + (uint32_t)f->contig;
	hi->sig_end = hi->next_seq;
	hi->read = f->contig;
	hi->expire_ns = now + INSPECT_IDLE_NS;
	if (f->end > f->contig) {
		/* bytes beyond a hole would be released unread */
		why.reason = REASON_INCOMPLETE;
		why.detail = "http_out_of_order";
		goto refuse;
	}
	http_insp_ring(hi, f->isn + 1, f->buf, f->contig);
	if (http_insp_feed(e, f, f->buf, f->contig, &why, now))
		return 1;
	if (why.name[0])
		snprintf(f->name, sizeof f->name, "%s", why.name);
refuse:
	flow_inspect_free(e->ft, f); /* why.head pointed into f->buf or the freed head: unused */
	d->rule = NULL;
	d->reason = why.reason;
	d->detail = why.detail;
	d->ind |= why.ind;
	return -1;
}

/* Packet h of INSPECT flow f is refused: the connection is denied with it. */
static void http_insp_refuse(struct engine *e, struct flow *f, uint64_t h,
                             const struct http_refusal *why, uint64_t now)
{
	if (why->name[0]) {
		snprintf(f->name, sizeof f->name, "%s", why->name);
		f->name_source = NAME_SOURCE_HTTP_HOST;
	}
	bool held = flow_hold_packet(f, h) == 0;
	if (held)
		e->held_packets++;
	struct decision d = {.reason = why->reason,
	                     .detail = why->detail,
	                     .ind = why->ind,
	                     .extra = why->head,
	                     .extra_len = why->head_len};
	flow_decide(e, f, &d, now); /* scans why->head: free f->http only after */
	if (!held)
		verdict(e, h, VERDICT_DENY);
	flow_inspect_free(e->ft, f);
}

/* A client packet of an INSPECT flow. */
static void http_insp_packet(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                             uint64_t now)
{
	struct http_insp *hi = f->http;
	struct http_refusal why;
	memset(&why, 0, sizeof why);
	if (!hi) {
		verdict(e, h, VERDICT_DENY); /* cannot be: INSPECT flows have their stream */
		return;
	}
	bool closing = p->tcp_flags & (PKT_TCP_FIN | PKT_TCP_RST);
	uint64_t expire = now + (closing ? DECIDED_LINGER_NS : INSPECT_IDLE_NS);
	if (p->payload_len == 0) {
		if (closing || hi->expire_ns < expire)
			hi->expire_ns = expire;
		verdict(e, h, VERDICT_INSPECT);
		return;
	}
	if ((e->pkt_flags & ENGINE_PKT_CSUM_VALID) && !tcp_csum_ok(p)) {
		verdict(e, h, VERDICT_DROP); /* the server drops it too: not read */
		return;
	}
	why.reason = REASON_MALFORMED;
	if (p->tcp_flags & PKT_TCP_URG)
		why.detail = "tcp_urgent";
	else if (!(p->tcp_flags & PKT_TCP_ACK))
		why.detail = "data_without_ack";
	else if (p->tcp_flags & PKT_TCP_RST)
		why.detail = "data_with_rst";
	if (why.detail) {
		why.head = p->payload;
		why.head_len = p->payload_len;
		http_insp_refuse(e, f, h, &why, now);
		return;
	}
	uint32_t start = p->seq + ((p->tcp_flags & PKT_TCP_SYN) ? 1u : 0u);
	uint32_t end = start + (uint32_t)p->payload_len;
	if ((int32_t)(start - hi->next_seq) > 0) {
		verdict(e, h, VERDICT_DROP); /* ahead of the stream: the client sends it again */
		return;
	}
	/* Bytes already read: as they were. */
	uint32_t old_end = (int32_t)(end - hi->next_seq) < 0 ? end : hi->next_seq;
	uint32_t ring_have = hi->read < FLOW_INSPECT_RING ? (uint32_t)hi->read : FLOW_INSPECT_RING;
	uint32_t ring_start = hi->next_seq - ring_have, from = start;
	if ((int32_t)(ring_start - start) > 0) {
		if ((int32_t)(hi->sig_end - start) > 0) {
			why.detail = "retransmit_too_old";
			why.head = p->payload;
			why.head_len = p->payload_len;
			http_insp_refuse(e, f, h, &why, now);
			return;
		}
		from = ring_start;
	}
	for (uint32_t s = from; (int32_t)(old_end - s) > 0; s++) {
		if (p->payload[s - start] != hi->ring[s % FLOW_INSPECT_RING]) {
			why.detail = "retransmit_mismatch";
			why.head = p->payload;
			why.head_len = p->payload_len;
			http_insp_refuse(e, f, h, &why, now);
			return;
		}
	}
	hi->expire_ns = expire;
	if ((int32_t)(end - hi->next_seq) <= 0) {
		verdict(e, h, VERDICT_INSPECT);
		return;
	}
	size_t off = (size_t)(uint32_t)(hi->next_seq - start), n = p->payload_len - off;
	size_t body = hi->st.st == HTTP_ST_LENGTH ? (hi->st.left < n ? (size_t)hi->st.left : n) : 0;
	if (!http_insp_feed(e, f, p->payload + off, n, &why, now)) {
		http_insp_refuse(e, f, h, &why, now);
		return;
	}
	http_insp_ring(hi, hi->next_seq, p->payload + off, n);
	if (body < n)
		hi->sig_end = end;
	hi->read += n;
	hi->next_seq = end;
	verdict(e, h, VERDICT_INSPECT);
}

/* ---- TCP ---- */

/*
 * The bound a flow that just held a packet went past, as the deny detail,
 * or NULL. Past a count bound the flow is denied, never the packet passed:
 * the offending flow is the one asking to hold one more (a source's flows
 * past its share, or any flow once all of them hold the total).
 */
static const char *hold_bound(const struct engine *e, const struct flow *f)
{
	if (f->segments > e->cfg.hold_segments)
		return "hold_segments";
	if (e->held_bytes_total > e->cfg.hold_bytes_total)
		return "hold_bytes_total";
	if (flow_src_held(f) > e->cfg.hold_packets_source)
		return "hold_packets_source";
	if (e->held_packets > e->cfg.hold_packets_total)
		return "hold_packets_total";
	return NULL;
}

static const char *refuse_detail(enum flow_refuse r)
{
	switch (r) {
	case FLOW_REFUSE_SOURCE:
		return "syn_flows_source";
	case FLOW_REFUSE_NOMEM:
		return "out_of_memory";
	default:
		return "flow_table_full";
	}
}

/* Packet h ends undecided flow f with it: denied (r, detail). */
static void tcp_deny_with(struct engine *e, struct flow *f, uint64_t h, enum reason r,
                          const char *detail, uint64_t now)
{
	bool held = flow_hold_packet(f, h) == 0;
	if (held)
		e->held_packets++;
	decide_deny(e, f, r, detail, 0, now);
	if (!held)
		verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
}

/*
 * A payload-less packet of an undecided flow (the SYN, the handshake ACK,
 * ACKs of server data, FIN, RST) passes before the decision: with
 * unknown_ip = verify to any address. It may carry only what a plain stack
 * puts in its headers (pkt_plain_headers), and a flow passes at most
 * bare_packets of them; otherwise the flow is denied. What such packets
 * still carry is in DESIGN.md ("What verify mode still lets out").
 */
static void tcp_pass_bare(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                          uint64_t now)
{
	enum pkt_err why = pkt_plain_headers(p);
	if (why != PKT_OK) {
		tcp_deny_with(e, f, h, REASON_MALFORMED, pkt_err_name(why), now);
		return;
	}
	if (++f->bare_passed > e->cfg.bare_packets) {
		tcp_deny_with(e, f, h, REASON_INCOMPLETE, "bare_packets", now);
		return;
	}
	verdict(e, h, VERDICT_PASS);
}

/*
 * A payload segment of an undecided flow. Enforcing: held until the flow is
 * decided (an exact duplicate of held bytes is dropped: the original gets
 * the verdict). Audit: passed at once, the bytes still feed the decision.
 */
static void tcp_payload(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                        uint64_t now)
{
	/* A SYN's own sequence number is the ISN; its data (Fast Open) starts at ISN+1. */
	uint32_t start = p->seq + ((p->tcp_flags & PKT_TCP_SYN) ? 1u : 0u);
	uint32_t rel = start - (f->isn + 1);
	enum flow_add r = flow_stream_add(f, rel, p->payload, p->payload_len, e->cfg.hold_bytes);
	if (r == FLOW_ADD_DUP) {
		verdict(e, h, e->cfg.enforce ? VERDICT_DROP : VERDICT_PASS);
		return;
	}
	if (flow_hold_packet(f, h) < 0) {
		/* Cannot hold it: fail closed on the whole flow. */
		decide_deny(e, f, REASON_INCOMPLETE, "out_of_memory", 0, now);
		verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
		return;
	}
	e->held_packets++;
	e->held_bytes_total += p->payload_len;
	f->held_bytes += p->payload_len;
	flow_hold_start(e->ft, f, now);
	switch (r) {
	case FLOW_ADD_CONFLICT:
		decide_deny(e, f, REASON_MALFORMED, "overlap_mismatch", 0, now);
		return;
	case FLOW_ADD_TOO_BIG:
		decide_deny(e, f, REASON_INCOMPLETE, "hold_bytes", 0, now);
		return;
	case FLOW_ADD_NOMEM:
		decide_deny(e, f, REASON_INCOMPLETE, "out_of_memory", 0, now);
		return;
	default:
		break;
	}
	f->segments++;
	const char *bound = hold_bound(e, f);
	if (bound) {
		decide_deny(e, f, REASON_INCOMPLETE, bound, 0, now);
		return;
	}
	if (f->state == FLOW_UNDECIDED)
		try_decide_stream(e, f, now);
	/* Host mode: keep the bytes, free the segments (see engine_config.drop_partial). */
	if (e->cfg.enforce && e->cfg.drop_partial && f->state == FLOW_UNDECIDED && f->nheld) {
		release_held(e, f, VERDICT_DROP);
		return;
	}
	audit_pass_last(e, f, h, p->payload_len);
}

/* Packet h ends undecided flow f: denied `malformed` (detail), h with it. */
static void tcp_refuse(struct engine *e, struct flow *f, uint64_t h, const char *detail,
                       uint64_t now)
{
	bool held = flow_hold_packet(f, h) == 0;
	if (held)
		e->held_packets++;
	decide_deny(e, f, REASON_MALFORMED, detail, 0, now);
	if (!held)
		verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
}

static void tcp_new(struct engine *e, uint64_t h, const struct pkt *p, const struct flow_key *k,
                    int64_t uid, uint64_t now)
{
	bool syn = (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
	bool known = false;
	const struct policy_rule *range = policy_match_addr(e->policy, &p->dst, p->dport, &known);
	if (!syn && !range) {
		/* Mid-stream (began before start-up, or forgotten): no ISN to reassemble from. */
		deny_packet(e, h, p, REASON_INCOMPLETE, "no_syn", 0, uid, now);
		return;
	}
	enum flow_refuse full;
	struct flow *f = flow_create(e->ft, k, uid, !range && syn && !p->payload_len, now, &full);
	if (!f) {
		deny_packet(e, h, p, REASON_INCOMPLETE, refuse_detail(full), 0, uid, now);
		return;
	}
	f->uid = uid;
	f->isn = p->seq;
	f->have_isn = syn;
	if (range) {
		if (flow_hold_packet(f, h) == 0) {
			e->held_packets++;
			decide_allow(e, f, range, now);
		} else {
			verdict(e, h, VERDICT_ALLOW);
			decide_allow(e, f, range, now);
		}
		return;
	}
	enum reason deny = REASON_NONE;
	uint32_t ind = 0;
	if (known) {
		deny = REASON_PORT_NOT_ALLOWED;
	} else if (e->cfg.unknown_ip == UNKNOWN_IP_DENY) {
		bool name_known = false;
		/* The first payload names the flow; the SYN only needs some allowed name. */
		if (!bound_allowed(e, &p->dst, p->dport, NULL, &name_known, now)) {
			if (name_known) {
				deny = REASON_PORT_NOT_ALLOWED;
			} else {
				deny = REASON_IP_NOT_ALLOWED;
				ind = IND_IP_LITERAL;
			}
		}
	} else if (!policy_port_has_names(e->policy, p->dport)) {
		struct policy_stats st;
		policy_stats(e->policy, &st);
		deny =
		    st.exact_names + st.wildcards ? REASON_PORT_NOT_ALLOWED : REASON_IP_NOT_ALLOWED;
		if (deny == REASON_IP_NOT_ALLOWED)
			ind = IND_IP_LITERAL;
	}
	if (deny == REASON_NONE && metadata_guarded(e, &p->dst, p->dport))
		deny = REASON_IP_NOT_ALLOWED; /* at the SYN, whatever name it will give */
	if (deny != REASON_NONE && !e->cfg.enforce) {
		/* Audit: let it go on to its first payload to learn its name. */
		f->audit_reason = deny;
		f->audit_ind = ind;
		flow_hold_start(e->ft, f, now);
		if (p->payload_len) {
			tcp_payload(e, f, h, p, now);
			return;
		}
		verdict(e, h, VERDICT_PASS);
		return;
	}
	if (deny != REASON_NONE) {
		if (flow_hold_packet(f, h) == 0) {
			e->held_packets++;
			decide_deny(e, f, deny, NULL, ind, now);
		} else {
			decide_deny(e, f, deny, NULL, ind, now);
			verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
		}
		return;
	}
	if (p->payload_len) {
		/* TCP Fast Open: the SYN carries the first payload; hold it. */
		if (p->tcp_flags & PKT_TCP_URG) {
			tcp_refuse(e, f, h, "tcp_urgent", now);
			return;
		}
		tcp_payload(e, f, h, p, now);
		return;
	}
	tcp_pass_bare(e, f, h, p, now);
}

/*
 * What egressd reads must be what the server reads. Before the client's
 * ACK, a SYN may re-base the stream (a retransmitted SYN with a fresh ISN,
 * nothing held). After it, the server's sequence space is fixed: a SYN with
 * another ISN is an attempt to make egressd read bytes the server discards
 * as old data (issue 9, class 2), and so are data without ACK, data on a
 * RST, and urgent data (the server delivers the urgent byte out of band).
 */
static void tcp_undecided(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                          uint64_t now)
{
	bool syn = (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
	if ((e->pkt_flags & ENGINE_PKT_ACKED) && !f->acked) {
		/* the handshake ACK passed in the kernel: one bare packet */
		f->acked = true;
		f->bare_passed++;
	}
	if (p->tcp_flags & PKT_TCP_URG) {
		tcp_refuse(e, f, h, "tcp_urgent", now);
		return;
	}
	if (syn && f->acked && !(f->have_isn && p->seq == f->isn)) {
		tcp_refuse(e, f, h, "syn_after_ack", now);
		return;
	}
	if (syn && !f->acked && f->contig == 0 && f->end == 0 && !f->nheld)
		f->isn = p->seq; /* a retransmitted SYN, possibly a fresh ISN: nothing held yet */
	if ((p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_ACK)
		f->acked = true;
	if (p->payload_len && !(p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK))) {
		tcp_refuse(e, f, h, "data_without_ack", now);
		return;
	}
	if (p->payload_len && (p->tcp_flags & PKT_TCP_RST)) {
		tcp_refuse(e, f, h, "data_with_rst", now);
		return;
	}
	if (!p->payload_len) {
		tcp_pass_bare(e, f, h, p, now);
		return;
	}
	if (!f->have_isn) {
		if (flow_hold_packet(f, h) == 0) {
			e->held_packets++;
			decide_deny(e, f, REASON_INCOMPLETE, "no_syn", 0, now);
		} else {
			decide_deny(e, f, REASON_INCOMPLETE, "no_syn", 0, now);
			verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
		}
		return;
	}
	tcp_payload(e, f, h, p, now);
}

/* ---- UDP ---- */

static bool udp_hold(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                     uint64_t now)
{
	if (flow_hold_packet(f, h) < 0) {
		verdict(e, h, e->cfg.enforce ? VERDICT_DENY : VERDICT_ALLOW);
		decide_deny(e, f, REASON_INCOMPLETE, "out_of_memory", 0, now);
		return false;
	}
	e->held_packets++;
	e->held_bytes_total += p->payload_len;
	f->held_bytes += p->payload_len;
	f->segments++;
	flow_hold_start(e->ft, f, now);
	return true;
}

/*
 * QUIC: each Initial's CRYPTO frames go into the flow's stream at their
 * offsets (flow_stream_add: gaps, duplicates, conflicting overlaps), so a
 * ClientHello spread over several Initial datagrams is read once its
 * contiguous prefix holds the whole handshake message. Every datagram of
 * the flow is held until then (UDP has no autocork: host mode holds too).
 */
struct quic_feed {
	struct flow *f;
	const struct quic_initial_info *info;
	size_t limit;
	enum flow_add err; /* why a frame was refused (FLOW_ADD_NEW: not refused) */
	bool dcid_mismatch;
	bool fresh; /* some CRYPTO bytes were new */
};

static bool quic_same_conn(const struct flow *f, const struct quic_initial_info *info)
{
	return info->version == f->quic_version && info->dcid_len == f->quic_dcid_len &&
	       memcmp(info->dcid, f->quic_dcid, info->dcid_len) == 0;
}

static bool quic_feed_frame(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct quic_feed *q = arg;
	if (!quic_same_conn(q->f, q->info)) {
		q->dcid_mismatch = true; /* nothing of another connection goes in */
		return false;
	}
	enum flow_add r = off > q->limit ? FLOW_ADD_TOO_BIG
	                                 : flow_stream_add(q->f, (uint32_t)off, p, len, q->limit);
	if (r == FLOW_ADD_NEW)
		q->fresh = true;
	else if (r != FLOW_ADD_DUP)
		q->err = r;
	return r == FLOW_ADD_NEW || r == FLOW_ADD_DUP;
}

/* A datagram that ends the flow: BAD QUIC (why), or a refused CRYPTO frame. */
static void quic_refuse(struct engine *e, struct flow *f, const struct pkt *p,
                        const struct quic_feed *q, enum quic_err why, uint64_t now)
{
	struct decision d = {.reason = REASON_MALFORMED,
	                     .detail = quic_err_name(why),
	                     .ind = IND_QUIC,
	                     .extra = p->payload,
	                     .extra_len = p->payload_len};
	if (why == QUIC_NOT_LONG_HEADER || why == QUIC_NOT_INITIAL || why == QUIC_BAD_VERSION)
		d.reason = REASON_PROTOCOL_NOT_ALLOWED;
	if (q->dcid_mismatch) {
		d.reason = REASON_MALFORMED;
		d.detail = q->info->version == f->quic_version ? "dcid_mismatch" : "version_mismatch";
	} else if (why == QUIC_REFUSED) {
		switch (q->err) {
		case FLOW_ADD_CONFLICT:
			d.detail = "overlap_mismatch";
			break;
		case FLOW_ADD_NOMEM:
			d.reason = REASON_INCOMPLETE;
			d.detail = "out_of_memory";
			break;
		default:
			d.reason = REASON_INCOMPLETE;
			d.detail = "hold_bytes";
			break;
		}
	}
	flow_decide(e, f, &d, now);
}

static void udp_quic(struct engine *e, struct flow *f, uint64_t h, const struct pkt *p,
                     uint64_t now)
{
	if (!udp_hold(e, f, h, p, now))
		return;
	const char *bound = f->held_bytes > e->cfg.hold_bytes ? "hold_bytes" : hold_bound(e, f);
	if (bound) {
		decide_deny(e, f, REASON_INCOMPLETE, bound, IND_QUIC, now);
		return;
	}
	bool first = f->segments == 1;
	struct quic_initial_info info;
	struct quic_feed q = {.f = f,
	                      .info = &info,
	                      .limit = e->cfg.hold_bytes < TLS_HELLO_MAX ? e->cfg.hold_bytes
	                                                                 : TLS_HELLO_MAX,
	                      .err = FLOW_ADD_NEW};
	if (first) {
		/* The keys come from the first Initial's DCID: read it before any frame. */
		struct cur c = cur_make(p->payload, p->payload_len), dcid;
		uint8_t b;
		if (cur_u8(&c, &b) && cur_u32(&c, &f->quic_version) && cur_sub_u8len(&c, &dcid) &&
		    dcid.left <= QUIC_CID_MAX) {
			memcpy(f->quic_dcid, dcid.p, dcid.left);
			f->quic_dcid_len = (uint8_t)dcid.left;
		}
	}
	enum quic_err why = QUIC_OK;
	enum parse r = quic_initial_crypto(cur_make(p->payload, p->payload_len), &info,
	                                   quic_feed_frame, &q, &why);
	if (r == PARSE_BAD) {
		if (!first && (why == QUIC_NOT_LONG_HEADER || why == QUIC_NOT_INITIAL)) {
			/* 0-RTT or a short header after the Initial: held, not read. */
			audit_pass_last(e, f, h, p->payload_len);
			return;
		}
		if (info.dcid_len && !quic_same_conn(f, &info))
			q.dcid_mismatch = true;
		quic_refuse(e, f, p, &q, why, now);
		return;
	}
	if (!quic_same_conn(f, &info)) { /* a frameless Initial of another connection */
		q.dcid_mismatch = true;
		quic_refuse(e, f, p, &q, why, now);
		return;
	}
	if (q.fresh)
		f->quic_crypto_dgrams++;
	if (f->contig) {
		struct tls_hello hello;
		enum tls_err twhy = TLS_OK;
		r = tls_handshake_message(cur_make(f->buf, f->contig), &hello, &twhy);
		if (r == PARSE_BAD) {
			uint32_t ind = IND_QUIC;
			if (twhy == TLS_SNI_BAD_NAME && hello.sni_err == NAME_IP_LITERAL)
				ind |= IND_IP_LITERAL;
			decide_deny(e, f, REASON_MALFORMED, tls_err_name(twhy), ind, now);
			return;
		}
		if (r == PARSE_OK) {
			f->split = f->quic_crypto_dgrams > 1;
			decide_hello(e, f, &hello, NAME_SOURCE_QUIC_SNI, now);
		}
	}
	audit_pass_last(e, f, h, p->payload_len); /* MORE, or verify mode waiting */
}

static void udp_new(struct engine *e, uint64_t h, const struct pkt *p, const struct flow_key *k,
                    int64_t uid, uint64_t now)
{
	enum flow_refuse full;
	struct flow *f = flow_create(e->ft, k, uid, false, now, &full);
	if (!f) {
		deny_packet(e, h, p, REASON_INCOMPLETE, refuse_detail(full), 0, uid, now);
		return;
	}
	f->uid = uid;
	if (p->dport == 443) {
		f->quic = true;
		if (e->cfg.quic_inspect) {
			udp_quic(e, f, h, p, now);
			return;
		}
		if (udp_hold(e, f, h, p, now)) {
			struct decision d = {.reason = REASON_PROTOCOL_NOT_ALLOWED,
			                     .detail = "quic_policy_deny",
			                     .ind = IND_QUIC,
			                     .extra = p->payload,
			                     .extra_len = p->payload_len};
			flow_decide(e, f, &d, now);
		}
		return;
	}
	if (!udp_hold(e, f, h, p, now))
		return;
	bool known = false, name_known = false;
	const struct policy_rule *r = policy_match_addr(e->policy, &p->dst, p->dport, &known);
	if (r) {
		decide_allow(e, f, r, now);
		return;
	}
	if (!known) {
		r = bound_allowed(e, &p->dst, p->dport, f->name, &name_known, now);
		if (r) {
			f->name_source = NAME_SOURCE_DNS;
			decide_allow(e, f, r, now);
			return;
		}
		f->name[0] = '\0';
	}
	struct decision d = {.extra = p->payload, .extra_len = p->payload_len};
	if (known || name_known) {
		d.reason = REASON_PORT_NOT_ALLOWED;
	} else {
		d.reason = REASON_IP_NOT_ALLOWED;
		d.ind = IND_IP_LITERAL;
	}
	flow_decide(e, f, &d, now);
}

/* ---- incarnations ---- */

/*
 * A decision belongs to one connection incarnation (issue 9, class 1). The
 * kernel carries the rest of an allowed connection on its conntrack mark, so
 * a queued packet of a decided flow is either one queued before the mark
 * took effect, or the first of a new conntrack entry on the same 4-tuple.
 * The verdict is re-issued only to the first kind: a SYN with the flow's own
 * ISN (a retransmission); for ALLOW, only within REISSUE_NS of the decision
 * and (TCP) inside the half of the sequence space after the ISN, and not
 * to a packet conntrack had no entry for (ENGINE_PKT_CT_NEW: it forgot the
 * connection - timeout, early drop under table pressure, flush - while we
 * remember it; a UDP datagram that raced the decision, queued before the
 * first one's entry was confirmed, is the one exception, UDP_RACE_NS).
 * Anything else is a new incarnation and is decided afresh. A DENY is
 * re-issued to everything but a new SYN (fail closed).
 */
static bool decided_same_incarnation(const struct flow *f, const struct pkt *p, unsigned pflags,
                                     uint64_t now)
{
	if (p->proto == IPPROTO_TCP &&
	    (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN)
		return f->have_isn && p->seq == f->isn;
	if (f->verdict != VERDICT_ALLOW)
		return true;
	if (now < f->decided_ns || now - f->decided_ns > REISSUE_NS)
		return false;
	/* conntrack forgot the connection: TCP was picked up mid-stream (a
	 * segment without SYN: no_syn); UDP is read again unless it raced
	 * the decision */
	if ((pflags & ENGINE_PKT_CT_NEW) &&
	    (p->proto == IPPROTO_TCP || now - f->decided_ns > UDP_RACE_NS))
		return false;
	if (p->proto == IPPROTO_TCP && f->have_isn && (uint32_t)(p->seq - f->isn) >= 0x80000000u)
		return false;
	return true;
}

/* ---- entry points ---- */

struct engine *engine_new(const struct engine_config *cfg, const struct policy *policy,
                          struct bindings *bindings, const struct engine_hooks *hooks)
{
	if (!cfg || !hooks)
		return NULL;
	struct engine *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->cfg = *cfg;
	e->policy = policy;
	e->bind = bindings;
	e->hooks = *hooks;
	/* The caller's seed (getrandom in the daemon); without one (tests, fuzzing)
	 * the heap address, which is all the core has. */
	e->seed = cfg->hash_seed ? cfg->hash_seed : (uint64_t)(uintptr_t)e * 0x9e3779b97f4a7c15ull;
	e->ft = flow_table_new(cfg->max_flows ? cfg->max_flows : 1,
	                       cfg->bare_flows_source ? cfg->bare_flows_source : 1,
	                       e->seed * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull);
	e->conns = conn_table_new(cfg->max_flows ? cfg->max_flows : 1,
	                          e->seed * 0x94d049bb133111ebull + 0x2545f4914f6cdd1dull);
	if (!e->ft || !e->conns) {
		flow_table_free(e->ft);
		conn_table_free(e->conns);
		free(e);
		return NULL;
	}
	return e;
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* Every held packet gets its verdict: dropped (fail closed). */
	for (int decided = 0; decided < 2; decided++) {
		struct flow *f;
		while ((f = flow_oldest(e->ft, decided))) {
			release_held(e, f, VERDICT_DENY);
			flow_remove(e->ft, f);
		}
	}
	agg_flush_all(e, 0, true);
	flow_table_free(e->ft);
	conn_table_free(e->conns);
	regs_free(e);
	free(e);
}

void engine_set_policy(struct engine *e, const struct policy *policy,
                       const struct engine_config *cfg)
{
	if (!e)
		return;
	/* Aggregated events point at rules of the old policy: out with them now. */
	agg_flush_all(e, 0, true);
	regs_free(e);
	e->policy = policy;
	if (cfg) {
		struct engine_config c = *cfg;
		c.max_flows = e->cfg.max_flows; /* the table is sized once */
		c.bare_flows_source = e->cfg.bare_flows_source;
		c.hash_seed = e->cfg.hash_seed;
		e->cfg = c;
	}
}

/* RFC 9293 3.1: the one's complement sum over the pseudo-header and the segment. */
static bool tcp_csum_ok(const struct pkt *p)
{
	uint64_t sum = 0;
	size_t alen = p->src.family == ADDR_V4 ? 4 : 16;
	for (size_t i = 0; i + 1 < alen; i += 2)
		sum += (uint32_t)(p->src.b[i] << 8 | p->src.b[i + 1]) +
		       (uint32_t)(p->dst.b[i] << 8 | p->dst.b[i + 1]);
	sum += IPPROTO_TCP + (uint64_t)(p->l4_len & 0xffff) + (uint64_t)(p->l4_len >> 16);
	struct cur c = cur_make(p->l4, p->l4_len);
	uint16_t w;
	while (cur_u16(&c, &w))
		sum += w;
	uint8_t last;
	if (cur_u8(&c, &last))
		sum += (uint32_t)last << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

void engine_packet_flags(struct engine *e, uint64_t pkt_handle, const uint8_t *pkt, size_t len,
                         int64_t uid, unsigned flags, uint64_t now)
{
	if (!e)
		return;
	e->pkt_flags = flags;
	engine_packet(e, pkt_handle, pkt, len, uid, now);
	e->pkt_flags = 0;
}

void engine_packet(struct engine *e, uint64_t pkt_handle, const uint8_t *pkt, size_t len,
                   int64_t uid, uint64_t now)
{
	if (!e)
		return;
	struct pkt p;
	enum pkt_err why = PKT_OK;
	memset(&p, 0, sizeof p);
	if (!pkt || pkt_parse(pkt, len, &p, &why) != PARSE_OK) {
		/* The fixed header, when it was read, still names the flow in the log;
		 * nothing past the fault (the payload) is looked at. */
		bool named = pkt && p.src.family != ADDR_NONE;
		p.payload = NULL;
		p.payload_len = 0;
		deny_packet(e, pkt_handle, named ? &p : NULL, REASON_MALFORMED,
		            pkt ? pkt_err_name(why) : "truncated", 0, uid, now);
		return;
	}
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) {
		/* ICMP errors and ND are passed by the ruleset; whatever reaches us is not. */
		p.payload_len = 0;
		deny_packet(e, pkt_handle, &p, REASON_PROTOCOL_NOT_ALLOWED, NULL, 0, uid, now);
		return;
	}
	struct flow_key k = {
	    .proto = p.proto, .sport = p.sport, .dport = p.dport, .src = p.src, .dst = p.dst};
	struct flow *f = flow_find(e->ft, &k);
	if (f && f->state == FLOW_DECIDED && !decided_same_incarnation(f, &p, e->pkt_flags, now)) {
		flow_remove(e->ft, f); /* decided: holds nothing */
		f = NULL;
	}
	if (p.proto == IPPROTO_TCP && (e->pkt_flags & ENGINE_PKT_CSUM_VALID) &&
	    (!f || f->state != FLOW_DECIDED) && !tcp_csum_ok(&p)) {
		if (f) {
			tcp_refuse(e, f, pkt_handle, "bad_checksum", now);
		} else {
			p.payload_len = 0;
			deny_packet(e, pkt_handle, &p, REASON_MALFORMED, "bad_checksum", 0, uid, now);
		}
		return;
	}
	if (!f) {
		if (p.proto == IPPROTO_TCP)
			tcp_new(e, pkt_handle, &p, &k, uid, now);
		else
			udp_new(e, pkt_handle, &p, &k, uid, now);
		return;
	}
	flow_touch(e->ft, f, now);
	if (f->state == FLOW_DECIDED) {
		if (f->verdict == VERDICT_INSPECT && p.proto == IPPROTO_TCP)
			http_insp_packet(e, f, pkt_handle, &p, now);
		else
			verdict(e, pkt_handle, f->verdict);
		return;
	}
	if (p.proto == IPPROTO_TCP) {
		tcp_undecided(e, f, pkt_handle, &p, now);
		return;
	}
	/* UDP undecided: a QUIC flow whose Initial is incomplete. */
	if (f->state == FLOW_WAIT_RESOLVE) {
		if (!udp_hold(e, f, pkt_handle, &p, now))
			return;
		const char *bound = hold_bound(e, f);
		if (bound)
			decide_deny(e, f, REASON_INCOMPLETE, bound, 0, now);
		else
			audit_pass_last(e, f, pkt_handle, p.payload_len);
		return;
	}
	udp_quic(e, f, pkt_handle, &p, now);
}

void engine_tick(struct engine *e, uint64_t now)
{
	if (!e)
		return;
	/* Hold bounds in time. */
	struct flow *f = flow_holding_first(e->ft), *next;
	for (; f; f = next) {
		next = f->wnext;
		if (f->state != FLOW_DECIDED && now - f->hold_since >= e->cfg.hold_ns) {
			if (f->audit_reason != REASON_NONE && f->contig == 0 && f->end == 0)
				/* audit: no payload came to name it; the SYN's reason stands */
				decide_deny(e, f, f->audit_reason, NULL, 0, now);
			else
				decide_deny(e, f, REASON_INCOMPLETE,
				            f->state == FLOW_WAIT_RESOLVE ? "resolve_timeout"
				                                          : "hold_timeout",
				            0, now);
		}
	}
	/* Idle flows: undecided ones after flow_idle_ns, decided ones after a linger. */
	uint64_t linger =
	    e->cfg.flow_idle_ns < DECIDED_LINGER_NS ? e->cfg.flow_idle_ns : DECIDED_LINGER_NS;
	while ((f = flow_oldest(e->ft, false)) && now - f->last_ns >= e->cfg.flow_idle_ns) {
		if (f->nheld)
			decide_deny(e, f, REASON_INCOMPLETE, "idle", 0, now);
		else
			flow_remove(e->ft, f);
	}
	while ((f = flow_oldest(e->ft, true)) && now - f->last_ns >= linger) {
		if (f->http && now < f->http->expire_ns) {
			/* an INSPECT connection lives on without queued packets (bare
			 * ACKs pass in the kernel) until its own idle expiry */
			flow_touch(e->ft, f, now);
			continue;
		}
		flow_remove(e->ft, f);
	}
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (e->inflight[i].used && now - e->inflight[i].since >= e->cfg.hold_ns)
			e->inflight[i].used = false;
	bind_expire(e->bind, now);
	agg_flush_all(e, now, false);
}

static uint64_t bind_expiry(const struct engine *e, uint32_t ttl, uint64_t now)
{
	if (ttl < e->cfg.bind_min_ttl)
		ttl = e->cfg.bind_min_ttl;
	if (ttl > e->cfg.bind_max_ttl)
		ttl = e->cfg.bind_max_ttl;
	return now + (uint64_t)ttl * NS_PER_S + e->cfg.bind_grace_ns;
}

static bool name_covered(const struct engine *e, const char *name)
{
	bool known = false;
	return policy_match_name(e->policy, name, 0, &known) || known;
}

void engine_resolved(struct engine *e, const char *name, const struct dns_addr *addrs, size_t n,
                     uint64_t now)
{
	if (!e || !name)
		return;
	inflight_done(e, name);
	bool covered = name_covered(e, name);
	for (size_t i = 0; covered && addrs && i < n; i++)
		bind_add(e->bind, name, &addrs[i].addr, bind_expiry(e, addrs[i].ttl, now), now);
	struct flow *f = flow_holding_first(e->ft), *next;
	for (; f; f = next) {
		next = f->wnext;
		if (f->state != FLOW_WAIT_RESOLVE || strcmp(f->name, name) != 0)
			continue;
		bool hit = false;
		for (size_t i = 0; addrs && i < n && !hit; i++)
			hit = addr_eq(&addrs[i].addr, &f->key.dst);
		bool known = false;
		const struct policy_rule *r =
		    policy_match_name(e->policy, f->name, f->key.dport, &known);
		if (!r)
			decide_deny(e, f, known ? REASON_PORT_NOT_ALLOWED : REASON_NAME_NOT_ALLOWED,
			            NULL, 0, now);
		else if (hit)
			decide_allow(e, f, r, now);
		else
			decide_deny(e, f, REASON_SNI_IP_MISMATCH, n ? NULL : "resolution_failed", 0,
			            now);
		/* A decision may have emitted events but never frees flows: next stays valid. */
	}
}

static void dns_event(struct engine *e, int kind, const struct dns_query *q,
                      const struct addr *client, uint16_t cport, enum reason r, const char *detail,
                      const struct indicators *ind, uint64_t now)
{
	struct flow_event ev = {.kind = kind, .proto = IPPROTO_UDP, .reason = r, .detail = detail};
	if (client)
		ev.src = *client;
	ev.sport = cport;
	ev.dport = 53;
	char redacted[NAME_MAX_LEN + 16];
	ev.qname = q->qname[0] ? q->qname : q->raw_qname;
	if (ind && ind->ncreds)
		ev.qname = redact_name(e, ev.qname, redacted, sizeof redacted);
	ev.name = ev.qname;
	ev.qtype = q->qtype;
	ev.enforced = e->cfg.enforce;
	if (ind)
		ev.ind = *ind;
	ev.ind.severity = ind_severity(&ev.ind);
	emit(e, &ev, now);
}

/*
 * DNS guard. Unparseable header: DROP. Any other malformed query: REFUSE
 * (dns_deny, detail = the parser's reason). A name no entry covers on any
 * port: REFUSE with indicators. HTTPS/SVCB with ech = deny: EMPTY (their
 * ech parameter would let the client hide the SNI; with ech = outer the
 * shell strips it from the answer, engine_dns_strip_ech). Else FORWARD.
 * Audit mode forwards a well-formed query for a name no entry covers (after
 * logging dns_deny with enforced = false): the workload must keep working
 * so that `egressd learn` sees all of it. Malformed queries are refused in
 * both modes.
 */
enum dns_action engine_dns_query(struct engine *e, const uint8_t *msg, size_t len,
                                 const struct addr *client, uint16_t client_port,
                                 struct dns_query *q_out, uint64_t now)
{
	struct dns_query q;
	memset(&q, 0, sizeof q);
	if (!e || !msg || len < 12) {
		if (q_out)
			*q_out = q;
		return DNS_DROP;
	}
	enum dns_err why = DNS_OK;
	enum parse r = dns_query_parse(cur_make(msg, len), &q, &why);
	if (q_out)
		*q_out = q;
	if (r != PARSE_OK && why != DNS_NAME_REFUSED) {
		/* A response (QR set) sent to the listener: never answer it (no loops). */
		if (msg[2] & 0x80)
			return DNS_DROP;
		dns_event(e, EVENT_DNS_DENY, &q, client, client_port, REASON_MALFORMED,
		          dns_err_name(why), NULL, now);
		return DNS_REFUSE;
	}
	const char *name = r == PARSE_OK ? q.qname : q.raw_qname;
	if (r != PARSE_OK || !name_covered(e, q.qname)) {
		struct indicators ind;
		memset(&ind, 0, sizeof ind);
		if (ind_dns_name_tunnel_shaped(name) || q.qtype == DNS_TYPE_TXT ||
		    q.qtype == DNS_TYPE_NULL || q.qtype == DNS_TYPE_ANY ||
		    dns_parent_note(e, name, now))
			ind.bits |= IND_DNS_TUNNEL;
		ind_scan_dns_name(&ind, name);
		typosquat_check(e, name, &ind);
		dns_event(e, EVENT_DNS_DENY, &q, client, client_port, REASON_NAME_NOT_ALLOWED,
		          r == PARSE_OK ? NULL : name_err_name(q.name_err), &ind, now);
		/* Audit: the workload must see what enforcing would break, not break. */
		return e->cfg.enforce || r != PARSE_OK ? DNS_REFUSE : DNS_FORWARD;
	}
	if ((q.qtype == DNS_TYPE_HTTPS || q.qtype == DNS_TYPE_SVCB) && e->cfg.ech == ECH_DENY)
		return DNS_EMPTY;
	return DNS_FORWARD;
}

void engine_dns_answer(struct engine *e, const struct dns_query *q, const uint8_t *msg, size_t len,
                       const struct addr *client, uint64_t now)
{
	if (!e || !q || !msg)
		return;
	if (!name_covered(e, q->qname))
		return; /* the policy changed while the query was upstream */
	struct dns_addr addrs[MAX_ANSWER_ADDRS];
	size_t n = 0;
	uint8_t rcode = 0;
	enum dns_err why = DNS_OK;
	if (dns_answer_addrs(cur_make(msg, len), q->qname, e->cfg.ech != ECH_DENY, addrs,
	                     MAX_ANSWER_ADDRS, &n, &rcode, &why) != PARSE_OK)
		return;
	for (size_t i = 0; i < n && i < MAX_ANSWER_ADDRS; i++)
		bind_add_client(e->bind, q->qname, &addrs[i].addr, client,
		                bind_expiry(e, addrs[i].ttl, now), now);
	dns_event(e, EVENT_DNS_ALLOW, q, client, 0, REASON_NONE, NULL, NULL, now);
}

bool engine_dns_strip_ech(const struct engine *e)
{
	return e && e->cfg.ech != ECH_ALLOW;
}

void engine_stats(const struct engine *e, struct engine_stats *st)
{
	if (!st)
		return;
	*st = (struct engine_stats){0};
	if (!e)
		return;
	st->flows_tracked = flow_count(e->ft);
	st->held_packets = e->held_packets;
	st->held_bytes = e->held_bytes_total;
	st->conns_recorded = conn_count(e->conns);
	st->conns_max = e->cfg.max_flows;
}

/* ---- revoke (revoke.h) ---- */

static void key_of_conn(struct flow_key *k, const struct engine_conn *c)
{
	*k = (struct flow_key){
	    .proto = c->proto, .sport = c->sport, .dport = c->dport, .src = c->src, .dst = c->dst};
}

/* One revoked connection: its event (never aggregated), its flow denies from now on. */
static void revoke_one(struct engine *e, const struct flow_key *k, const struct conn_rec *r,
                       uint64_t now)
{
	struct flow_event ev = {.kind = EVENT_DENY, .reason = REASON_REVOKED, .name = "", .count = 1};
	event_from_key(&ev, k);
	if (r) {
		ev.name = r->name;
		ev.name_source = r->name_source;
		ev.has_uid = r->uid >= 0;
		ev.uid = r->uid >= 0 ? (uint32_t)r->uid : 0;
	}
	ev.enforced = e->cfg.enforce;
	ev.ind.severity = ind_severity(&ev.ind);
	struct flow *f = flow_find(e->ft, k);
	if (e->cfg.enforce && f && f->state == FLOW_DECIDED && f->verdict == VERDICT_ALLOW)
		f->verdict = VERDICT_DENY;
	(void)now;
	if (e->hooks.event)
		e->hooks.event(e->hooks.arg, &ev);
}

static enum revoke_kind rec_kind(const struct conn_rec *r)
{
	return !r ? REVOKE_UNKNOWN : r->name[0] ? REVOKE_NAME : REVOKE_RANGE;
}

size_t engine_revoke(struct engine *e, const struct engine_conn *conns, size_t n, bool complete,
                     void (*cut)(void *arg, const struct engine_conn *c), void *arg,
                     uint64_t now)
{
	if (!e)
		return 0;
	size_t revoked = 0;
	for (struct conn_rec *r = conn_oldest(e->conns); r; r = r->next)
		r->seen = false;
	for (size_t i = 0; conns && i < n; i++) {
		struct flow_key k;
		key_of_conn(&k, &conns[i]);
		struct conn_rec *r = conn_find(e->conns, &k);
		if (r)
			r->seen = true;
		if (!r && !e->cfg.enforce)
			continue; /* audit: the ALLOW mark also carries would-be denials */
		if ((r && r->audit_logged) ||
		    revoke_judge(e->policy, e->bind, &k, rec_kind(r), r ? r->name : NULL, now, NULL))
			continue;
		revoke_one(e, &k, r, now);
		revoked++;
		if (!e->cfg.enforce) {
			r->audit_logged = true;
			continue;
		}
		if (cut)
			cut(arg, &conns[i]);
		if (r)
			conn_drop(e->conns, r);
	}
	struct conn_rec *r, *next;
	for (r = conn_oldest(e->conns); r; r = next) {
		next = r->next;
		if (r->seen)
			continue;
		bool allowed = r->audit_logged || revoke_judge(e->policy, e->bind, &r->key,
		                                               rec_kind(r), r->name, now, NULL);
		if (complete) {
			/* Not in conntrack's list: gone (or its mark not yet set). Its
			 * flow, if still tracked, must not re-issue ALLOW. */
			struct flow *f = flow_find(e->ft, &r->key);
			if (!allowed && e->cfg.enforce && f && f->state == FLOW_DECIDED &&
			    f->verdict == VERDICT_ALLOW)
				f->verdict = VERDICT_DENY;
			conn_drop(e->conns, r);
			continue;
		}
		if (allowed)
			continue;
		revoke_one(e, &r->key, r, now);
		revoked++;
		if (!e->cfg.enforce) {
			r->audit_logged = true;
			continue;
		}
		struct engine_conn c = {.proto = r->key.proto,
		                        .src = r->key.src,
		                        .dst = r->key.dst,
		                        .sport = r->key.sport,
		                        .dport = r->key.dport};
		if (cut)
			cut(arg, &c);
		conn_drop(e->conns, r);
	}
	return revoked;
}

void engine_conns_sync(struct engine *e, const struct engine_conn *conns, size_t n)
{
	if (!e)
		return;
	for (struct conn_rec *r = conn_oldest(e->conns); r; r = r->next)
		r->seen = false;
	for (size_t i = 0; conns && i < n; i++) {
		struct flow_key k;
		key_of_conn(&k, &conns[i]);
		struct conn_rec *r = conn_find(e->conns, &k);
		if (r)
			r->seen = true;
	}
	struct conn_rec *r, *next;
	for (r = conn_oldest(e->conns); r; r = next) {
		next = r->next;
		if (!r->seen)
			conn_drop(e->conns, r);
	}
}

int engine_reset(struct engine *e)
{
	if (!e)
		return -EINVAL;
	struct flow_table *ft =
	    flow_table_new(e->cfg.max_flows ? e->cfg.max_flows : 1,
	                   e->cfg.bare_flows_source ? e->cfg.bare_flows_source : 1,
	                   e->seed * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull);
	struct conn_table *conns =
	    ft ? conn_table_new(e->cfg.max_flows ? e->cfg.max_flows : 1,
	                        e->seed * 0x94d049bb133111ebull + 0x2545f4914f6cdd1dull)
	       : NULL;
	if (!ft || !conns) {
		flow_table_free(ft);
		conn_table_free(conns);
		return -ENOMEM;
	}
	for (int decided = 0; decided < 2; decided++) {
		struct flow *f;
		while ((f = flow_oldest(e->ft, decided))) {
			release_held(e, f, VERDICT_DENY);
			flow_remove(e->ft, f);
		}
	}
	agg_flush_all(e, 0, true); /* every slot unused: reused slots are rewritten whole */
	flow_table_free(e->ft);
	e->ft = ft;
	conn_table_free(e->conns); /* the revoke records (revoke.c) */
	e->conns = conns;
	regs_free(e);
	e->pkt_flags = 0;
	e->held_bytes_total = e->held_packets = 0;
	/* These match on content, not on a used flag: zero them as calloc did. */
	memset(e->beacon, 0, sizeof e->beacon);
	memset(e->dnsp, 0, sizeof e->dnsp);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		e->inflight[i].used = false;
	return 0;
}

bool engine_conn_recorded(struct engine *e, const struct engine_conn *c)
{
	if (!e || !c)
		return false;
	struct flow_key k;
	key_of_conn(&k, c);
	return conn_find(e->conns, &k) != NULL;
}
