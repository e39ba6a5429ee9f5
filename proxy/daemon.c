/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon shell: one libevent loop that owns the engine and everything
 * that feeds it or carries its decisions out.
 *
 *   nfqueue num..num+T-1 --packet--> engine_packet --verdict--> queue_verdict
 *   dnsd (UDP/TCP 53)    --query---> engine_dns_query --forward--> resolver
 *   timer 100 ms --> engine_tick          engine --event--> log + counters
 *   SIGHUP --> reload policy + reopen log     SIGTERM/SIGINT --> leave loop
 *
 * The engine is not thread-safe, so with [queue] threads > 1 every queue is
 * still served from this one loop: the kernel spreads flows over the queues
 * (fanout) but one core decides them. Worker threads would need one engine
 * per queue with shared bindings; not done yet.
 *
 * Start-up order: everything is opened and bound first (queues, resolver,
 * DNS listener, metrics, ruleset), then privileges are dropped, then
 * `ready` is logged and systemd notified. Any failure before that exits 1;
 * an applied ruleset is left in place (fail closed), never removed here.
 */
#include "daemon.h"
#include "dnsd.h"
#include "egressd.h"
#include "log.h"
#include "metrics.h"
#include "resolver.h"
#include "../nfq/conntrack.h"
#include "../nfq/marks.h"
#include "../nfq/queue.h"
#include <cap-ng.h>
#include <errno.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <libpsl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define DAEMON_MAX_QUEUES 64
#define DAEMON_TICK_US 100000
#define DAEMON_MAX_BINDINGS (256u * 1024u)

struct daemon {
	struct event_base *base;
	const struct daemon_opts *opts;
	struct conf *conf;         /* owned; structural settings are those at start */
	struct marks marks;        /* the mark values of conf's [queue] mark_mask */
	struct policy *policy;     /* owned */
	struct bindings *bindings; /* owned */
	struct engine *engine;
	struct engine_config ecfg;
	uint64_t flow_seed; /* getrandom, once: the engine's hash seed (flow table, events) */
	const psl_ctx_t *psl;
	psl_ctx_t *psl_owned; /* psl_latest() fallback, freed at exit */

	struct queue *queues[DAEMON_MAX_QUEUES];
	unsigned queue_base, nqueues;
	struct resolver *resolver;
	struct dnsd *dnsd;
	struct metrics *metrics;
	struct conf_endpoint listen[CONF_MAX_LISTEN_ALL];
	size_t nlisten;

	struct event *tick, *sighup, *sigterm, *sigint;
	struct ct *ct;             /* ctnetlink, for revoke (NULL: could not open) */
	uint64_t conns_synced_ns;  /* last prune of the engine's connection records */
	unsigned in_engine; /* > 0 while inside an engine_* call */
	bool stopping;
	bool ready; /* announced (and ready_fd written and closed) */

	/* Counters for the metrics (events and verdicts as they pass through). */
	uint64_t packets[5];
	uint64_t flows_allow;
	uint64_t flows_deny[REASON_COUNT_];
	uint64_t bad_handles;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		abort(); /* cannot happen with CLOCK_MONOTONIC; the engine needs time */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *daemon_endpoint_str(const struct conf_endpoint *ep, char *buf, size_t cap)
{
	char a[ADDR_STRLEN + 1];

	addr_str(&ep->addr, a);
	if (ep->addr.family == ADDR_V6)
		snprintf(buf, cap, "[%s]:%u", a, ep->port);
	else
		snprintf(buf, cap, "%s:%u", a, ep->port);
	return buf;
}

/* ---- configuration-derived helpers (also used by `egressd rules`) ---- */

static bool v6_global(const struct in6_addr *a)
{
	return !IN6_IS_ADDR_LINKLOCAL(a) && !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_MULTICAST(a) &&
	       !IN6_IS_ADDR_V4MAPPED(a) && !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_SITELOCAL(a);
}

static int inside_addresses(const char *ifname, struct conf_endpoint *out, size_t cap, size_t *n,
                            char *err, size_t errlen)
{
	struct ifaddrs *ifa = NULL;
	bool have4 = false, have6 = false, have_if = false;

	if (getifaddrs(&ifa) == -1) {
		snprintf(err, errlen, "getifaddrs: %s", strerror(errno));
		return -1;
	}
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_name || strcmp(i->ifa_name, ifname) != 0)
			continue;
		have_if = true;
		if (!i->ifa_addr || *n >= cap)
			continue;
		struct conf_endpoint *ep = &out[*n];
		memset(ep, 0, sizeof(*ep));
		ep->port = 53;
		if (i->ifa_addr->sa_family == AF_INET && !have4) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;
			ep->addr.family = ADDR_V4;
			memcpy(ep->addr.b, &sin->sin_addr, 4);
			have4 = true;
			(*n)++;
		} else if (i->ifa_addr->sa_family == AF_INET6 && !have6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)i->ifa_addr;
			if (!v6_global(&s6->sin6_addr))
				continue;
			ep->addr.family = ADDR_V6;
			memcpy(ep->addr.b, &s6->sin6_addr, 16);
			have6 = true;
			(*n)++;
		}
	}
	freeifaddrs(ifa);
	if (*n == 0) {
		snprintf(err, errlen,
		         have_if
		             ? "[gateway] inside = %s has no IPv4 or global IPv6 address; "
		               "set [dns] listen"
		             : "[gateway] inside = %s: no such interface (or it has no address)",
		         ifname);
		return -1;
	}
	return 0;
}

static int dns_listen_main(const struct conf *conf, struct conf_endpoint *out, size_t cap,
                           size_t *n, char *err, size_t errlen)
{
	*n = 0;
	if (conf->ndns_listen > 0) {
		for (size_t i = 0; i < conf->ndns_listen && i < cap; i++)
			out[(*n)++] = conf->dns_listen[i];
		return 0;
	}
	if (conf->mode == CONF_MODE_GATEWAY) {
		if (!conf->inside[0]) {
			snprintf(err, errlen,
			         "gateway mode needs [gateway] inside (or [dns] listen)");
			return -1;
		}
		return inside_addresses(conf->inside, out, cap, n, err, errlen);
	}
	static const char *const host_defaults[] = {"127.0.0.1", "::1"};
	for (size_t i = 0; i < 2 && *n < cap; i++) {
		memset(&out[*n], 0, sizeof(out[*n]));
		if (!addr_parse(host_defaults[i], &out[*n].addr))
			abort(); /* constant text */
		out[*n].port = 53;
		(*n)++;
	}
	return 0;
}

static bool addr_is_any(const struct addr *a)
{
	size_t n = a->family == ADDR_V4 ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		if (a->b[i])
			return false;
	return true;
}

/*
 * Host mode: DNS that the namespaces behind the host (Docker, podman,
 * unshare -n + veth) send to any address is redirected (nat prerouting,
 * `redirect`) to the address of the interface it arrived on, port
 * [dns] container_port. A wildcard listener there answers it; the ruleset
 * lets only redirected packets reach that port (doc/DESIGN.md).
 */
int daemon_dns_listen(const struct conf *conf, struct conf_endpoint *out, size_t cap, size_t *n,
                      char *err, size_t errlen)
{
	if (dns_listen_main(conf, out, cap, n, err, errlen) == -1)
		return -1;
	if (conf->mode == CONF_MODE_GATEWAY || !conf->dns_container_port)
		return 0;
	static const char *const any[] = {"0.0.0.0", "::"};
	for (size_t i = 0; i < 2; i++) {
		if (*n >= cap) {
			snprintf(err, errlen, "too many DNS listen addresses");
			return -1;
		}
		struct conf_endpoint ep;
		bool dup = false;

		memset(&ep, 0, sizeof(ep));
		if (!addr_parse(any[i], &ep.addr))
			abort(); /* constant text */
		ep.port = conf->dns_container_port;
		for (size_t j = 0; j < *n; j++)
			dup = dup || (addr_eq(&out[j].addr, &ep.addr) && out[j].port == ep.port);
		if (!dup)
			out[(*n)++] = ep;
	}
	return 0;
}

void daemon_rules_params(const struct conf *conf, const struct conf_endpoint *listen, size_t n,
                         const char *table, struct rules_params *p)
{
	memset(p, 0, sizeof(*p));
	p->table = table;
	p->gateway = conf->mode == CONF_MODE_GATEWAY;
	p->inside = conf->inside[0] ? conf->inside : NULL;
	p->queue_num = (uint16_t)conf->queue_num;
	p->queue_threads = (uint16_t)(conf->queue_threads ? conf->queue_threads : 1);
	p->mark_mask = conf->mark_mask;
	p->dns_v4.family = ADDR_NONE;
	p->dns_v6.family = ADDR_NONE;
	if (!p->gateway)
		p->container_port = conf->dns_container_port;
	for (size_t i = 0; i < n; i++) {
		/* the wildcard container listeners are no redirect target */
		if (addr_is_any(&listen[i].addr))
			continue;
		if (listen[i].addr.family == ADDR_V4 && p->dns_v4.family == ADDR_NONE) {
			p->dns_v4 = listen[i].addr;
			if (!p->dns_port)
				p->dns_port = listen[i].port;
		} else if (listen[i].addr.family == ADDR_V6 && p->dns_v6.family == ADDR_NONE) {
			p->dns_v6 = listen[i].addr;
			if (!p->dns_port)
				p->dns_port = listen[i].port;
		}
	}
}

/* ---- engine hooks ---- */

static void on_verdict(void *arg, uint64_t handle, enum verdict v)
{
	struct daemon *d = arg;
	uint64_t qnum = handle >> 32;

	if (qnum < d->queue_base || qnum - d->queue_base >= d->nqueues) {
		/* A handle we never gave out: an engine bug. Count it; nothing to answer. */
		d->bad_handles++;
		return;
	}
	if ((unsigned)v < 5)
		d->packets[v]++;
	/* A failed verdict leaves the packet queued until the kernel drops it: fail closed. */
	(void)queue_verdict(d->queues[qnum - d->queue_base], handle, v);
}

static void on_event(void *arg, const struct flow_event *ev)
{
	struct daemon *d = arg;
	unsigned count = ev->count ? ev->count : 1;
	bool log_it;

	switch (ev->kind) {
	case EVENT_ALLOW:
		d->flows_allow += count;
		log_it = d->conf->log_level == CONF_LOG_ALL;
		break;
	case EVENT_DENY:
		if ((unsigned)ev->reason < REASON_COUNT_)
			d->flows_deny[ev->reason] += count;
		log_it = true;
		break;
	case EVENT_DNS_DENY:
		log_it = true;
		break;
	case EVENT_DNS_ALLOW:
	default:
		log_it = d->conf->log_level == CONF_LOG_ALL;
		break;
	}
	if (log_it)
		log_event(ev);
}

struct deferred_resolved {
	struct daemon *d;
	size_t n;
	char name[NAME_MAX_LEN + 1];
	struct dns_addr addrs[];
};

static void resolved_now(struct daemon *d, const char *name, const struct dns_addr *addrs, size_t n)
{
	if (d->stopping || !d->engine)
		return;
	d->in_engine++;
	engine_resolved(d->engine, name, addrs, n, now_ns());
	d->in_engine--;
}

static void on_deferred_resolved(evutil_socket_t fd, short what, void *arg)
{
	struct deferred_resolved *r = arg;

	resolved_now(r->d, r->name, r->addrs, r->n);
	free(r);
}

/*
 * A lookup answer. If it arrives while we are still inside an engine call
 * (c-ares may answer synchronously, e.g. from /etc/hosts or on an immediate
 * failure), it is handed back from the loop instead: the engine is not
 * reentrant.
 */
static void on_lookup(void *arg, const char *name, const struct dns_addr *addrs, size_t n)
{
	struct daemon *d = arg;

	if (d->in_engine == 0) {
		resolved_now(d, name, addrs, n);
		return;
	}
	struct deferred_resolved *r = calloc(1, sizeof(*r) + n * sizeof(*addrs));
	if (!r)
		return; /* the engine's hold bound denies the flow later: fail closed */
	r->d = d;
	r->n = n;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (n)
		memcpy(r->addrs, addrs, n * sizeof(*addrs));
	const struct timeval zero = {0, 0};
	if (event_base_once(d->base, -1, EV_TIMEOUT, on_deferred_resolved, r, &zero) == -1)
		free(r);
}

static void on_resolve(void *arg, const char *name)
{
	struct daemon *d = arg;

	if (!d->resolver || resolver_lookup(d->resolver, name, on_lookup, d) < 0)
		on_lookup(d, name, NULL, 0); /* deferred: we are inside the engine */
}

static const char *registrable(const char *name, void *arg)
{
	const struct daemon *d = arg;

	return d->psl ? psl_registrable_domain(d->psl, name) : NULL;
}

static void on_packet(void *arg, uint64_t handle, const uint8_t *pkt, size_t len, int64_t uid,
                      unsigned qflags, uint64_t now)
{
	struct daemon *d = arg;

	d->in_engine++;
	unsigned eflags = qflags & QUEUE_PKT_CSUM_NOT_READY ? 0 : ENGINE_PKT_CSUM_VALID;
	if (qflags & QUEUE_PKT_CT_NEW)
		eflags |= ENGINE_PKT_CT_NEW;
	if (qflags & QUEUE_PKT_ACKED)
		eflags |= ENGINE_PKT_ACKED;
	engine_packet_flags(d->engine, handle, pkt, len, uid, eflags, now); /* one clock per batch */
	d->in_engine--;
}

/* ---- metrics ---- */

static void collect(void *arg, struct metrics_snapshot *s)
{
	struct daemon *d = arg;

	memcpy(s->packets, d->packets, sizeof(s->packets));
	s->flows_allow = d->flows_allow;
	memcpy(s->flows_deny, d->flows_deny, sizeof(s->flows_deny));
	if (d->dnsd) {
		struct dnsd_stats ds;
		memset(&ds, 0, sizeof(ds));
		dnsd_stats(d->dnsd, &ds);
		s->dns_allowed = ds.allowed;
		s->dns_denied = ds.denied;
		s->dns_failed = ds.failed;
		s->dns_limited_conns = ds.limited_conns;
		s->dns_limited_inflight = ds.limited_inflight;
		s->dns_limited_slow = ds.limited_slow;
	}
	for (unsigned i = 0; i < d->nqueues; i++) {
		struct queue_stats qs;
		memset(&qs, 0, sizeof(qs));
		queue_stats(d->queues[i], &qs);
		s->queue_dropped += qs.queue_dropped + qs.user_dropped;
	}
	s->log_write_errors = log_write_errors();
	s->dns_answers_dropped = resolver_case_mismatches(d->resolver);
	s->bindings = bind_count(d->bindings);
	struct engine_stats es;
	memset(&es, 0, sizeof(es));
	engine_stats(d->engine, &es);
	s->flows_tracked = es.flows_tracked;
}

/* ---- signals and timer ---- */

static void conns_sync(struct daemon *d, uint64_t now);

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->opts->stop_flag && *d->opts->stop_flag) {
		d->stopping = true;
		event_base_loopbreak(d->base);
		return;
	}
	uint64_t now = now_ns();
	d->in_engine++;
	engine_tick(d->engine, now);
	d->in_engine--;
	conns_sync(d, now);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	d->stopping = true;
	event_base_loopbreak(d->base);
}

static void engine_config_for(struct daemon *d, const struct conf *c)
{
	d->ecfg = c->engine;
	d->ecfg.enforce = c->enforce;
	/* host mode: the local TCP stack waits for held segments (engine.h) */
	d->ecfg.drop_partial = c->mode == CONF_MODE_HOST;
	d->ecfg.registrable = registrable;
	d->ecfg.registrable_arg = d;
	d->ecfg.hash_seed = d->flow_seed;
	/* Held packets wait in the kernel queue: keep them well below its length. */
	if (d->ecfg.hold_packets_total > QUEUE_MAXLEN / 4)
		d->ecfg.hold_packets_total = QUEUE_MAXLEN / 4;
}

/* The flow table's hash seed: an attacker who can predict it can fill one chain. */
static int flow_seed_random(uint64_t *seed)
{
	uint8_t *p = (uint8_t *)seed;
	size_t got = 0;
	while (got < sizeof *seed) {
		ssize_t n = getrandom(p + got, sizeof *seed - got, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

/* Settings read once at start: a reload cannot move sockets or rules. */
static bool structural_change(const struct conf *a, const struct conf *b)
{
	if (a->mode != b->mode || strcmp(a->inside, b->inside) != 0 ||
	    a->queue_num != b->queue_num || a->queue_threads != b->queue_threads ||
	    a->ndns_listen != b->ndns_listen || a->ndns_upstream != b->ndns_upstream ||
	    a->metrics_enabled != b->metrics_enabled || a->dns_timeout_ms != b->dns_timeout_ms ||
	    a->dns_tries != b->dns_tries || a->dns_container_port != b->dns_container_port ||
	    a->mark_mask != b->mark_mask)
		return true;
	for (size_t i = 0; i < a->ndns_listen; i++)
		if (!addr_eq(&a->dns_listen[i].addr, &b->dns_listen[i].addr) ||
		    a->dns_listen[i].port != b->dns_listen[i].port)
			return true;
	for (size_t i = 0; i < a->ndns_upstream; i++)
		if (!addr_eq(&a->dns_upstream[i].addr, &b->dns_upstream[i].addr) ||
		    a->dns_upstream[i].port != b->dns_upstream[i].port)
			return true;
	if (a->metrics_enabled && (!addr_eq(&a->metrics_listen.addr, &b->metrics_listen.addr) ||
	                           a->metrics_listen.port != b->metrics_listen.port))
		return true;
	return false;
}

static void reopen_log(struct daemon *d)
{
	const char *want = d->conf->log_file ? d->conf->log_file : "-";
	const char *have = log_path();
	int rc = have && strcmp(have, want) == 0 ? log_reopen() : log_open(want);

	if (rc < 0)
		log_error(NULL, 0, "cannot reopen log %s: %s (still writing to the old one)", want,
		          strerror(-rc));
}

/* ---- revoke (SPEC [egressd] revoke; doc/DESIGN.md "Revoke") ---- */

#define DAEMON_CT_MAX (4u * 1024u * 1024u) /* conntrack entries read in one pass */
#define DAEMON_CONNS_SYNC_NS (5ull * 1000000000ull) /* at most this often */

struct ct_list {
	struct engine_conn *v;
	size_t n, cap;
	bool full;
};

static int ct_collect(const struct ct_entry *e, void *arg)
{
	struct ct_list *l = arg;

	/* The engine decides TCP and UDP; a closed TCP connection carries nothing. */
	if ((e->proto != IPPROTO_TCP && e->proto != IPPROTO_UDP) || !ct_entry_open(e))
		return 0;
	if (e->src.family != e->dst.family)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 1024;
		struct engine_conn *nv = nc <= DAEMON_CT_MAX ? realloc(l->v, nc * sizeof *nv) : NULL;
		if (!nv) {
			l->full = true;
			return -1;
		}
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = (struct engine_conn){.proto = e->proto,
	                                    .src = e->src,
	                                    .dst = e->dst,
	                                    .sport = e->sport,
	                                    .dport = e->dport,
	                                    .zone = e->zone};
	return 0;
}

/* The connections conntrack carries as allowed. 0, or -errno (the list is partial). */
static int ct_allowed(struct daemon *d, struct ct_list *l)
{
	int rc = -ENOTCONN;

	memset(l, 0, sizeof *l);
	/* A dump the kernel flags interrupted (the table changed under it) is retried. */
	for (int tries = 0; d->ct && tries < 3; tries++) {
		l->n = 0;
		l->full = false;
		rc = ct_dump_mark(d->ct, d->marks.allow, d->marks.mask, ct_collect, l);
		if (rc != -EINTR)
			break;
	}
	if (rc == 0 && l->full)
		rc = -ENOMEM;
	return rc;
}

struct cut_ctx {
	struct daemon *d;
	unsigned failed;
	int last_err;
};

/*
 * Cut one connection: its conntrack entry is marked DENY (not deleted), so
 * the ruleset's fast path resets (TCP) or drops its next packet (gateway:
 * either direction; host: outgoing). A deleted entry would let the next packet make a new one; in
 * host mode a packet from the server would then make the client's packets
 * replies, which the output hook passes. Delete only if the update fails.
 */
static void ct_cut(void *arg, const struct engine_conn *c)
{
	struct cut_ctx *x = arg;
	struct ct_entry e = {.proto = c->proto,
	                     .src = c->src,
	                     .dst = c->dst,
	                     .sport = c->sport,
	                     .dport = c->dport,
	                     .zone = c->zone};
	int rc = x->d->ct ? ct_set_mark(x->d->ct, &e, x->d->marks.deny, x->d->marks.mask)
	                   : -ENOTCONN;
	if (rc < 0 && rc != -ENOENT && x->d->ct)
		rc = ct_delete(x->d->ct, &e);
	if (rc < 0 && rc != -ENOENT) {
		x->failed++;
		x->last_err = rc;
	}
}

/* After a reload: cut what the new policy no longer allows. Returns how many. */
static size_t revoke_pass(struct daemon *d)
{
	struct ct_list l;
	int rc = ct_allowed(d, &l);

	if (rc < 0)
		log_error(NULL, 0,
		          "revoke: cannot list conntrack entries (%s); only the connections "
		          "egressd recorded are judged",
		          strerror(-rc));
	struct cut_ctx x = {.d = d};
	d->in_engine++;
	size_t n = engine_revoke(d->engine, l.v, l.n, rc == 0, ct_cut, &x, now_ns());
	d->in_engine--;
	free(l.v);
	if (x.failed)
		log_error(NULL, 0, "revoke: %u connection(s) could not be cut: %s", x.failed,
		          strerror(-x.last_err));
	d->conns_synced_ns = now_ns();
	return n;
}

/* Tick: when the records fill up, forget those conntrack no longer lists. */
static void conns_sync(struct daemon *d, uint64_t now)
{
	struct engine_stats es;

	memset(&es, 0, sizeof(es));
	engine_stats(d->engine, &es);
	if (!d->ct || es.conns_recorded < es.conns_max / 4 * 3 ||
	    now - d->conns_synced_ns < DAEMON_CONNS_SYNC_NS)
		return;
	d->conns_synced_ns = now;
	struct ct_list l;
	if (ct_allowed(d, &l) == 0) {
		d->in_engine++;
		engine_conns_sync(d->engine, l.v, l.n);
		d->in_engine--;
	}
	free(l.v);
}

/*
 * SIGHUP: read the config and allowlists again. Either all of it becomes
 * the new policy or none of it does. Settings that need sockets or rules
 * (mode, queues, listeners, upstreams, metrics) keep their start-up values.
 */
static void reload(struct daemon *d)
{
	struct diag dg;
	struct conf *nc = NULL;
	struct policy *np = NULL;

	memset(&dg, 0, sizeof(dg));
	if (!d->opts->conf_path) {
		reopen_log(d);
		return;
	}
	if (conf_load(d->opts->conf_path, &nc, &dg) == -1 || !nc) {
		log_error((const char *const *)dg.lines, dg.n,
		          "reload of %s failed (%u error(s)); keeping the old policy",
		          d->opts->conf_path, dg.errors);
		goto out;
	}
	np = conf_load_policy(nc, &dg);
	if (!np) {
		log_error((const char *const *)dg.lines, dg.n,
		          "reload of %s failed (%u error(s) in allowlists); keeping the old policy",
		          d->opts->conf_path, dg.errors);
		goto out;
	}
	bool restart_needed = structural_change(d->conf, nc);

	/* Adopt the live settings; swap the log path so the old one is freed with nc. */
	d->conf->enforce = nc->enforce;
	d->conf->revoke = nc->revoke;
	d->conf->engine = nc->engine;
	d->conf->dns_deny_rcode = nc->dns_deny_rcode;
	d->conf->log_level = nc->log_level;
	char *lf = d->conf->log_file;
	d->conf->log_file = nc->log_file;
	nc->log_file = lf;

	engine_config_for(d, d->conf);
	d->in_engine++;
	engine_set_policy(d->engine, np, &d->ecfg);
	d->in_engine--;
	if (d->dnsd)
		dnsd_set_engine(d->dnsd, d->engine, d->conf->dns_deny_rcode);
	resolver_set_max_ttl(d->resolver, d->ecfg.bind_max_ttl);
	policy_free(d->policy);
	d->policy = np;
	np = NULL;

	long revoked = d->conf->revoke ? (long)revoke_pass(d) : -1;
	reopen_log(d);
	struct policy_stats st;
	memset(&st, 0, sizeof(st));
	policy_stats(d->policy, &st);
	log_reload(&st, dg.warnings, revoked);
	if (restart_needed)
		log_error(NULL, 0,
		          "reload: mode, queue, [dns] listen/upstream or [metrics] changed; "
		          "those take effect on restart only");
out:
	policy_free(np);
	conf_free(nc);
	diag_clear(&dg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	reload(arg);
}

/* ---- privileges ---- */

/*
 * Keep CAP_NET_ADMIN (netlink verdicts, SO_MARK on new resolver sockets)
 * and CAP_NET_BIND_SERVICE, nothing else; optionally become user. The log
 * file stays open across the switch, but a SIGHUP reopen happens as user:
 * the file and its directory must be writable by that user.
 */
static int drop_privileges(const char *user, char *err, size_t errlen)
{
	uid_t uid = 0;
	gid_t gid = 0;

	if (user && *user) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
		if (rc != 0 || !res) {
			snprintf(err, errlen, "user %s: %s", user,
			         rc ? strerror(rc) : "no such user");
			return -1;
		}
		uid = pw.pw_uid;
		gid = pw.pw_gid;
	}
	if (geteuid() != 0 && !(user && *user))
		return 0; /* started unprivileged (tests, audit): nothing to give up */
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
	                  CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, -1) != 0) {
		snprintf(err, errlen, "capng_updatev failed");
		return -1;
	}
	int rc;
	if (user && *user) {
		rc =
		    capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	} else {
		/*
		 * Bounding set first, while CAP_SETPCAP is still held; a container
		 * without it keeps its bounding set, which is no reason to refuse
		 * to run: the permitted set below is what limits us.
		 */
		(void)capng_apply(CAPNG_SELECT_BOUNDS);
		rc = capng_apply(CAPNG_SELECT_CAPS);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot drop privileges%s%s (libcap-ng error %d)%s",
		         user ? " to user " : "", user ? user : "", rc,
		         user ? "; needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP" : "");
		return -1;
	}
	return 0;
}

/* ---- start and stop ---- */

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_msg(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "egressd: %s\n", msg);
	const char *p = log_path();
	if (p && strcmp(p, "-") != 0) /* on stdout the line above already says it */
		log_error(NULL, 0, "%s", msg);
}

static int start(struct daemon *d)
{
	char err[512];
	const struct conf *c = d->conf;

	err[0] = '\0';
	d->base = event_base_new();
	if (!d->base) {
		fail_msg("event_base_new failed");
		return -1;
	}
	d->psl = psl_builtin();
	if (!d->psl)
		d->psl = d->psl_owned = psl_latest(NULL);
	int serr = flow_seed_random(&d->flow_seed);
	struct bind_config bcfg;
	bind_config_defaults(&bcfg, DAEMON_MAX_BINDINGS);
	if (serr == 0)
		serr = flow_seed_random(&bcfg.seed);
	if (serr < 0) {
		fail_msg("getrandom: %s", strerror(-serr));
		return -1;
	}
	d->bindings = bind_new_config(&bcfg);
	if (!d->bindings) {
		fail_msg("out of memory (bindings)");
		return -1;
	}
	engine_config_for(d, c);
	const struct engine_hooks hooks = {
	    .verdict = on_verdict,
	    .event = on_event,
	    .resolve = on_resolve,
	    .arg = d,
	};
	d->engine = engine_new(&d->ecfg, d->policy, d->bindings, &hooks);
	if (!d->engine) {
		fail_msg("out of memory (engine)");
		return -1;
	}
	if (daemon_dns_listen(c, d->listen, CONF_MAX_LISTEN_ALL, &d->nlisten, err, sizeof(err)) == -1) {
		fail_msg("DNS listener: %s", err);
		return -1;
	}

	/* ctnetlink for revoke: needed with revoke = yes, opened anyway (a reload may turn it on). */
	d->ct = ct_open(err, sizeof(err));
	if (!d->ct && c->revoke) {
		fail_msg("revoke = yes: %s", err);
		return -1;
	}
	d->conns_synced_ns = now_ns();

	unsigned threads = c->queue_threads ? c->queue_threads : 1;
	if (threads > DAEMON_MAX_QUEUES || c->queue_num + threads - 1 > 65535) {
		fail_msg("[queue] num = %u, threads = %u: out of range", c->queue_num, threads);
		return -1;
	}
	d->queue_base = c->queue_num;
	for (unsigned i = 0; i < threads; i++) {
		d->queues[i] = queue_open(d->base, (uint16_t)(c->queue_num + i), on_packet, d, err,
		                          sizeof(err));
		if (!d->queues[i]) {
			fail_msg("queue %u: %s", c->queue_num + i, err);
			return -1;
		}
		d->nqueues = i + 1;
		if (queue_set_mark_mask(d->queues[i], c->mark_mask) != 0) {
			fail_msg("[queue] mark_mask = 0x%08x: fewer than %d bits", c->mark_mask,
			         MARK_BITS);
			return -1;
		}
	}
	marks_from_mask(c->mark_mask, &d->marks);

	struct resolver_opts ropts = {.timeout_ms = c->dns_timeout_ms, .tries = c->dns_tries,
	                              .max_ttl = c->engine.bind_max_ttl};
	d->resolver =
	    resolver_new_opts(d->base, c->dns_upstream, c->ndns_upstream, d->marks.self, &ropts, err,
	                      sizeof(err));
	if (!d->resolver) {
		fail_msg("resolver: %s", err);
		return -1;
	}
	d->dnsd = dnsd_new(d->base, d->listen, d->nlisten, d->engine, d->resolver,
	                   c->dns_deny_rcode, err, sizeof(err));
	if (!d->dnsd) {
		fail_msg("DNS listener: %s", err);
		return -1;
	}
	if (c->metrics_enabled) {
		d->metrics = metrics_new(d->base, &c->metrics_listen, collect, d, err, sizeof(err));
		if (!d->metrics) {
			fail_msg("%s", err);
			return -1;
		}
	}

	d->tick = event_new(d->base, -1, EV_PERSIST, on_tick, d);
	d->sighup = evsignal_new(d->base, SIGHUP, on_hup, d);
	d->sigterm = evsignal_new(d->base, SIGTERM, on_stop, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_stop, d);
	const struct timeval tick = {0, DAEMON_TICK_US};
	if (!d->tick || !d->sighup || !d->sigterm || !d->sigint ||
	    event_add(d->tick, &tick) == -1 || event_add(d->sighup, NULL) == -1 ||
	    event_add(d->sigterm, NULL) == -1 || event_add(d->sigint, NULL) == -1) {
		fail_msg("cannot set up timer and signal events");
		return -1;
	}

	if (d->opts->apply_rules) {
		struct rules_params rp;
		enum rules_backend b = RULES_AUTO;
		char why[256] = "";
		daemon_rules_params(c, d->listen, d->nlisten, d->opts->table, &rp);
		rp.inside_local_dns_only = d->opts->inside_local_dns_only;
		if (rules_detect(&b, why, sizeof(why)) < 0) {
			fail_msg("ruleset: no usable backend: %s", why);
			return -1;
		}
		/* `egressd rules --apply` refuses on this; the daemon (egressd run)
		 * warns and goes on: no ruleset at all would filter nothing. */
		if (rules_mark_conflicts(&rp, err, sizeof(err)) > 0)
			fprintf(stderr, "egressd: warning: mark bits 0x%08x are used elsewhere: %s\n",
			        c->mark_mask, err);
		if (rules_apply(&rp, b, err, sizeof(err)) == -1) {
			fail_msg("ruleset (%s): %s", rules_backend_name(b), err);
			return -1;
		}
	}

	if (!d->opts->keep_privileges) {
		const char *user = d->opts->user ? d->opts->user : getenv("EGRESSD_USER");
		if (drop_privileges(user, err, sizeof(err)) == -1) {
			fail_msg("%s", err);
			return -1;
		}
	}
	return 0;
}

static void announce_ready(struct daemon *d)
{
	char eps[CONF_MAX_LISTEN_ALL][ADDR_STRLEN + 16];
	const char *epp[CONF_MAX_LISTEN_ALL];
	unsigned qn[DAEMON_MAX_QUEUES];

	for (size_t i = 0; i < d->nlisten; i++)
		epp[i] = daemon_endpoint_str(&d->listen[i], eps[i], sizeof(eps[i]));
	for (unsigned i = 0; i < d->nqueues; i++)
		qn[i] = d->queue_base + i;
	const char *mode = d->conf->mode == CONF_MODE_GATEWAY ? "gateway" : "host";
	log_ready(mode, d->conf->enforce, qn, d->nqueues, epp, d->nlisten);
	sd_notify(0, "READY=1");
	if (d->opts->ready_fd >= 0) {
		const char byte = 1;
		ssize_t w;
		do
			w = write(d->opts->ready_fd, &byte, 1);
		while (w == -1 && errno == EINTR);
		close(d->opts->ready_fd);
	}
	d->ready = true;
}

static void stop(struct daemon *d)
{
	d->stopping = true;
	/* Listeners first (they borrow the engine and resolver), then the engine,
	 * whose held packets get their DENY verdicts through the still-open queues. */
	dnsd_free(d->dnsd);
	d->dnsd = NULL;
	resolver_free(d->resolver);
	d->resolver = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
	engine_free(d->engine);
	d->engine = NULL;
	for (unsigned i = 0; i < d->nqueues; i++)
		queue_close(d->queues[i]);
	d->nqueues = 0;
	ct_close(d->ct);
	d->ct = NULL;
	if (d->tick)
		event_free(d->tick);
	if (d->sighup)
		event_free(d->sighup);
	if (d->sigterm)
		event_free(d->sigterm);
	if (d->sigint)
		event_free(d->sigint);
	bind_free(d->bindings);
	policy_free(d->policy);
	conf_free(d->conf);
	if (d->psl_owned)
		psl_free(d->psl_owned);
	if (d->base)
		event_base_free(d->base);
}

int daemon_run(struct conf *conf, struct policy *policy, const struct daemon_opts *opts)
{
	struct daemon d;
	int rc = 1;

	memset(&d, 0, sizeof(d));
	d.conf = conf;
	d.policy = policy;
	d.opts = opts;
	signal(SIGPIPE, SIG_IGN); /* a vanished log reader is a write error, not our death */

	int lrc = log_open(conf->log_file ? conf->log_file : "-");
	if (lrc < 0) {
		fprintf(stderr, "egressd: cannot open log %s: %s\n",
		        conf->log_file ? conf->log_file : "-", strerror(-lrc));
		goto out;
	}
	if (start(&d) == -1)
		goto out;
	announce_ready(&d);
	if (event_base_dispatch(d.base) == -1)
		fail_msg("event loop failed");
	else
		rc = 0;
	sd_notify(0, "STOPPING=1");
out:
	if (opts->ready_fd >= 0 && !d.ready)
		close(opts->ready_fd); /* never ready: the caller sees EOF without a byte */
	stop(&d);
	log_close();
	return rc;
}
