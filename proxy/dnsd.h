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
};

/* engine is borrowed and may be swapped with dnsd_set_engine(). */
struct dnsd *dnsd_new(struct event_base *base, const struct conf_endpoint *listen, size_t n,
		      struct engine *engine, struct resolver *resolver, uint8_t deny_rcode,
		      char *err, size_t errlen);
void dnsd_set_engine(struct dnsd *d, struct engine *engine, uint8_t deny_rcode);
void dnsd_free(struct dnsd *d); /* NULL-safe */
void dnsd_stats(const struct dnsd *d, struct dnsd_stats *st);

#endif
