/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon shell: the libevent loops that own the engines and everything
 * that feeds them or carries their decisions out.
 *
 *   worker i: nfqueue num+i --packet--> engine_packet --verdict--> queue_verdict
 *   DNS thread: dnsd (UDP/TCP 53) --query--> engine_dns_query --forward--> resolver
 *   timers 100 ms --> engine_tick (each engine)   engines --event--> log queue + counters
 *   main: SIGHUP --> reload policy + reopen log   SIGTERM/SIGINT --> leave loops
 *
 * Threads (doc/DESIGN.md "Workers"): the engine is not thread-safe, so each
 * queue has a worker thread with its own event loop, engine and flow table;
 * the kernel spreads flows over the queues by address hash, so a flow always
 * meets the same worker. A DNS thread runs the listener, the resolver and an
 * engine of its own for the DNS guard; the main loop keeps metrics, signals,
 * reload and revoke. Shared: the bindings (bind_share: a lock with a slot
 * per reader thread; the DNS side writes, every worker reads) and the policy (read-only; a reload hands
 * each worker the new one in its own loop and frees the old one only after
 * every worker has switched: no lock on the packet path, no worker sees a
 * mix). Work crosses threads through mailboxes (struct mbox); the event log
 * goes through a bounded queue to one writer thread (log.h).
 *
 * Start-up order: everything is opened and bound first (queues, resolver,
 * DNS listener, metrics, ruleset), then privileges are dropped, then
 * `ready` is logged and systemd notified. Any failure before that exits 1;
 * an applied ruleset is left in place (fail closed), never removed here.
 */
#define _GNU_SOURCE /* pthread_setname_np */
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
#include <event2/thread.h>
#include <ifaddrs.h>
#include <libpsl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
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

/* ---- mailboxes: work handed to another thread's loop ---- */

/* Embedded in its payload; fn frees the payload. cancel: the loop is gone, never ran. */
struct task {
	struct task *next;
	void (*fn)(struct task *t, bool cancel);
};

struct mbox {
	pthread_mutex_t mu;
	struct task *head, **tail;
	struct event *ev; /* activated on post; its callback runs the tasks */
	bool closed;
	bool init;
};

static void mbox_run(evutil_socket_t fd, short what, void *arg)
{
	struct mbox *m = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&m->mu);
	struct task *t = m->head;
	m->head = NULL;
	m->tail = &m->head;
	pthread_mutex_unlock(&m->mu);
	while (t) {
		struct task *next = t->next;
		t->fn(t, false);
		t = next;
	}
}

static int mbox_init(struct mbox *m, struct event_base *base)
{
	memset(m, 0, sizeof *m);
	m->ev = event_new(base, -1, 0, mbox_run, m);
	if (!m->ev)
		return -ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->tail = &m->head;
	m->init = true;
	return 0;
}

/* From any thread. A closed mailbox cancels the task at once. */
static void mbox_post(struct mbox *m, struct task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&m->mu);
	if (m->closed) {
		pthread_mutex_unlock(&m->mu);
		t->fn(t, true);
		return;
	}
	*m->tail = t;
	m->tail = &t->next;
	event_active(m->ev, EV_TIMEOUT, 1); /* thread-safe: evthread_use_pthreads */
	pthread_mutex_unlock(&m->mu);
}

/* After the owning loop has stopped: cancel what is left, free the event. */
static void mbox_close(struct mbox *m)
{
	if (!m->init)
		return;
	pthread_mutex_lock(&m->mu);
	m->closed = true;
	struct task *t = m->head;
	m->head = NULL;
	m->tail = &m->head;
	pthread_mutex_unlock(&m->mu);
	while (t) {
		struct task *next = t->next;
		t->fn(t, true);
		t = next;
	}
	event_free(m->ev);
	m->ev = NULL;
	pthread_mutex_destroy(&m->mu);
	m->init = false;
}

/* ---- counters: one writer thread each, read by the metrics scrape ---- */

struct counters {
	_Atomic uint64_t packets[5];
	_Atomic uint64_t flows_allow;
	_Atomic uint64_t flows_deny[REASON_COUNT_];
	_Atomic uint64_t bad_handles;
};

#define CNT_ADD(c, n)                                                                              \
	atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),        \
	                      memory_order_relaxed)
#define CNT_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

struct daemon;

/* One queue, one thread: its loop, engine and flow table (threads = T: T of them). */
struct worker {
	struct daemon *d;
	unsigned idx;
	uint16_t qnum;
	struct event_base *base;
	struct queue *queue;
	struct engine *engine;
	struct engine_config ecfg;
	bool log_all; /* [egressd] log = all, as of the last policy this worker took */
	struct mbox mbox;
	struct task stop_task;
	struct event *tick;
	pthread_t thread;
	bool running;
	struct counters cnt;
	/* published by the worker's tick for the main loop */
	_Atomic uint64_t flows_tracked, conns_recorded, conns_max, queue_dropped;
	/* revoke pass: the connections to cut (main reads them after the call) */
	struct engine_conn *cuts;
	size_t ncuts, cuts_cap;
	unsigned cuts_lost;
	size_t revoked;
};

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

	struct queue *queues[DAEMON_MAX_QUEUES]; /* the workers' (borrowed) */
	unsigned queue_base, nqueues;
	struct worker *workers; /* nworkers == nqueues once started */
	unsigned nworkers;
	/* The DNS thread: its loop runs the listener, the resolver and the DNS
	 * engine (d->engine); mbox takes the resolutions workers ask for and
	 * the reload's new policy. */
	struct event_base *dbase;
	struct mbox mbox;
	struct event *dtick;
	struct task dstop_task;
	pthread_t dthread;
	bool drunning;
	bool dns_log_all; /* the DNS thread's copy of [log] level = all */
	/* published by the DNS thread's tick for the metrics scrape */
	_Atomic uint64_t dns_allowed, dns_denied, dns_failed, dns_answers_dropped;
	_Atomic uint64_t dns_limited_conns, dns_limited_inflight, dns_limited_slow;
	struct resolver *resolver;
	struct dnsd *dnsd;
	struct metrics *metrics;
	struct conf_endpoint listen[CONF_MAX_LISTEN_ALL];
	size_t nlisten;

	struct event *tick, *sighup, *sigterm, *sigint;
	struct ct *ct;             /* ctnetlink, for revoke (NULL: could not open) */
	uint64_t conns_synced_ns;  /* last prune of the engine's connection records */
	unsigned in_engine; /* > 0 while inside an engine_* call */
	_Atomic bool stopping; /* read by the DNS thread too */
	bool ready; /* announced (and ready_fd written and closed) */

	/* Counters of the main loop's engine (the DNS guard); the workers have theirs. */
	struct counters cnt;
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

	/* The main loop's engine sees no packets: any handle here is an engine bug. */
	(void)handle;
	(void)v;
	CNT_ADD(d->cnt.bad_handles, 1);
}

static void count_event(struct counters *c, bool log_all, const struct flow_event *ev)
{
	unsigned count = ev->count ? ev->count : 1;
	bool log_it;

	switch (ev->kind) {
	case EVENT_ALLOW:
		CNT_ADD(c->flows_allow, count);
		log_it = log_all;
		break;
	case EVENT_DENY:
		if ((unsigned)ev->reason < REASON_COUNT_)
			CNT_ADD(c->flows_deny[ev->reason], count);
		log_it = true;
		break;
	case EVENT_DNS_DENY:
		log_it = true;
		break;
	case EVENT_DNS_ALLOW:
	default:
		log_it = log_all;
		break;
	}
	if (log_it)
		log_event(ev);
}

static void on_event(void *arg, const struct flow_event *ev)
{
	struct daemon *d = arg;

	count_event(&d->cnt, d->dns_log_all, ev);
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
	if (event_base_once(d->dbase, -1, EV_TIMEOUT, on_deferred_resolved, r, &zero) == -1)
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

/* ---- workers ---- */

static void w_verdict(void *arg, uint64_t handle, enum verdict v)
{
	struct worker *w = arg;

	if (handle >> 32 != w->qnum) {
		/* A handle we never gave out: an engine bug. Count it; nothing to answer. */
		CNT_ADD(w->cnt.bad_handles, 1);
		return;
	}
	if ((unsigned)v < 5)
		CNT_ADD(w->cnt.packets[v], 1);
	/* A failed verdict leaves the packet queued until the kernel drops it: fail closed. */
	(void)queue_verdict(w->queue, handle, v);
}

static void w_event(void *arg, const struct flow_event *ev)
{
	struct worker *w = arg;

	count_event(&w->cnt, w->log_all, ev);
}

/* A worker's resolution (verify mode): asked of the main loop's resolver,
 * answered back into the worker's loop. Never synchronous, so the engine is
 * never reentered. Out of memory: no answer, the hold bound denies the flow. */
struct w_resolve {
	struct task t;
	struct worker *w;
	char name[NAME_MAX_LEN + 1];
};

struct w_resolved {
	struct task t;
	struct worker *w;
	size_t n;
	char name[NAME_MAX_LEN + 1];
	struct dns_addr addrs[];
};

static void w_resolved_run(struct task *t, bool cancel)
{
	struct w_resolved *r = (struct w_resolved *)t;

	if (!cancel && r->w->engine)
		engine_resolved(r->w->engine, r->name, r->addrs, r->n, now_ns());
	free(r);
}

static void w_lookup_done(void *arg, const char *name, const struct dns_addr *addrs, size_t n)
{
	struct w_resolve *q = arg;
	struct w_resolved *r = calloc(1, sizeof(*r) + n * sizeof(*addrs));

	if (r) {
		r->t.fn = w_resolved_run;
		r->w = q->w;
		r->n = n;
		snprintf(r->name, sizeof(r->name), "%s", name);
		if (n)
			memcpy(r->addrs, addrs, n * sizeof(*addrs));
		mbox_post(&q->w->mbox, &r->t);
	}
	free(q);
}

static void w_resolve_run(struct task *t, bool cancel)
{
	struct w_resolve *q = (struct w_resolve *)t;
	struct daemon *d = q->w->d;

	if (cancel || d->stopping) {
		free(q);
		return;
	}
	if (!d->resolver || resolver_lookup(d->resolver, q->name, w_lookup_done, q) < 0)
		w_lookup_done(q, q->name, NULL, 0);
}

static void w_resolve(void *arg, const char *name)
{
	struct worker *w = arg;
	struct w_resolve *q = calloc(1, sizeof(*q));

	if (!q)
		return;
	q->t.fn = w_resolve_run;
	q->w = w;
	snprintf(q->name, sizeof(q->name), "%s", name);
	mbox_post(&w->d->mbox, &q->t);
}

static void w_packet(void *arg, uint64_t handle, const uint8_t *pkt, size_t len, int64_t uid,
                     unsigned qflags, uint64_t now)
{
	struct worker *w = arg;
	unsigned eflags = qflags & QUEUE_PKT_CSUM_NOT_READY ? 0 : ENGINE_PKT_CSUM_VALID;

	if (qflags & QUEUE_PKT_CT_NEW)
		eflags |= ENGINE_PKT_CT_NEW;
	if (qflags & QUEUE_PKT_ACKED)
		eflags |= ENGINE_PKT_ACKED;
	engine_packet_flags(w->engine, handle, pkt, len, uid, eflags, now); /* one clock per batch */
}

/* What the main loop reads of a worker, refreshed every tick. */
static void w_publish(struct worker *w)
{
	struct engine_stats es;
	struct queue_stats qs;

	memset(&es, 0, sizeof(es));
	memset(&qs, 0, sizeof(qs));
	engine_stats(w->engine, &es);
	queue_stats(w->queue, &qs);
	atomic_store_explicit(&w->flows_tracked, es.flows_tracked, memory_order_relaxed);
	atomic_store_explicit(&w->conns_recorded, es.conns_recorded, memory_order_relaxed);
	atomic_store_explicit(&w->conns_max, es.conns_max, memory_order_relaxed);
	atomic_store_explicit(&w->queue_dropped, qs.queue_dropped + qs.user_dropped,
	                      memory_order_relaxed);
}

static void w_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	engine_tick(w->engine, now_ns());
	w_publish(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w_publish(w);
	(void)event_base_dispatch(w->base);
	/* Held packets get their DENY verdicts through the still-open queue. */
	engine_free(w->engine);
	w->engine = NULL;
	return NULL;
}

/* A count of tasks posted to other loops; the poster waits until it is 0. */
struct countdown {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned pending;
};

static void countdown_init(struct countdown *c, unsigned n)
{
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->pending = n;
}

static void countdown_done(struct countdown *c)
{
	pthread_mutex_lock(&c->mu);
	c->pending--;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Wait for every task, then release the countdown. */
static void countdown_wait(struct countdown *c)
{
	pthread_mutex_lock(&c->mu);
	while (c->pending)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
}

/* Run fn(w, arg) in every worker's loop and wait until all have returned. */
struct w_call {
	struct countdown cd;
	void (*fn)(struct worker *w, void *arg);
	void *arg;
};

struct w_call_task {
	struct task t;
	struct w_call *c;
	struct worker *w;
};

static void w_call_run(struct task *t, bool cancel)
{
	struct w_call_task *ct = (struct w_call_task *)t;
	struct w_call *c = ct->c;

	if (!cancel)
		c->fn(ct->w, c->arg);
	countdown_done(&c->cd);
}

static void workers_call(struct daemon *d, void (*fn)(struct worker *w, void *arg), void *arg)
{
	struct w_call c = {.fn = fn, .arg = arg};
	struct w_call_task tasks[DAEMON_MAX_QUEUES];

	if (d->nworkers == 0)
		return;
	countdown_init(&c.cd, d->nworkers);
	for (unsigned i = 0; i < d->nworkers; i++) {
		tasks[i] = (struct w_call_task){.t.fn = w_call_run, .c = &c, .w = &d->workers[i]};
		if (d->workers[i].running)
			mbox_post(&d->workers[i].mbox, &tasks[i].t);
		else
			w_call_run(&tasks[i].t, false); /* not started: it is ours to touch */
	}
	countdown_wait(&c.cd);
}

/* Reload: the policy every worker decides with from its next packet on. */
struct w_policy {
	const struct policy *policy;
	const struct engine_config *ecfg;
	bool log_all;
};

static void w_set_policy(struct worker *w, void *arg)
{
	const struct w_policy *p = arg;

	w->ecfg = *p->ecfg;
	w->log_all = p->log_all;
	engine_set_policy(w->engine, p->policy, &w->ecfg);
}

/* Stop: the loop leaves after the task (a loopbreak before the loop runs would be lost). */
static void w_stop_run(struct task *t, bool cancel)
{
	struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, stop_task));

	if (!cancel)
		event_base_loopbreak(w->base);
}

/* ---- metrics ---- */

static void dns_call(struct daemon *d, void (*fn)(struct daemon *d, void *arg), void *arg);
static void dns_refresh(struct daemon *d, void *arg);

static void collect(void *arg, struct metrics_snapshot *s)
{
	struct daemon *d = arg;

	const struct counters *all[DAEMON_MAX_QUEUES + 1];
	unsigned nall = 0;

	all[nall++] = &d->cnt;
	for (unsigned i = 0; i < d->nworkers; i++)
		all[nall++] = &d->workers[i].cnt;
	for (unsigned k = 0; k < nall; k++) {
		uint64_t wp = 0;
		for (unsigned v = 0; v < 5; v++) {
			uint64_t n = CNT_GET(all[k]->packets[v]);
			s->packets[v] += n;
			wp += n;
		}
		s->flows_allow += CNT_GET(all[k]->flows_allow);
		for (unsigned r = 0; r < REASON_COUNT_; r++)
			s->flows_deny[r] += CNT_GET(all[k]->flows_deny[r]);
		if (k > 0 && k - 1 < METRICS_MAX_WORKERS)
			s->worker_packets[k - 1] = wp;
	}
	s->nworkers = d->nworkers < METRICS_MAX_WORKERS ? d->nworkers : METRICS_MAX_WORKERS;
	dns_call(d, dns_refresh, NULL); /* exact DNS counters: the scrape waits a moment */
	s->dns_allowed = CNT_GET(d->dns_allowed);
	s->dns_denied = CNT_GET(d->dns_denied);
	s->dns_failed = CNT_GET(d->dns_failed);
	s->dns_limited_conns = CNT_GET(d->dns_limited_conns);
	s->dns_limited_inflight = CNT_GET(d->dns_limited_inflight);
	s->dns_limited_slow = CNT_GET(d->dns_limited_slow);
	for (unsigned i = 0; i < d->nworkers; i++) {
		s->queue_dropped += CNT_GET(d->workers[i].queue_dropped);
		s->flows_tracked += CNT_GET(d->workers[i].flows_tracked);
	}
	s->log_write_errors = log_write_errors();
	s->log_dropped = log_dropped();
	s->dns_answers_dropped = CNT_GET(d->dns_answers_dropped);
	s->bindings = bind_count(d->bindings);
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
	conns_sync(d, now_ns());
}

/* ---- the DNS thread ---- */

/* What the metrics scrape reads of the DNS side, refreshed every tick. */
static void dns_publish(struct daemon *d)
{
	struct dnsd_stats ds;

	memset(&ds, 0, sizeof(ds));
	if (d->dnsd)
		dnsd_stats(d->dnsd, &ds);
	atomic_store_explicit(&d->dns_allowed, ds.allowed, memory_order_relaxed);
	atomic_store_explicit(&d->dns_denied, ds.denied, memory_order_relaxed);
	atomic_store_explicit(&d->dns_failed, ds.failed, memory_order_relaxed);
	atomic_store_explicit(&d->dns_limited_conns, ds.limited_conns, memory_order_relaxed);
	atomic_store_explicit(&d->dns_limited_inflight, ds.limited_inflight, memory_order_relaxed);
	atomic_store_explicit(&d->dns_limited_slow, ds.limited_slow, memory_order_relaxed);
	atomic_store_explicit(&d->dns_answers_dropped, resolver_case_mismatches(d->resolver),
	                      memory_order_relaxed);
}

static void on_dns_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	d->in_engine++;
	engine_tick(d->engine, now_ns());
	d->in_engine--;
	dns_publish(d);
}

static void dns_refresh(struct daemon *d, void *arg)
{
	(void)arg;
	dns_publish(d);
}

static void *dns_main(void *arg)
{
	struct daemon *d = arg;

	(void)event_base_dispatch(d->dbase);
	return NULL;
}

static void dns_stop_run(struct task *t, bool cancel)
{
	struct daemon *d = (struct daemon *)((char *)t - offsetof(struct daemon, dstop_task));

	if (!cancel)
		event_base_loopbreak(d->dbase);
}

/* Run fn(d, arg) in the DNS thread's loop and wait for it (directly if it is not running). */
struct dns_call {
	struct task t;
	struct daemon *d;
	void (*fn)(struct daemon *d, void *arg);
	void *arg;
	struct countdown cd;
};

static void dns_call_run(struct task *t, bool cancel)
{
	struct dns_call *c = (struct dns_call *)t;

	if (!cancel)
		c->fn(c->d, c->arg);
	countdown_done(&c->cd);
}

static void dns_call(struct daemon *d, void (*fn)(struct daemon *d, void *arg), void *arg)
{
	struct dns_call c = {.t.fn = dns_call_run, .d = d, .fn = fn, .arg = arg};

	if (!d->drunning) {
		fn(d, arg);
		return;
	}
	countdown_init(&c.cd, 1);
	mbox_post(&d->mbox, &c.t);
	countdown_wait(&c.cd);
}

/* Reload, on the DNS thread: its engine, listener and resolver take the new settings. */
struct dns_policy {
	const struct policy *policy;
	const struct engine_config *ecfg;
	uint8_t deny_rcode;
	bool log_all;
};

static void dns_set_policy(struct daemon *d, void *arg)
{
	const struct dns_policy *p = arg;

	d->dns_log_all = p->log_all;
	d->in_engine++;
	engine_set_policy(d->engine, p->policy, p->ecfg);
	d->in_engine--;
	if (d->dnsd)
		dnsd_set_engine(d->dnsd, d->engine, p->deny_rcode);
	resolver_set_max_ttl(d->resolver, p->ecfg->bind_max_ttl);
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
	/* a metadata endpoint reached from the host itself: its credentials */
	d->ecfg.metadata_critical = c->mode == CONF_MODE_HOST;
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

/*
 * Revoke with workers: each connection of conntrack's list is judged by one
 * engine. First every worker claims those it holds a record of (it allowed
 * them); then each judges its claims, and worker 0 also the unclaimed ones
 * (allowed before a restart: judged by address). The cuts are collected in
 * the workers and done here, with the main loop's ctnetlink socket.
 */
struct w_revoke {
	const struct engine_conn *conns;
	size_t n;
	bool complete;
	_Atomic unsigned short *owner; /* per conn: worker index + 1, 0 = unclaimed */
	uint64_t now;
};

static void w_claim(struct worker *w, void *arg)
{
	struct w_revoke *r = arg;

	for (size_t i = 0; i < r->n; i++)
		if (engine_conn_recorded(w->engine, &r->conns[i]))
			atomic_store_explicit(&r->owner[i], (unsigned short)(w->idx + 1),
			                      memory_order_relaxed);
}

static void w_cut(void *arg, const struct engine_conn *c)
{
	struct worker *w = arg;

	if (w->ncuts == w->cuts_cap) {
		size_t nc = w->cuts_cap ? w->cuts_cap * 2 : 64;
		struct engine_conn *nv = realloc(w->cuts, nc * sizeof *nv);
		if (!nv) {
			w->cuts_lost++;
			return;
		}
		w->cuts = nv;
		w->cuts_cap = nc;
	}
	w->cuts[w->ncuts++] = *c;
}

static void w_revoke_run(struct worker *w, void *arg)
{
	struct w_revoke *r = arg;
	struct engine_conn *mine = r->n ? malloc(r->n * sizeof *mine) : NULL;
	size_t m = 0;
	bool complete = r->complete;

	if (r->n && !mine)
		complete = false; /* judge this worker's own records only */
	for (size_t i = 0; mine && i < r->n; i++) {
		unsigned o = r->owner ? atomic_load_explicit(&r->owner[i], memory_order_relaxed) : 0;
		if (o == w->idx + 1 || (o == 0 && w->idx == 0))
			mine[m++] = r->conns[i];
	}
	w->ncuts = 0;
	w->cuts_lost = 0;
	w->revoked = engine_revoke(w->engine, mine, m, complete, w_cut, w, r->now);
	free(mine);
}

static void w_conns_sync(struct worker *w, void *arg)
{
	const struct ct_list *l = arg;

	engine_conns_sync(w->engine, l->v, l->n);
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
	struct w_revoke job = {.conns = l.v, .n = l.n, .complete = rc == 0, .now = now_ns()};
	if (l.n) {
		job.owner = calloc(l.n, sizeof *job.owner);
		if (!job.owner) {
			/* every worker judges its own records; the unrecorded are not judged */
			job.n = 0;
			job.complete = false;
		}
	}
	if (job.complete && job.n && d->nworkers > 1)
		workers_call(d, w_claim, &job);
	workers_call(d, w_revoke_run, &job);
	size_t n = 0;
	unsigned lost = 0;
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		n += w->revoked;
		lost += w->cuts_lost;
		for (size_t k = 0; k < w->ncuts; k++)
			ct_cut(&x, &w->cuts[k]);
		free(w->cuts);
		w->cuts = NULL;
		w->ncuts = w->cuts_cap = 0;
	}
	free(job.owner);
	free(l.v);
	if (lost) {
		x.failed += lost;
		x.last_err = -ENOMEM;
	}
	if (x.failed)
		log_error(NULL, 0, "revoke: %u connection(s) could not be cut: %s", x.failed,
		          strerror(-x.last_err));
	d->conns_synced_ns = now_ns();
	return n;
}

/* Tick: when the records fill up, forget those conntrack no longer lists. */
static void conns_sync(struct daemon *d, uint64_t now)
{
	bool full = false;

	for (unsigned i = 0; i < d->nworkers; i++) {
		uint64_t rec = CNT_GET(d->workers[i].conns_recorded);
		uint64_t max = CNT_GET(d->workers[i].conns_max);
		full = full || rec >= max / 4 * 3;
	}
	if (!d->ct || !full || now - d->conns_synced_ns < DAEMON_CONNS_SYNC_NS)
		return;
	d->conns_synced_ns = now;
	struct ct_list l;
	if (ct_allowed(d, &l) == 0)
		workers_call(d, w_conns_sync, &l);
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
	char *lh = d->conf->log_host;
	d->conf->log_host = nc->log_host;
	nc->log_host = lh;
	log_use_host(d->conf->log_host); /* hostname read again, or the new [log] host */

	engine_config_for(d, d->conf);
	struct dns_policy dp = {.policy = np,
	                        .ecfg = &d->ecfg,
	                        .deny_rcode = d->conf->dns_deny_rcode,
	                        .log_all = d->conf->log_level == CONF_LOG_ALL};
	dns_call(d, dns_set_policy, &dp);
	/* Every worker switches in its own loop, between two packets; the old
	 * policy is freed only once all have (none can still be reading it). */
	struct w_policy wp = {.policy = np,
	                      .ecfg = &d->ecfg,
	                      .log_all = d->conf->log_level == CONF_LOG_ALL};
	workers_call(d, w_set_policy, &wp);
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
	/* Workers post to the main loop and it to them: libevent's locks on. */
	if (evthread_use_pthreads() == -1) {
		fail_msg("evthread_use_pthreads failed");
		return -1;
	}
	d->base = event_base_new();
	d->dbase = event_base_new();
	d->dstop_task.fn = dns_stop_run;
	d->dns_log_all = c->log_level == CONF_LOG_ALL;
	if (!d->base || !d->dbase || mbox_init(&d->mbox, d->dbase) < 0) {
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
	if (!d->bindings || bind_share(d->bindings) < 0) {
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
	d->workers = calloc(threads, sizeof *d->workers);
	if (!d->workers) {
		fail_msg("out of memory (workers)");
		return -1;
	}
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &d->workers[i];
		w->d = d;
		w->idx = i;
		w->qnum = (uint16_t)(c->queue_num + i);
		w->ecfg = d->ecfg;
		w->log_all = c->log_level == CONF_LOG_ALL;
		w->stop_task.fn = w_stop_run;
		d->nworkers = i + 1;
		w->base = event_base_new();
		if (!w->base || mbox_init(&w->mbox, w->base) < 0) {
			fail_msg("event_base_new failed (worker %u)", i);
			return -1;
		}
		w->queue = queue_open(w->base, w->qnum, w_packet, w, err, sizeof(err));
		if (!w->queue) {
			fail_msg("queue %u: %s", c->queue_num + i, err);
			return -1;
		}
		d->queues[i] = w->queue;
		d->nqueues = i + 1;
		if (queue_set_mark_mask(w->queue, c->mark_mask) != 0) {
			fail_msg("[queue] mark_mask = 0x%08x: fewer than %d bits", c->mark_mask,
			         MARK_BITS);
			return -1;
		}
		const struct engine_hooks wh = {
		    .verdict = w_verdict,
		    .event = w_event,
		    .resolve = w_resolve,
		    .arg = w,
		};
		w->engine = engine_new(&w->ecfg, d->policy, d->bindings, &wh);
		w->tick = event_new(w->base, -1, EV_PERSIST, w_tick, w);
		const struct timeval wt = {0, DAEMON_TICK_US};
		if (!w->engine || !w->tick || event_add(w->tick, &wt) == -1) {
			fail_msg("out of memory (worker %u)", i);
			return -1;
		}
	}
	marks_from_mask(c->mark_mask, &d->marks);

	struct resolver_opts ropts = {.timeout_ms = c->dns_timeout_ms, .tries = c->dns_tries,
	                              .max_ttl = c->engine.bind_max_ttl};
	d->resolver =
	    resolver_new_opts(d->dbase, c->dns_upstream, c->ndns_upstream, d->marks.self, &ropts, err,
	                      sizeof(err));
	if (!d->resolver) {
		fail_msg("resolver: %s", err);
		return -1;
	}
	d->dnsd = dnsd_new(d->dbase, d->listen, d->nlisten, d->engine, d->resolver,
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
	d->dtick = event_new(d->dbase, -1, EV_PERSIST, on_dns_tick, d);
	d->sighup = evsignal_new(d->base, SIGHUP, on_hup, d);
	d->sigterm = evsignal_new(d->base, SIGTERM, on_stop, d);
	d->sigint = evsignal_new(d->base, SIGINT, on_stop, d);
	const struct timeval tick = {0, DAEMON_TICK_US};
	if (!d->tick || !d->dtick || !d->sighup || !d->sigterm || !d->sigint ||
	    event_add(d->tick, &tick) == -1 || event_add(d->dtick, &tick) == -1 || event_add(d->sighup, NULL) == -1 ||
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
	/* Threads last: capabilities are per thread, they inherit the dropped set. */
	int lrc = log_async_start();
	if (lrc < 0) {
		fail_msg("log writer thread: %s", strerror(-lrc));
		return -1;
	}
	dns_publish(d);
	int drc = pthread_create(&d->dthread, NULL, dns_main, d);
	if (drc != 0) {
		fail_msg("DNS thread: %s", strerror(drc));
		return -1;
	}
	d->drunning = true;
	(void)pthread_setname_np(d->dthread, "egressd-dns"); /* top -H, /proc/PID/task */
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		int trc = pthread_create(&w->thread, NULL, worker_main, w);
		if (trc != 0) {
			fail_msg("worker thread %u: %s", i, strerror(trc));
			return -1;
		}
		w->running = true;
		char tn[16];
		snprintf(tn, sizeof tn, "egressd-w%u", i % 100u);
		(void)pthread_setname_np(w->thread, tn);
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
	/* Workers first: each frees its engine in its own thread (held packets
	 * get their DENY verdicts through the still-open queue), then stops. */
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		if (w->running) {
			mbox_post(&w->mbox, &w->stop_task);
			pthread_join(w->thread, NULL);
			w->running = false;
		} else {
			engine_free(w->engine); /* never started */
			w->engine = NULL;
		}
		mbox_close(&w->mbox);
	}
	/* Then the DNS thread; its listener, resolver and engine are freed here
	 * once its loop has stopped. Listeners first (they borrow the engine and
	 * resolver), then the engine. */
	if (d->drunning) {
		mbox_post(&d->mbox, &d->dstop_task);
		pthread_join(d->dthread, NULL);
		d->drunning = false;
	}
	dnsd_free(d->dnsd);
	d->dnsd = NULL;
	resolver_free(d->resolver);
	d->resolver = NULL;
	metrics_free(d->metrics);
	d->metrics = NULL;
	engine_free(d->engine);
	d->engine = NULL;
	for (unsigned i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		queue_close(w->queue);
		if (w->tick)
			event_free(w->tick);
		if (w->base)
			event_base_free(w->base);
		free(w->cuts);
	}
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
	d->nqueues = 0;
	mbox_close(&d->mbox); /* resolutions nobody will answer */
	if (d->dtick)
		event_free(d->dtick);
	if (d->dbase)
		event_base_free(d->dbase);
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

	log_use_host(conf->log_host);
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
