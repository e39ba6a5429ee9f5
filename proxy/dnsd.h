/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_DNSD_H
#define EGRESSD_DNSD_H
/*
 * The DNS listener (UDP and TCP) in the daemon's event loop. Each query is
 * decided by engine_dns_query(); allowed ones are forwarded with the resolver
 * and the answer relayed with the client's id; denied ones answered locally.
 */
#include "../config/conf.h"
#include "resolver.h"
#include <event2/event.h>

struct dnsd;

struct dnsd_stats {
	uint64_t allowed, denied, failed; /* egressd_dns_queries_total{decision} */
	/* egressd_dns_client_limited_total{limit}: TCP connections closed at
	 * accept (tcp_connections), queries refused (inflight), connections
	 * closed with a query unfinished too long (tcp_query_time). */
	uint64_t limited_conns, limited_inflight, limited_slow;
};

/*
 * Per-client limits (a client is the query's source address, IPv6 too: the
 * whole address). 0 in a field keeps its default.
 */
struct dnsd_limits {
	unsigned conns_per_client;    /* TCP connections; default 16 */
	unsigned inflight_per_client; /* forwarded queries awaiting upstream; default 1024 */
	unsigned tcp_query_ms;        /* a TCP query is whole this long after its first byte;
	                                 default 10000 */
};

/* engine is borrowed and may be swapped with dnsd_set_engine(). */
struct dnsd *dnsd_new(struct event_base *base, const struct conf_endpoint *listen, size_t n,
		      struct engine *engine, struct resolver *resolver, uint8_t deny_rcode,
		      char *err, size_t errlen);
void dnsd_set_engine(struct dnsd *d, struct engine *engine, uint8_t deny_rcode);
/* Applies to connections and queries from now on (the tests use small ones). */
void dnsd_set_limits(struct dnsd *d, const struct dnsd_limits *lim);
void dnsd_free(struct dnsd *d); /* NULL-safe */
void dnsd_stats(const struct dnsd *d, struct dnsd_stats *st);

#endif
