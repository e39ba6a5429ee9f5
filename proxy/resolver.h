/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_RESOLVER_H
#define EGRESSD_RESOLVER_H
/*
 * Upstream DNS through c-ares, driven by libevent. Every socket c-ares opens
 * carries SO_MARK = MARK_SELF so the ruleset exempts it.
 */
#include "../config/conf.h"
#include "../proxy/core/dns.h"
#include <event2/event.h>

struct resolver;

/* servers: n == 0 -> nameservers of /etc/resolv.conf. NULL with err on failure. */
struct resolver *resolver_new(struct event_base *base, const struct conf_endpoint *servers,
                              size_t n, uint32_t sockmark, char *err, size_t errlen);
/*
 * The same with c-ares' per-attempt timeout and tries per server (0: the
 * defaults, 1500 ms and 2). Added for tests and tuning; resolver_new() is
 * resolver_new_opts(..., NULL, ...).
 */
struct resolver_opts {
	unsigned timeout_ms;
	unsigned tries;
	uint32_t max_ttl; /* [dns] max_ttl: TTLs in answers to clients clamped to it; 0: kept */
};
struct resolver *resolver_new_opts(struct event_base *base, const struct conf_endpoint *servers,
                                   size_t n, uint32_t sockmark, const struct resolver_opts *opts,
                                   char *err, size_t errlen);
void resolver_free(struct resolver *r); /* NULL-safe; pending callbacks get status != 0 */

/* status 0: answer (borrowed, valid during the callback); else failure (answer NULL). */
typedef void (*resolver_raw_fn)(void *arg, int status, const uint8_t *answer, size_t len);
/*
 * Forward a client's query message as is (c-ares picks its own id).
 * 0: fn will be called exactly once, possibly before this returns.
 * -errno: fn will never be called.
 */
int resolver_send(struct resolver *r, const uint8_t *query, size_t len, resolver_raw_fn fn,
                  void *arg);

/* A and AAAA of name (verify mode). n == 0: failed or no address. */
typedef void (*resolver_addr_fn)(void *arg, const char *name, const struct dns_addr *addrs,
                                 size_t n);
/* 0: fn will be called exactly once (maybe before this returns); -errno: never. */
int resolver_lookup(struct resolver *r, const char *name, resolver_addr_fn fn, void *arg);

/*
 * Forged answers (0x20, see resolver.c). Exposed for the unit tests:
 * resolver_qname_len: wire length of the one question's name of msg (a
 * plain name: labels, no pointer; root label included), 0 if there is not
 * exactly one or it is not plain. resolver_case_randomise: the letters of
 * the wire-form name (len bytes) take the case of successive bits (1 =
 * upper). resolver_question_is: msg's one question name is qname, byte for
 * byte (case included).
 */
size_t resolver_qname_len(const uint8_t *msg, size_t len);
void resolver_case_randomise(uint8_t *name, size_t len, const uint8_t *bits);
bool resolver_question_is(const uint8_t *msg, size_t len, const uint8_t *qname, size_t qn_len);
/* The same clamp later (reload). */
void resolver_set_max_ttl(struct resolver *r, uint32_t max_ttl);
/* Every TTL of msg (not OPT's) above max_ttl becomes max_ttl; a malformed rest stays as is. */
void resolver_clamp_ttls(uint8_t *msg, size_t len, uint32_t max_ttl);
/* Answers dropped because their question was not the one sent (forged?). */
uint64_t resolver_case_mismatches(const struct resolver *r);

#endif
