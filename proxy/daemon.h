/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_DAEMON_H
#define EGRESSD_DAEMON_H
/*
 * The daemon: event loop, queue workers, DNS listener, resolver, log,
 * metrics, signals (SIGHUP reload, SIGTERM clean exit leaving the rules in
 * place), sd_notify, privilege drop.
 */
#include "../config/conf.h"
#include <stdbool.h>

struct daemon_opts {
	const char *conf_path;   /* for SIGHUP reload; NULL: no reload from file (run mode) */
	bool apply_rules;        /* apply the ruleset before start (run mode, tests) */
	const char *table;       /* nft table for the ruleset (NULL = "egressd") */
	int ready_fd;            /* >= 0: write one byte when ready (run mode), then close */
	volatile int *stop_flag; /* optional: set non-zero to stop (run mode) */
};

/* Runs until SIGTERM/SIGINT (or *stop_flag). Takes ownership of conf and policy. 0 or 1. */
int daemon_run(struct conf *conf, struct policy *policy, const struct daemon_opts *opts);

#endif
