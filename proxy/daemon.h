/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_DAEMON_H
#define EGRESSD_DAEMON_H
/*
 * The daemon: event loop, queue workers, DNS listener, resolver, log,
 * metrics, signals (SIGHUP reload, SIGTERM clean exit leaving the rules in
 * place), sd_notify, privilege drop.
 */
#include "../config/conf.h"
#include "../nfq/ruleset.h"
#include <stdbool.h>

struct daemon_opts {
	const char *conf_path;   /* for SIGHUP reload; NULL: no reload from file (run mode) */
	bool apply_rules;        /* apply the ruleset before start (run mode, tests) */
	const char *table;       /* nft table for the ruleset (NULL = "egressd") */
	int ready_fd;            /* >= 0: write one byte when ready (run mode), then close */
	volatile int *stop_flag; /* optional: set non-zero to stop (run mode) */
	/*
	 * Added after the first agreement (zero = old behaviour):
	 * user: run as this user after start-up (NULL: env EGRESSD_USER, else stay root);
	 * either way only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE are kept.
	 * keep_privileges: skip the drop entirely (a caller that needs root afterwards).
	 */
	const char *user;
	bool keep_privileges;
	/* run mode: the inside reaches this namespace only for DNS to us (rules_params) */
	bool inside_local_dns_only;
};

/* Runs until SIGTERM/SIGINT (or *stop_flag). Takes ownership of conf and policy. 0 or 1. */
int daemon_run(struct conf *conf, struct policy *policy, const struct daemon_opts *opts);

/*
 * The DNS listener addresses for conf: [dns] listen if set, else the
 * defaults (gateway: first IPv4 and first global IPv6 of [gateway] inside,
 * port 53; host: 127.0.0.1:53 and [::1]:53); in host mode followed by the
 * container listeners 0.0.0.0 and [::] on [dns] container_port unless it
 * is 0. 0 or -1 with err.
 */
int daemon_dns_listen(const struct conf *conf, struct conf_endpoint *out, size_t cap, size_t *n,
                      char *err, size_t errlen);

/* Ruleset parameters for conf with the DNS redirect to listen[0..n). */
void daemon_rules_params(const struct conf *conf, const struct conf_endpoint *listen, size_t n,
                         const char *table, struct rules_params *p);

/* "192.0.2.1:53" / "[2001:db8::1]:53" into buf (>= ADDR_STRLEN + 9). */
const char *daemon_endpoint_str(const struct conf_endpoint *ep, char *buf, size_t cap);

#endif
