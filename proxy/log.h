/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_LOG_H
#define EGRESSD_LOG_H
/*
 * The event log: one JSON object per line (SPEC.md "Event log").
 *
 *   {"ts":"2026-11-27T21:03:04.123456Z","event":"deny","proto":"tcp",...}\n
 *
 * A line is built in a fixed buffer (struct log_line) and written with one
 * write(2) to an O_APPEND|O_NONBLOCK descriptor, so a slow or full log never
 * blocks a verdict: a failed or short write is counted
 * (egressd_log_write_errors_total) and reported on stderr at most once a
 * minute. Every string that may have come from the network is escaped so
 * that the line stays valid UTF-8 JSON whatever bytes it carried.
 *
 * Threads: with log_async_start() every line (any thread) is copied into a
 * bounded queue (LOG_QUEUE_BYTES) that one writer thread drains, so no
 * worker waits on the log's write(2); a line that finds the queue full is
 * dropped and counted (egressd_log_dropped_total). log_open, log_reopen,
 * log_close and log_path belong to one thread (the daemon's main loop).
 * Without it (tools, tests) lines are written by the caller.
 */
#include "core/engine.h"
#include "core/policy.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open path ("-" = standard output) for appending. 0 or -errno; the old log stays on error. */
int log_open(const char *path);
/* Reopen the same path (SIGHUP, after rotation). 0 or -errno; the old fd stays on error. */
int log_reopen(void);
void log_close(void);
/* The path given to log_open() ("-" for stdout), or NULL. */
const char *log_path(void);
/* Failed or short writes since start (metric egressd_log_write_errors_total). */
uint64_t log_write_errors(void);
/* Start / stop the writer thread (stop drains the queue; log_close stops it). 0 or -errno. */
int log_async_start(void);
void log_async_stop(void);
/* Wait until every line queued before this call is written (no-op without the queue). */
void log_flush(void);
/* Lines dropped because the queue was full (metric egressd_log_dropped_total). */
uint64_t log_dropped(void);

/*
 * The "host" key after "event" in every line (SPEC "Event log"), so lines
 * from many gateways can be merged. log_set_host: NULL or "" = no key.
 * log_use_host: configured ([log] host) NULL = the machine's hostname
 * (gethostname, read now: call it at start and on reload), "" = off.
 * log_host copies the current value ("" = off) and returns its length.
 */
void log_set_host(const char *host);
void log_use_host(const char *configured);
size_t log_host(char *buf, size_t cap);

/*
 * JSON string body of in[0..len) into out (cap bytes, always NUL-terminated
 * when cap > 0): '"' and '\\' escaped, control characters and DEL as
 * \u00XX. Bytes >= 0x80 are escaped as \u00XX too, unless utf8_ok is true
 * and they form a valid UTF-8 sequence (text we wrote ourselves, such as
 * the ellipsis of a masked credential). Never cuts an escape in half.
 * Returns the length written (truncated output is shorter than needed;
 * *truncated, if not NULL, says so).
 */
size_t log_json_escape(char *out, size_t cap, const char *in, size_t len, bool utf8_ok,
                       bool *truncated);

/* RFC 3339 UTC with microseconds of the realtime clock, into buf (>= 28 bytes). */
void log_timestamp(char *buf, size_t cap);
/* The same for an instant of CLOCK_MONOTONIC (the engine's clock): now's
 * realtime minus how long ago it was (first_ts / last_ts of aggregated lines). */
void log_timestamp_mono(char *buf, size_t cap, uint64_t mono_ns);

/* ---- building a line: begin, add keys, write ---- */

#define LOG_LINE_MAX 8192

struct log_line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool truncated; /* something did not fit: the line still closes and parses */
	bool in_array;
	bool array_first;
	const char *event; /* log_line_begin's, for the journal's EGRESSD_EVENT */
};

/* Starts {"ts":"...","event":"EVENT" (event is ours, not escaped beyond JSON rules). */
void log_line_begin(struct log_line *l, const char *event);
/* "key":"value" with value escaped (strict: for anything from the network). */
void log_line_str(struct log_line *l, const char *key, const char *value);
void log_line_strn(struct log_line *l, const char *key, const char *value, size_t len);
/* Same, but valid UTF-8 passes (our own text, file paths). */
void log_line_text(struct log_line *l, const char *key, const char *value);
/* "key":"<formatted, then escaped strictly>" */
void log_line_strf(struct log_line *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_line_u64(struct log_line *l, const char *key, uint64_t v);
void log_line_i64(struct log_line *l, const char *key, int64_t v);
void log_line_bool(struct log_line *l, const char *key, bool v);
/* Arrays: "key":[ ... ] with string or number elements. */
void log_line_array_begin(struct log_line *l, const char *key);
void log_line_array_str(struct log_line *l, const char *value);
void log_line_array_u64(struct log_line *l, uint64_t v);
void log_line_array_end(struct log_line *l);
/* Closes the object, appends '\n' and writes it. 0 or -errno (also counted). */
int log_line_write(struct log_line *l);
/* Closes the object and appends '\n' without writing (tests, stdout users). */
const char *log_line_finish(struct log_line *l);

/* ---- journald (issue 13) ----
 *
 * With file = "-" and standard output being a journal stream (JOURNAL_STREAM
 * names stdout's device:inode, as systemd sets it for StandardOutput=journal),
 * log_open sends each line with sd_journal_sendv instead: MESSAGE is the same
 * JSON line (without '\n'), plus EGRESSD_EVENT, EGRESSD_REASON, EGRESSD_NAME,
 * EGRESSD_SRC, EGRESSD_DST, EGRESSD_DPORT, EGRESSD_SEVERITY,
 * EGRESSD_INDICATORS (comma-separated), EGRESSD_HOST, PRIORITY (from the
 * event and severity) and SYSLOG_IDENTIFIER=egressd. Only the writer thread
 * calls sd_journal_sendv, so a worker never waits on the journal. Values from
 * the network are JSON-escaped (no control bytes); credentials appear only as
 * their type (as in the line's "indicators"), never masked or in clear.
 */
#define LOG_JOURNAL_MAX (LOG_LINE_MAX + 4096)
/* True if env ("DEV:INODE", JOURNAL_STREAM) names the stream open on fd. */
bool log_journal_stream_matches(const char *env, int fd);
/* Whether lines go to the journal now. */
bool log_journal(void);
/* Force it on or off (tests; log_open decides it again). */
void log_journal_set(bool on);
/* The fields of one line into out, each "KEY=value" ending in '\0'.
 * event: the line's event; ev: the flow event or NULL (ready, reload,
 * error); json/jlen: the finished line. Returns the bytes used (fields that
 * do not fit are left out; MESSAGE always fits in LOG_JOURNAL_MAX). */
size_t log_journal_fields(char *out, size_t cap, const char *event, const struct flow_event *ev,
                          const char *json, size_t jlen);
/* syslog priority (0..7) of an event: severity for denials, 6 (info) for
 * allow/ready/reload, 3 (err) for error. */
int log_journal_priority(const char *event, const struct flow_event *ev);

/* ---- the events ---- */

/* deny / allow / dns_deny / dns_allow with every key the event carries. */
void log_event(const struct flow_event *ev);
/* The same line rendered into l (finished, not written): for tests and learn. */
void log_event_render(struct log_line *l, const struct flow_event *ev);

/* ready: mode ("gateway"/"host"/"run"), enforce, queue numbers, DNS listeners as text. */
void log_ready(const char *mode, bool enforce, const unsigned *queues, size_t nqueues,
               const char *const *dns_listen, size_t ndns);
/* reload: the counts of the new policy and the files. */
/* revoked: connections the reload cut (SPEC [egressd] revoke); < 0: revoke = no, key left out. */
void log_reload(const struct policy_stats *st, unsigned warnings, long revoked);
/* error: a message (escaped) and optional diagnostic lines. */
void log_error(const char *const *diags, size_t ndiags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Text of protocol numbers and query types as logged. buf: >= 12 bytes. */
const char *log_proto_str(uint8_t proto, char *buf, size_t cap);
const char *log_qtype_str(uint16_t qtype, char *buf, size_t cap);

#endif
