/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_REPORT_H
#define EGRESSD_REPORT_H
/*
 * egressd report: event logs (SPEC.md "Event log") in, one self-contained
 * HTML page out. The aggregation (report_add_line) is separate from the
 * rendering (report_render) so the unit test can check the numbers.
 *
 * Every tally honours `count` (identical events within a second, written as
 * one line). Strings are kept as logged: a credential stays masked.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum report_sev {
	REPORT_SEV_LOW = 0,
	REPORT_SEV_MEDIUM,
	REPORT_SEV_HIGH,
	REPORT_SEV_CRITICAL,
	REPORT_NSEV
};

/* One counted key: a destination, a source, an indicator, a credential. */
struct report_item {
	char *key;                 /* owned */
	uint64_t n;                /* events, count honoured */
	uint64_t sev[REPORT_NSEV]; /* indicators: events per severity */
};

/* A string -> item table (open addressing); items keep their index. */
struct report_tally {
	struct report_item *v;
	size_t n, cap;
	size_t *slot; /* index + 1; 0 = empty */
	size_t nslot;
};

/* A denied flow on the timeline: when, to which destination (index in dests). */
struct report_sample {
	double t; /* seconds since the epoch */
	size_t dest;
	uint64_t n;
};

struct report {
	/* events, count honoured */
	uint64_t allow, deny, dns_allow, dns_deny, other;
	uint64_t deny_audit;            /* deny/dns_deny with enforced = false */
	uint64_t sev[REPORT_NSEV];      /* deny and dns_deny events by severity */
	struct report_tally dests;      /* deny: name (or dst) ":" dport */
	struct report_tally sources;    /* deny and dns_deny: src */
	struct report_tally qnames;     /* dns_deny: qname */
	struct report_tally indicators; /* deny, dns_deny: each indicator, by severity */
	struct report_tally creds;      /* deny, dns_deny: "TYPE MASKED" */
	struct report_tally reasons;    /* deny: reason */
	struct report_tally procs;      /* deny (host mode): exe, unit, cgroup or "uid N" */
	struct report_sample *samples;
	size_t nsamples, capsamples;
	double t_min, t_max; /* over every event with a readable ts; t_min > t_max: none */
	/* lines */
	uint64_t lines, events, malformed;
	unsigned files, files_failed;
};

void report_init(struct report *r);
void report_free(struct report *r);

/*
 * One log line (without or with its newline). Blank lines are ignored (0).
 * 0: counted; -EINVAL: malformed (not a JSON object with a string "event"),
 * r->malformed counted; -ENOMEM.
 */
int report_add_line(struct report *r, const char *line, size_t len);

/* Read a whole log ("-" is stdin); malformed lines reported on stderr as
 * FILE:LINE (the first few). 0 or -errno (the file could not be opened). */
int report_read_file(struct report *r, const char *path);

/* Look a key up: the item or NULL. */
const struct report_item *report_tally_get(const struct report_tally *t, const char *key);

/* Item indices sorted by n descending, then key; caller frees. NULL when empty. */
size_t *report_tally_sorted(const struct report_tally *t);

/* The HTML page. 0 or -EIO. */
int report_render(const struct report *r, FILE *out);

/* Text with &, <, >, ", ' as entities; invalid UTF-8 and control bytes as U+FFFD. */
void report_html_escape(FILE *out, const char *s);

int cmd_report(int argc, char **argv); /* egressd report [LOG]... [-o FILE] */

#endif
