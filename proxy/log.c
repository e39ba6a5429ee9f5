/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The JSON-lines event log. See log.h for the contract; the one rule that
 * matters most: a write never blocks and never takes more than one write(2),
 * so the packet path cannot stall behind a full disk or a slow reader.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "log.h"
#include "core/addr.h"
#include "core/dns.h"
#include "core/indicators.h"
#include "core/reason.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#define LOG_REPORT_INTERVAL_NS (60ull * 1000000000ull)

/* lg is the writer's: with the queue on (log_async_start), the writer
 * thread and log_open/reopen/close take io_lock around it. */
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	int fd;     /* -1: closed */
	char *path; /* "-" or a file path */
	_Atomic uint64_t write_errors;
	uint64_t reported_errors; /* write_errors at the last stderr report */
	uint64_t last_report_ns;
	int last_errno;
} lg = {.fd = -1};

static _Atomic bool journal_on; /* set by log_open("-") under systemd */

bool log_journal_stream_matches(const char *env, int fd)
{
	unsigned long long dev, ino;
	char tail;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(fd, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_journal(void)
{
	return atomic_load_explicit(&journal_on, memory_order_relaxed);
}

void log_journal_set(bool on)
{
	atomic_store_explicit(&journal_on, on, memory_order_relaxed);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Standard output gets its own open file description where the kernel
 * allows it (/proc/self/fd/1 reopens pipes, FIFOs, ttys and files), so
 * O_NONBLOCK does not leak to whoever else shares our stdout. Sockets
 * (journald) cannot be reopened: there we dup and set O_NONBLOCK on the
 * shared description, which is what a journal stream wants anyway.
 */
static int open_stdout(void)
{
	int fd = open("/proc/self/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
	if (fd != -1)
		return fd;
	fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (fd == -1)
		return -errno;
	int fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK | O_APPEND) == -1) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int open_path(const char *path)
{
	if (strcmp(path, "-") == 0)
		return open_stdout();
	int fd =
	    open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd == -1)
		return -errno;
	return fd;
}

int log_open(const char *path)
{
	if (!path || !*path)
		return -EINVAL;
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	int fd = open_path(path);
	if (fd < 0) {
		free(copy);
		return fd;
	}
	/* stdout is a journal stream: send structured entries instead */
	bool journal = strcmp(path, "-") == 0 &&
	               log_journal_stream_matches(getenv("JOURNAL_STREAM"), STDOUT_FILENO);
	pthread_mutex_lock(&io_lock);
	if (lg.fd != -1)
		close(lg.fd);
	free(lg.path);
	lg.fd = fd;
	lg.path = copy;
	log_journal_set(journal);
	pthread_mutex_unlock(&io_lock);
	return 0;
}

int log_reopen(void)
{
	if (!lg.path)
		return -EBADF;
	if (strcmp(lg.path, "-") == 0)
		return 0; /* nothing to rotate */
	int fd = open_path(lg.path);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&io_lock);
	if (lg.fd != -1)
		close(lg.fd);
	lg.fd = fd;
	pthread_mutex_unlock(&io_lock);
	return 0;
}

void log_close(void)
{
	log_async_stop();
	if (lg.fd != -1)
		close(lg.fd);
	lg.fd = -1;
	free(lg.path);
	lg.path = NULL;
}

const char *log_path(void)
{
	return lg.path;
}

uint64_t log_write_errors(void)
{
	return atomic_load_explicit(&lg.write_errors, memory_order_relaxed);
}

static void write_failed(int err)
{
	atomic_fetch_add_explicit(&lg.write_errors, 1, memory_order_relaxed);
	lg.last_errno = err;
	uint64_t now = mono_ns();
	if (lg.reported_errors != 0 && now - lg.last_report_ns < LOG_REPORT_INTERVAL_NS)
		return;
	/* stderr may be the same full pipe: this is best effort and not retried. */
	fprintf(stderr, "egressd: log %s: %llu write(s) failed or short, last: %s\n",
	        lg.path ? lg.path : "(closed)",
	        (unsigned long long)(lg.write_errors - lg.reported_errors),
	        err ? strerror(err) : "short write");
	lg.reported_errors = lg.write_errors;
	lg.last_report_ns = now;
}

/* ---- the host key (SPEC "Event log": host) ---- */

/* The main thread sets it (start, reload); every logging thread reads it. */
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static char host_name[256]; /* "" = no host key */

void log_set_host(const char *host)
{
	pthread_mutex_lock(&host_lock);
	snprintf(host_name, sizeof(host_name), "%s", host ? host : "");
	pthread_mutex_unlock(&host_lock);
}

void log_use_host(const char *configured)
{
	char hn[256];

	if (configured) {
		log_set_host(configured);
		return;
	}
	if (gethostname(hn, sizeof(hn)) == -1)
		hn[0] = '\0';
	hn[sizeof(hn) - 1] = '\0';
	log_set_host(hn);
}

size_t log_host(char *buf, size_t cap)
{
	if (cap == 0)
		return 0;
	pthread_mutex_lock(&host_lock);
	int n = snprintf(buf, cap, "%s", host_name);
	pthread_mutex_unlock(&host_lock);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- escaping ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 (RFC 3629 table). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* > U+10FFFF */
	} else
		return 0;
	if (n < len)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t log_json_escape(char *out, size_t cap, const char *in, size_t len, bool utf8_ok,
                       bool *truncated)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	bool cut = false;

	if (cap == 0) {
		if (truncated)
			*truncated = len > 0;
		return 0;
	}
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		char tmp[8];
		size_t tn = 0;
		size_t consumed = 1;

		if (c == '"' || c == '\\') {
			tmp[tn++] = '\\';
			tmp[tn++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			tmp[tn++] = (char)c;
		} else if (c >= 0x80 && utf8_ok && (consumed = utf8_seq(s + i, len - i)) > 0) {
			memcpy(tmp, s + i, consumed);
			tn = consumed;
		} else {
			consumed = 1;
			switch (c) {
			case '\n':
				tmp[tn++] = '\\';
				tmp[tn++] = 'n';
				break;
			case '\t':
				tmp[tn++] = '\\';
				tmp[tn++] = 't';
				break;
			case '\r':
				tmp[tn++] = '\\';
				tmp[tn++] = 'r';
				break;
			default:
				memcpy(tmp, "\\u00", 4);
				tn = 4;
				tmp[tn++] = hex[c >> 4];
				tmp[tn++] = hex[c & 0xf];
			}
		}
		if (o + tn + 1 > cap) {
			cut = true;
			break;
		}
		memcpy(out + o, tmp, tn);
		o += tn;
		i += consumed;
	}
	out[o] = '\0';
	if (truncated)
		*truncated = cut;
	return o;
}

void log_timestamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 || !gmtime_r(&ts.tv_sec, &tm)) {
		snprintf(buf, cap, "1970-01-01T00:00:00.000000Z");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000));
}

void log_timestamp_mono(char *buf, size_t cap, uint64_t mono_ns)
{
	struct timespec rt, mt;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &rt) == -1 || clock_gettime(CLOCK_MONOTONIC, &mt) == -1) {
		snprintf(buf, cap, "1970-01-01T00:00:00.000000Z");
		return;
	}
	uint64_t now_m = (uint64_t)mt.tv_sec * 1000000000ull + (uint64_t)mt.tv_nsec;
	uint64_t now_r = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	uint64_t ago = mono_ns < now_m ? now_m - mono_ns : 0; /* never in the future */
	uint64_t r = ago < now_r ? now_r - ago : 0;
	time_t sec = (time_t)(r / 1000000000ull);
	if (!gmtime_r(&sec, &tm)) {
		snprintf(buf, cap, "1970-01-01T00:00:00.000000Z");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (long)(r % 1000000000ull / 1000));
}

/* ---- line builder ---- */

/* Room kept at the end of every line for the closing "]}\n". */
#define LINE_RESERVE 4

/*
 * Each piece is written whole or not at all; a piece that does not fit sets
 * truncated and is dropped, later smaller pieces may still fit.
 */
static bool put(struct log_line *l, const char *s, size_t n)
{
	if (l->len + n > LOG_LINE_MAX - LINE_RESERVE) {
		l->truncated = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool puts_(struct log_line *l, const char *s)
{
	return put(l, s, strlen(s));
}

/* ,"key": */
static bool put_key(struct log_line *l, const char *key)
{
	size_t before = l->len;
	if (puts_(l, ",\"") && puts_(l, key) && puts_(l, "\":"))
		return true;
	l->len = before;
	return false;
}

/* A quoted escaped string, all or nothing. */
static bool put_escaped(struct log_line *l, const char *v, size_t n, bool utf8_ok)
{
	size_t room = LOG_LINE_MAX - LINE_RESERVE - l->len;
	if (l->len > LOG_LINE_MAX - LINE_RESERVE || room < 3) {
		l->truncated = true;
		return false;
	}
	bool cut = false;
	l->buf[l->len] = '"';
	size_t w = log_json_escape(l->buf + l->len + 1, room - 2, v, n, utf8_ok, &cut);
	if (cut) {
		l->truncated = true;
		return false;
	}
	l->len += 1 + w;
	l->buf[l->len++] = '"';
	return true;
}

void log_line_begin(struct log_line *l, const char *event)
{
	char ts[40];

	l->len = 0;
	l->truncated = false;
	l->in_array = false;
	l->array_first = false;
	l->event = event;
	log_timestamp(ts, sizeof(ts));
	puts_(l, "{\"ts\":\"");
	puts_(l, ts);
	puts_(l, "\",\"event\":");
	put_escaped(l, event, strlen(event), false);
	char host[256];
	if (log_host(host, sizeof(host)) > 0)
		log_line_text(l, "host", host);
}

static void line_strn(struct log_line *l, const char *key, const char *v, size_t n, bool utf8_ok)
{
	size_t before = l->len;
	if (!put_key(l, key) || !put_escaped(l, v ? v : "", v ? n : 0, utf8_ok))
		l->len = before; /* drop the key whose value did not fit */
}

void log_line_strn(struct log_line *l, const char *key, const char *value, size_t len)
{
	line_strn(l, key, value, len, false);
}

void log_line_str(struct log_line *l, const char *key, const char *value)
{
	line_strn(l, key, value, value ? strlen(value) : 0, false);
}

void log_line_text(struct log_line *l, const char *key, const char *value)
{
	line_strn(l, key, value, value ? strlen(value) : 0, true);
}

void log_line_strf(struct log_line *l, const char *key, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	line_strn(l, key, tmp, (size_t)n, false);
}

void log_line_u64(struct log_line *l, const char *key, uint64_t v)
{
	char num[24];
	size_t before = l->len;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	if (!put_key(l, key) || !puts_(l, num))
		l->len = before;
}

void log_line_i64(struct log_line *l, const char *key, int64_t v)
{
	char num[24];
	size_t before = l->len;

	snprintf(num, sizeof(num), "%lld", (long long)v);
	if (!put_key(l, key) || !puts_(l, num))
		l->len = before;
}

void log_line_bool(struct log_line *l, const char *key, bool v)
{
	size_t before = l->len;

	if (!put_key(l, key) || !puts_(l, v ? "true" : "false"))
		l->len = before;
}

void log_line_array_begin(struct log_line *l, const char *key)
{
	size_t before = l->len;
	if (!put_key(l, key) || !puts_(l, "[")) {
		l->len = before;
		return; /* elements are dropped too (in_array stays false) */
	}
	/* The closing ']' is always written (LINE_RESERVE), even when truncated. */
	l->in_array = true;
	l->array_first = true;
}

void log_line_array_str(struct log_line *l, const char *value)
{
	size_t before = l->len;

	if (!l->in_array)
		return;
	if ((!l->array_first && !puts_(l, ",")) || !put_escaped(l, value, strlen(value), true)) {
		l->len = before;
		return;
	}
	l->array_first = false;
}

void log_line_array_u64(struct log_line *l, uint64_t v)
{
	char num[24];
	size_t before = l->len;

	if (!l->in_array)
		return;
	snprintf(num, sizeof(num), "%s%llu", l->array_first ? "" : ",", (unsigned long long)v);
	if (!puts_(l, num)) {
		l->len = before;
		return;
	}
	l->array_first = false;
}

void log_line_array_end(struct log_line *l)
{
	if (!l->in_array)
		return;
	/* Reserved room: always fits. */
	l->buf[l->len++] = ']';
	l->in_array = false;
}

const char *log_line_finish(struct log_line *l)
{
	log_line_array_end(l);
	/* LINE_RESERVE keeps room for "}\n\0" even after a truncation. */
	l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	l->buf[l->len] = '\0';
	return l->buf;
}

/* One line, one write(2) (the caller holds io_lock when the queue is on). */
static int write_line(const char *buf, size_t len)
{
	if (lg.fd == -1)
		return -EBADF;
	ssize_t w = write(lg.fd, buf, len);
	if (w == -1) {
		int e = errno;
		write_failed(e);
		return -e;
	}
	if ((size_t)w != len) {
		write_failed(0);
		return -EAGAIN;
	}
	return 0;
}

/* ---- journald fields ---- */

#define JF_VALUE_MAX 1024 /* one field's value, escaped */
#define JF_MAX_FIELDS 16

/* "KEY=value\0", value escaped strictly (network text) unless raw. */
static void jf_add(char *out, size_t cap, size_t *o, const char *key, const char *v, size_t n,
                   bool raw)
{
	char val[JF_VALUE_MAX];
	size_t vl;
	size_t kl = strlen(key);

	if (raw) {
		vl = n;
	} else {
		vl = log_json_escape(val, sizeof(val), v, n, false, NULL);
		v = val;
	}
	if (*o + kl + 1 + vl + 1 > cap)
		return;
	memcpy(out + *o, key, kl);
	out[*o + kl] = '=';
	memcpy(out + *o + kl + 1, v, vl);
	out[*o + kl + 1 + vl] = '\0';
	*o += kl + 1 + vl + 1;
}

static void jf_str(char *out, size_t cap, size_t *o, const char *key, const char *v)
{
	if (v && *v)
		jf_add(out, cap, o, key, v, strlen(v), false);
}

int log_journal_priority(const char *event, const struct flow_event *ev)
{
	if (ev && (ev->kind == EVENT_DENY || ev->kind == EVENT_DNS_DENY)) {
		switch (ev->ind.severity) {
		case SEVERITY_CRITICAL:
			return LOG_CRIT;
		case SEVERITY_HIGH:
			return LOG_ERR;
		case SEVERITY_MEDIUM:
			return LOG_WARNING;
		case SEVERITY_LOW:
			break;
		}
		return LOG_NOTICE;
	}
	if (event && strcmp(event, "error") == 0)
		return LOG_ERR;
	return LOG_INFO;
}

size_t log_journal_fields(char *out, size_t cap, const char *event, const struct flow_event *ev,
                          const char *json, size_t jlen)
{
	size_t o = 0;
	char tmp[JF_VALUE_MAX];
	char host[256];

	if (cap == 0)
		return 0;
	/* MESSAGE first, so it always fits: the same line, without its '\n' */
	if (jlen > 0 && json[jlen - 1] == '\n')
		jlen--;
	jf_add(out, cap, &o, "MESSAGE", json, jlen, true);
	snprintf(tmp, sizeof(tmp), "%d", log_journal_priority(event, ev));
	jf_str(out, cap, &o, "PRIORITY", tmp);
	jf_str(out, cap, &o, "SYSLOG_IDENTIFIER", "egressd");
	jf_str(out, cap, &o, "EGRESSD_EVENT", event);
	if (log_host(host, sizeof(host)) > 0)
		jf_str(out, cap, &o, "EGRESSD_HOST", host);
	if (!ev)
		return o;
	bool deny = ev->kind == EVENT_DENY || ev->kind == EVENT_DNS_DENY;
	char abuf[ADDR_STRLEN + 1];
	if (deny || ev->reason != REASON_NONE)
		jf_str(out, cap, &o, "EGRESSD_REASON", reason_name(ev->reason));
	if (ev->name && *ev->name)
		jf_str(out, cap, &o, "EGRESSD_NAME", ev->name);
	else if (ev->qname && *ev->qname)
		jf_str(out, cap, &o, "EGRESSD_NAME", ev->qname);
	if (ev->src.family != ADDR_NONE)
		jf_str(out, cap, &o, "EGRESSD_SRC", addr_str(&ev->src, abuf));
	if (ev->dst.family != ADDR_NONE)
		jf_str(out, cap, &o, "EGRESSD_DST", addr_str(&ev->dst, abuf));
	if (ev->dport) {
		snprintf(tmp, sizeof(tmp), "%u", (unsigned)ev->dport);
		jf_str(out, cap, &o, "EGRESSD_DPORT", tmp);
	}
	if (deny || ev->ind.bits) {
		jf_str(out, cap, &o, "EGRESSD_SEVERITY", severity_name(ev->ind.severity));
		/* the types only, as in "indicators": never a masked or clear credential */
		size_t t = 0;
		tmp[0] = '\0';
		for (unsigned bit = 0; bit < 32; bit++) {
			uint32_t b = 1u << bit;
			if (!(ev->ind.bits & b))
				continue;
			if (b == IND_CREDENTIAL && ev->ind.ncreds > 0) {
				for (size_t i = 0; i < ev->ind.ncreds && i < IND_MAX_CREDS; i++) {
					int w = snprintf(tmp + t, sizeof(tmp) - t,
					                 "%scredential:%s", t ? "," : "",
					                 cred_type_name(ev->ind.creds[i].type));
					if (w > 0 && (size_t)w < sizeof(tmp) - t)
						t += (size_t)w;
				}
				continue;
			}
			const char *nm =
			    b == IND_CREDENTIAL ? "credential" : indicator_name((enum indicator)b);
			if (!nm || !*nm)
				continue;
			int w = snprintf(tmp + t, sizeof(tmp) - t, "%s%s", t ? "," : "", nm);
			if (w > 0 && (size_t)w < sizeof(tmp) - t)
				t += (size_t)w;
		}
		tmp[t < sizeof(tmp) ? t : sizeof(tmp) - 1] = '\0';
		jf_str(out, cap, &o, "EGRESSD_INDICATORS", tmp);
	}
	return o;
}

/* One entry (fields as log_journal_fields builds them) to the journal. */
static int journal_send(const char *f, size_t n)
{
	struct iovec iov[JF_MAX_FIELDS];
	int k = 0;

	for (size_t off = 0; off < n && k < JF_MAX_FIELDS;) {
		const char *z = memchr(f + off, '\0', n - off);
		size_t len = z ? (size_t)(z - (f + off)) : n - off;
		iov[k].iov_base = (void *)(f + off);
		iov[k].iov_len = len;
		k++;
		off += len + 1;
	}
	int rc = sd_journal_sendv(iov, k);
	if (rc < 0)
		write_failed(-rc);
	return rc;
}

/* ---- the queue to one writer thread (log_async_start) ---- */

#define LOG_QUEUE_BYTES (1024u * 1024u)

static struct {
	pthread_mutex_t mu;
	pthread_cond_t more, done; /* more: lines queued or stop; done: a batch written */
	char *buf[2];              /* producers fill buf[cur]; the writer drains the other */
	size_t used;
	unsigned cur;
	uint64_t queued, written; /* lines (sequence numbers), for log_flush */
	bool on, stop;
	pthread_t thread;
	_Atomic uint64_t dropped;
} lq = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .more = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER};

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lq.mu);
	for (;;) {
		while (lq.used == 0 && !lq.stop)
			pthread_cond_wait(&lq.more, &lq.mu);
		if (lq.used == 0 && lq.stop)
			break;
		char *b = lq.buf[lq.cur];
		size_t n = lq.used;
		uint64_t upto = lq.queued;
		lq.cur ^= 1u;
		lq.used = 0;
		pthread_mutex_unlock(&lq.mu);
		pthread_mutex_lock(&io_lock);
		/* one write(2) per line, as without the queue: a short write cuts
		 * one line, never joins two */
		for (size_t off = 0; off < n;) {
			if (b[off] == '\0') { /* a journal record: '\0', u32 length, fields */
				uint32_t rl;
				if (n - off < 1 + sizeof(rl))
					break;
				memcpy(&rl, b + off + 1, sizeof(rl));
				if (rl > n - off - 1 - sizeof(rl))
					break;
				(void)journal_send(b + off + 1 + sizeof(rl), rl);
				off += 1 + sizeof(rl) + rl;
				continue;
			}
			const char *nl = memchr(b + off, '\n', n - off);
			size_t len = nl ? (size_t)(nl - (b + off)) + 1 : n - off;
			(void)write_line(b + off, len);
			off += len;
		}
		pthread_mutex_unlock(&io_lock);
		pthread_mutex_lock(&lq.mu);
		lq.written = upto;
		pthread_cond_broadcast(&lq.done);
	}
	pthread_mutex_unlock(&lq.mu);
	return NULL;
}

int log_async_start(void)
{
	if (lq.on)
		return 0;
	char *a = malloc(LOG_QUEUE_BYTES), *b = malloc(LOG_QUEUE_BYTES);
	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_lock(&lq.mu);
	lq.buf[0] = a;
	lq.buf[1] = b;
	lq.used = 0;
	lq.cur = 0;
	lq.stop = false;
	lq.queued = lq.written = 0;
	pthread_mutex_unlock(&lq.mu);
	int rc = pthread_create(&lq.thread, NULL, writer_main, NULL);
	if (rc != 0) {
		free(a);
		free(b);
		lq.buf[0] = lq.buf[1] = NULL;
		return -rc;
	}
	(void)pthread_setname_np(lq.thread, "egressd-log");
	pthread_mutex_lock(&lq.mu);
	lq.on = true;
	pthread_mutex_unlock(&lq.mu);
	return 0;
}

void log_async_stop(void)
{
	pthread_mutex_lock(&lq.mu);
	bool on = lq.on;
	lq.stop = true;
	pthread_cond_broadcast(&lq.more);
	pthread_mutex_unlock(&lq.mu);
	if (!on)
		return;
	pthread_join(lq.thread, NULL); /* it drains the queue first */
	pthread_mutex_lock(&lq.mu);
	lq.on = false;
	free(lq.buf[0]);
	free(lq.buf[1]);
	lq.buf[0] = lq.buf[1] = NULL;
	pthread_mutex_unlock(&lq.mu);
}

void log_flush(void)
{
	pthread_mutex_lock(&lq.mu);
	uint64_t want = lq.queued;
	while (lq.on && lq.written < want)
		pthread_cond_wait(&lq.done, &lq.mu);
	pthread_mutex_unlock(&lq.mu);
}

uint64_t log_dropped(void)
{
	return atomic_load_explicit(&lq.dropped, memory_order_relaxed);
}

/* A finished line: queued (a memcpy under a short lock; a full queue drops
 * it and counts it, never waits) or, without the queue, written now. */
static int emit(const char *buf, size_t len)
{
	pthread_mutex_lock(&lq.mu);
	if (lq.on) {
		int rc = 0;
		if (lq.used + len > LOG_QUEUE_BYTES) {
			atomic_fetch_add_explicit(&lq.dropped, 1, memory_order_relaxed);
			rc = -ENOBUFS;
		} else {
			memcpy(lq.buf[lq.cur] + lq.used, buf, len);
			lq.used += len;
			lq.queued++;
			pthread_cond_signal(&lq.more);
		}
		pthread_mutex_unlock(&lq.mu);
		return rc;
	}
	pthread_mutex_unlock(&lq.mu);
	return write_line(buf, len);
}

/* A journal entry: queued as '\0', u32 length, fields (the writer sends
 * it), or sent now without the queue. */
static int emit_journal(const char *event, const struct flow_event *ev, const char *json,
                        size_t jlen)
{
	char rec[1 + sizeof(uint32_t) + LOG_JOURNAL_MAX];
	size_t n =
	    log_journal_fields(rec + 1 + sizeof(uint32_t), LOG_JOURNAL_MAX, event, ev, json, jlen);
	uint32_t rl = (uint32_t)n;

	pthread_mutex_lock(&lq.mu);
	bool on = lq.on;
	pthread_mutex_unlock(&lq.mu);
	if (!on) {
		pthread_mutex_lock(&io_lock);
		int rc = journal_send(rec + 1 + sizeof(rl), n);
		pthread_mutex_unlock(&io_lock);
		return rc < 0 ? rc : 0;
	}
	rec[0] = '\0';
	memcpy(rec + 1, &rl, sizeof(rl));
	return emit(rec, 1 + sizeof(rl) + n);
}

int log_line_write(struct log_line *l)
{
	log_line_finish(l);
	if (log_journal())
		return emit_journal(l->event, NULL, l->buf, l->len);
	return emit(l->buf, l->len);
}

/* ---- field texts ---- */

const char *log_proto_str(uint8_t proto, char *buf, size_t cap)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "icmpv6";
	case 132:
		return "sctp";
	}
	snprintf(buf, cap, "%u", proto);
	return buf;
}

const char *log_qtype_str(uint16_t qtype, char *buf, size_t cap)
{
	static const struct {
		uint16_t type;
		const char *name;
	} types[] = {
	    {1, "A"},       {2, "NS"},     {5, "CNAME"},  {6, "SOA"},    {10, "NULL"},
	    {12, "PTR"},    {13, "HINFO"}, {15, "MX"},    {16, "TXT"},   {17, "RP"},
	    {28, "AAAA"},   {29, "LOC"},   {33, "SRV"},   {35, "NAPTR"}, {39, "DNAME"},
	    {41, "OPT"},    {43, "DS"},    {44, "SSHFP"}, {46, "RRSIG"}, {47, "NSEC"},
	    {48, "DNSKEY"}, {50, "NSEC3"}, {52, "TLSA"},  {64, "SVCB"},  {65, "HTTPS"},
	    {99, "SPF"},    {251, "IXFR"}, {252, "AXFR"}, {255, "ANY"},  {256, "URI"},
	    {257, "CAA"},
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == qtype)
			return types[i].name;
	snprintf(buf, cap, "TYPE%u", qtype);
	return buf;
}

static const char *event_name(int kind)
{
	switch (kind) {
	case EVENT_ALLOW:
		return "allow";
	case EVENT_DENY:
		return "deny";
	case EVENT_DNS_ALLOW:
		return "dns_allow";
	case EVENT_DNS_DENY:
		return "dns_deny";
	}
	return "unknown";
}

static void put_indicators(struct log_line *l, const struct indicators *ind)
{
	char tmp[64];

	log_line_array_begin(l, "indicators");
	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t b = 1u << bit;
		if (!(ind->bits & b))
			continue;
		if (b == IND_CREDENTIAL && ind->ncreds > 0) {
			/* One entry per credential type: "credential:aws_access_key". */
			for (size_t i = 0; i < ind->ncreds && i < IND_MAX_CREDS; i++) {
				snprintf(tmp, sizeof(tmp), "credential:%s",
				         cred_type_name(ind->creds[i].type));
				log_line_array_str(l, tmp);
			}
			continue;
		}
		const char *n = indicator_name((enum indicator)b);
		if (b == IND_CREDENTIAL)
			n = "credential";
		if (n && *n)
			log_line_array_str(l, n);
	}
	log_line_array_end(l);
}

static void put_credentials(struct log_line *l, const struct indicators *ind)
{
	if (ind->ncreds == 0)
		return;
	size_t before = l->len;
	bool ok = put_key(l, "credentials") && puts_(l, "[");
	for (size_t i = 0; ok && i < ind->ncreds && i < IND_MAX_CREDS; i++) {
		const struct cred_hit *c = &ind->creds[i];
		size_t mlen = strnlen(c->masked, sizeof(c->masked));
		const char *t = cred_type_name(c->type);
		/* The ellipsis is ours; the characters around it came from the wire. */
		ok = puts_(l, i ? ",{\"type\":" : "{\"type\":") &&
		     put_escaped(l, t, strlen(t), false) && puts_(l, ",\"masked\":") &&
		     put_escaped(l, c->masked, mlen, true) && puts_(l, "}");
	}
	if (!ok || !puts_(l, "]"))
		l->len = before;
}

void log_event_render(struct log_line *l, const struct flow_event *ev)
{
	char buf[ADDR_STRLEN + 1];
	char num[16];
	bool dns = ev->kind == EVENT_DNS_ALLOW || ev->kind == EVENT_DNS_DENY;
	bool deny = ev->kind == EVENT_DENY || ev->kind == EVENT_DNS_DENY;

	log_line_begin(l, event_name(ev->kind));
	if (!dns || ev->proto != 0)
		log_line_str(l, "proto", log_proto_str(ev->proto, num, sizeof(num)));
	if (ev->src.family != ADDR_NONE) {
		log_line_str(l, "src", addr_str(&ev->src, buf));
		if (ev->sport || (!dns && (ev->proto == 6 || ev->proto == 17)))
			log_line_u64(l, "sport", ev->sport);
	}
	if (ev->dst.family != ADDR_NONE) {
		log_line_str(l, "dst", addr_str(&ev->dst, buf));
		if (ev->dport || (!dns && (ev->proto == 6 || ev->proto == 17)))
			log_line_u64(l, "dport", ev->dport);
	}
	if (ev->name && *ev->name)
		log_line_str(l, "name", ev->name);
	if (ev->name_source != NAME_SOURCE_NONE)
		log_line_str(l, "name_source", name_source_str(ev->name_source));
	if (dns || (ev->qname && *ev->qname)) {
		log_line_str(l, "qname", ev->qname ? ev->qname : "");
		log_line_str(l, "qtype", log_qtype_str(ev->qtype, num, sizeof(num)));
	}
	if (deny || ev->reason != REASON_NONE) {
		const char *r = reason_name(ev->reason);
		if (r && *r)
			log_line_str(l, "reason", r);
	}
	if (ev->detail && *ev->detail)
		log_line_str(l, "detail", ev->detail);
	if (deny || ev->ind.bits) {
		put_indicators(l, &ev->ind);
		put_credentials(l, &ev->ind);
		if (ev->ind.imitates[0])
			log_line_strn(l, "imitates", ev->ind.imitates,
			              strnlen(ev->ind.imitates, sizeof(ev->ind.imitates)));
		log_line_str(l, "severity", severity_name(ev->ind.severity));
	}
	if (deny)
		log_line_bool(l, "enforced", ev->enforced);
	if (ev->rule && ev->rule->file) {
		log_line_strf(l, "rule", "%s:%u", ev->rule->file, ev->rule->line);
	}
	if (ev->has_uid)
		log_line_u64(l, "uid", ev->uid);
	if (ev->count > 1 || ev->aggregated)
		log_line_u64(l, "count", ev->count);
	if (ev->aggregated) {
		char t[40];
		log_timestamp_mono(t, sizeof(t), ev->first_ns);
		log_line_str(l, "first_ts", t);
		log_timestamp_mono(t, sizeof(t), ev->last_ns);
		log_line_str(l, "last_ts", t);
	}
	log_line_finish(l);
}

void log_event(const struct flow_event *ev)
{
	struct log_line l;

	log_event_render(&l, ev);
	if (log_journal())
		(void)emit_journal(l.event, ev, l.buf, l.len);
	else
		(void)emit(l.buf, l.len);
}

void log_ready(const char *mode, bool enforce, const unsigned *queues, size_t nqueues,
               const char *const *dns_listen, size_t ndns)
{
	struct log_line l;

	log_line_begin(&l, "ready");
	log_line_str(&l, "version", EGRESSD_VERSION);
	log_line_str(&l, "mode", mode);
	log_line_bool(&l, "enforce", enforce);
	log_line_array_begin(&l, "queues");
	for (size_t i = 0; i < nqueues; i++)
		log_line_array_u64(&l, queues[i]);
	log_line_array_end(&l);
	log_line_array_begin(&l, "dns_listen");
	for (size_t i = 0; i < ndns; i++)
		log_line_array_str(&l, dns_listen[i]);
	log_line_array_end(&l);
	log_line_write(&l);
	log_flush(); /* control lines are on disk when the call returns */
}

void log_reload(const struct policy_stats *st, unsigned warnings, long revoked)
{
	struct log_line l;

	log_line_begin(&l, "reload");
	log_line_u64(&l, "exact_names", st->exact_names);
	log_line_u64(&l, "wildcards", st->wildcards);
	log_line_u64(&l, "ranges", st->ranges);
	log_line_u64(&l, "warnings", warnings);
	if (revoked >= 0)
		log_line_u64(&l, "revoked", (uint64_t)revoked);
	log_line_write(&l);
	log_flush(); /* control lines are on disk when the call returns */
}

void log_error(const char *const *diags, size_t ndiags, const char *fmt, ...)
{
	struct log_line l;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line_begin(&l, "error");
	log_line_text(&l, "detail", msg);
	if (ndiags) {
		log_line_array_begin(&l, "diagnostics");
		for (size_t i = 0; i < ndiags; i++)
			log_line_array_str(&l, diags[i]);
		log_line_array_end(&l);
	}
	log_line_write(&l);
	log_flush(); /* control lines are on disk when the call returns */
}
