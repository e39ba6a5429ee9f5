/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_METRICS_H
#define EGRESSD_METRICS_H
/*
 * Prometheus text exposition (format 0.0.4) on [metrics] listen, served by
 * libevent's evhttp in the daemon's loop: GET /metrics, 404 elsewhere.
 * Every label value is one of a fixed set chosen here (verdicts, decisions,
 * reason names): nothing from the network ever reaches a label.
 */
#include "../config/conf.h"
#include "core/engine.h"
#include "core/reason.h"
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>

#define METRICS_MAX_WORKERS 64

/* One consistent reading of every counter, taken by the daemon per scrape. */
struct metrics_snapshot {
	uint64_t packets[5];                /* by enum verdict: pass allow deny drop inspect */
	uint64_t flows_allow;               /* flow allow events (aggregated counts added) */
	uint64_t flows_deny[REASON_COUNT_]; /* flow deny events by reason */
	uint64_t dns_allowed, dns_denied, dns_failed;
	uint64_t queue_dropped; /* kernel: queue full + netlink buffer full */
	uint64_t log_write_errors;
	uint64_t bindings;
	uint64_t flows_tracked;
	uint64_t dns_answers_dropped; /* upstream answers whose question was not ours (0x20) */
	/* per-client DNS limits: TCP connections, queries in flight, unfinished TCP queries */
	uint64_t dns_limited_conns, dns_limited_inflight, dns_limited_slow;
	uint64_t log_dropped;         /* event log lines lost to a full queue */
	/* Per worker thread (queue num + i): packets it decided (all verdicts). */
	unsigned nworkers;
	uint64_t worker_packets[METRICS_MAX_WORKERS];
};

typedef void (*metrics_collect_fn)(void *arg, struct metrics_snapshot *out);

struct metrics;

/* Listen on ep and serve. NULL with err filled on failure. */
struct metrics *metrics_new(struct event_base *base, const struct conf_endpoint *ep,
                            metrics_collect_fn collect, void *arg, char *err, size_t errlen);
void metrics_free(struct metrics *m); /* NULL-safe */

/* The exposition text of s appended to out. 0 or -ENOMEM. */
int metrics_render(const struct metrics_snapshot *s, struct evbuffer *out);

#endif
