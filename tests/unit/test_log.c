/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event log (proxy/log.c) and the metrics text (proxy/metrics.c):
 * escaping, every line valid UTF-8 JSON whatever the network sent, field
 * names and values as SPEC.md lists them, reopen after rotation.
 */
#define _GNU_SOURCE /* unshare */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../proxy/log.h"
#include "../../proxy/metrics.h"
#include <event2/buffer.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Strict UTF-8 check (the log must be valid UTF-8). */
static bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t len = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : p[i] >= 0xc2 ? 2 : 0;
		if (len == 0 || p[i] > 0xf4 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

static struct json_object *parse_line(const char *line)
{
	size_t n = strlen(line);
	assert_true(n > 2);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1)); /* one line */
	assert_true(utf8_valid(line, n));
	struct json_object *o = json_tokener_parse(line);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_escape(void **state)
{
	char out[64];
	bool cut = true;

	(void)state;
	size_t n = log_json_escape(out, sizeof(out), "a\"b\\c\n\x01\x7f", 8, false, &cut);
	assert_string_equal(out, "a\\\"b\\\\c\\n\\u0001\\u007f");
	assert_int_equal(n, strlen(out));
	assert_false(cut);

	/* bytes >= 0x80 escaped strictly, even when they are valid UTF-8 */
	log_json_escape(out, sizeof(out), "\xc3\xa9\xff", 3, false, &cut);
	assert_string_equal(out, "\\u00c3\\u00a9\\u00ff");
	/* our own text: valid UTF-8 passes, invalid bytes are still escaped */
	log_json_escape(out, sizeof(out), "A\xe2\x80\xa6Z\xc3", 6, true, &cut);
	assert_string_equal(out, "A\xe2\x80\xa6Z\\u00c3");
	/* overlong and surrogate sequences are not valid UTF-8 */
	log_json_escape(out, sizeof(out), "\xc0\xaf\xed\xa0\x80", 5, true, &cut);
	assert_string_equal(out, "\\u00c0\\u00af\\u00ed\\u00a0\\u0080");

	/* truncation never cuts an escape in half */
	char small[8];
	n = log_json_escape(small, sizeof(small), "ab\x01zz", 5, false, &cut);
	assert_true(cut);
	assert_string_equal(small, "ab");
	assert_int_equal(n, 2);
	/* embedded NUL from the wire */
	log_json_escape(out, sizeof(out), "a\0b", 3, false, &cut);
	assert_string_equal(out, "a\\u0000b");
}

static void test_timestamp(void **state)
{
	char ts[40];
	regex_t re;

	(void)state;
	log_timestamp(ts, sizeof(ts));
	assert_int_equal(
	    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
	            REG_EXTENDED | REG_NOSUB),
	    0);
	assert_int_equal(regexec(&re, ts, 0, NULL, 0), 0);
	regfree(&re);
}

/* Aggregated lines (issue 12): count always, first_ts / last_ts from the
 * engine's monotonic times, in order, never after the line's own ts. */
static void test_aggregated_line(void **state)
{
	struct log_line l;
	struct flow_event ev;
	struct timespec mt;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.kind = EVENT_DENY;
	ev.proto = 6;
	addr_parse("192.0.2.10", &ev.src);
	addr_parse("198.51.100.7", &ev.dst);
	ev.dport = 443;
	ev.reason = REASON_IP_NOT_ALLOWED;
	ev.count = 1;
	ev.aggregated = true;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &mt), 0);
	uint64_t now = (uint64_t)mt.tv_sec * 1000000000ull + (uint64_t)mt.tv_nsec;
	ev.first_ns = now - 900000000ull; /* 0.9 s ago */
	ev.last_ns = now - 300000000ull;
	log_event_render(&l, &ev);
	struct json_object *o = parse_line(l.buf);
	assert_string_equal(get_str(o, "count"), "1");
	const char *ts = get_str(o, "ts"), *f = get_str(o, "first_ts"), *la = get_str(o, "last_ts");
	assert_non_null(f);
	assert_non_null(la);
	assert_int_equal(strlen(f), strlen(ts));
	assert_true(strcmp(f, la) < 0);
	assert_true(strcmp(la, ts) <= 0);
	json_object_put(o);

	/* an event's own line: neither count nor the times */
	ev.aggregated = false;
	log_event_render(&l, &ev);
	o = parse_line(l.buf);
	assert_null(get_str(o, "count"));
	assert_null(get_str(o, "first_ts"));
	assert_null(get_str(o, "last_ts"));
	json_object_put(o);
}

static void fill_deny(struct flow_event *ev, struct policy_rule *rule)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = EVENT_DENY;
	ev->proto = 6;
	addr_parse("192.0.2.10", &ev->src);
	addr_parse("2001:db8::5", &ev->dst);
	ev->sport = 40000;
	ev->dport = 443;
	ev->name = "evil\"\\\n\x01\xff.example";
	ev->name_source = NAME_SOURCE_SNI;
	ev->reason = REASON_NAME_NOT_ALLOWED;
	ev->detail = "tls_ok";
	ev->ind.bits = IND_CREDENTIAL | IND_TYPOSQUAT;
	ev->ind.ncreds = 1;
	ev->ind.creds[0].type = CRED_AWS_ACCESS_KEY;
	snprintf(ev->ind.creds[0].masked, sizeof(ev->ind.creds[0].masked), "AKIA\xe2\x80\xa6MPLE");
	snprintf(ev->ind.imitates, sizeof(ev->ind.imitates), "example.com");
	ev->ind.severity = SEVERITY_CRITICAL;
	ev->enforced = true;
	ev->has_uid = true;
	ev->uid = 1000;
	ev->count = 3;
	(void)rule;
}

static void test_deny_event(void **state)
{
	struct flow_event ev;
	struct log_line l;

	(void)state;
	fill_deny(&ev, NULL);
	log_event_render(&l, &ev);
	struct json_object *o = parse_line(l.buf);
	assert_string_equal(get_str(o, "event"), "deny");
	assert_string_equal(get_str(o, "proto"), "tcp");
	assert_string_equal(get_str(o, "src"), "192.0.2.10");
	assert_string_equal(get_str(o, "dst"), "2001:db8::5");
	assert_string_equal(get_str(o, "sport"), "40000");
	assert_string_equal(get_str(o, "dport"), "443");
	/* \u00ff decodes to U+00FF: the raw byte never reaches the file */
	assert_string_equal(get_str(o, "name"), "evil\"\\\n\x01\xc3\xbf.example");
	assert_string_equal(get_str(o, "name_source"), "sni");
	assert_string_equal(get_str(o, "reason"), "name_not_allowed");
	assert_string_equal(get_str(o, "detail"), "tls_ok");
	assert_string_equal(get_str(o, "severity"), "critical");
	assert_string_equal(get_str(o, "imitates"), "example.com");
	assert_string_equal(get_str(o, "enforced"), "true");
	assert_string_equal(get_str(o, "uid"), "1000");
	assert_string_equal(get_str(o, "count"), "3");
	struct json_object *ind, *creds;
	assert_true(json_object_object_get_ex(o, "indicators", &ind));
	assert_int_equal(json_object_array_length(ind), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(ind, 0)),
	                    "credential:aws_access_key");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(ind, 1)), "typosquat");
	assert_true(json_object_object_get_ex(o, "credentials", &creds));
	assert_int_equal(json_object_array_length(creds), 1);
	assert_string_equal(get_str(json_object_array_get_idx(creds, 0), "type"), "aws_access_key");
	assert_string_equal(get_str(json_object_array_get_idx(creds, 0), "masked"),
	                    "AKIA\xe2\x80\xa6MPLE");
	assert_null(get_str(o, "rule"));
	json_object_put(o);
}

static void test_allow_and_dns_events(void **state)
{
	struct flow_event ev;
	struct log_line l;
	struct policy_rule rule = {
	    .file = "/etc/egressd/allow.d/ci.list", .line = 7, .text = "deb.debian.org:80,443"};

	(void)state;
	memset(&ev, 0, sizeof(ev));
	ev.kind = EVENT_ALLOW;
	ev.proto = 17;
	addr_parse("192.0.2.10", &ev.src);
	addr_parse("198.51.100.7", &ev.dst);
	ev.sport = 5353;
	ev.dport = 443;
	ev.name = "deb.debian.org";
	ev.name_source = NAME_SOURCE_QUIC_SNI;
	ev.rule = &rule;
	ev.count = 1;
	log_event_render(&l, &ev);
	struct json_object *o = parse_line(l.buf);
	assert_string_equal(get_str(o, "event"), "allow");
	assert_string_equal(get_str(o, "proto"), "udp");
	assert_string_equal(get_str(o, "rule"), "/etc/egressd/allow.d/ci.list:7");
	assert_string_equal(get_str(o, "name_source"), "quic_sni");
	assert_null(get_str(o, "reason"));
	assert_null(get_str(o, "indicators"));
	assert_null(get_str(o, "enforced"));
	assert_null(get_str(o, "count"));
	json_object_put(o);

	memset(&ev, 0, sizeof(ev));
	ev.kind = EVENT_DNS_DENY;
	addr_parse("192.0.2.10", &ev.src);
	ev.sport = 33333;
	ev.qname = "aGVsbG8gd29ybGQ.tunnel.example";
	ev.qtype = 16;
	ev.reason = REASON_NAME_NOT_ALLOWED;
	ev.ind.bits = IND_DNS_TUNNEL;
	ev.ind.severity = SEVERITY_HIGH;
	ev.enforced = false;
	log_event_render(&l, &ev);
	o = parse_line(l.buf);
	assert_string_equal(get_str(o, "event"), "dns_deny");
	assert_string_equal(get_str(o, "qtype"), "TXT");
	assert_string_equal(get_str(o, "qname"), "aGVsbG8gd29ybGQ.tunnel.example");
	assert_string_equal(get_str(o, "enforced"), "false");
	assert_string_equal(get_str(o, "severity"), "high");
	assert_null(get_str(o, "proto"));
	json_object_put(o);

	char buf[16];
	assert_string_equal(log_qtype_str(65, buf, sizeof(buf)), "HTTPS");
	assert_string_equal(log_qtype_str(28, buf, sizeof(buf)), "AAAA");
	assert_string_equal(log_qtype_str(4242, buf, sizeof(buf)), "TYPE4242");
	assert_string_equal(log_proto_str(58, buf, sizeof(buf)), "icmpv6");
	assert_string_equal(log_proto_str(47, buf, sizeof(buf)), "47");
}

/* A line that cannot hold everything is still one valid JSON object. */
static void test_truncated_line(void **state)
{
	struct flow_event ev;
	struct log_line l;
	static char big[LOG_LINE_MAX];

	(void)state;
	memset(big, 0x01, sizeof(big) - 1); /* every byte becomes 6: \u0001 */
	fill_deny(&ev, NULL);
	ev.name = big;
	log_event_render(&l, &ev);
	assert_true(l.truncated);
	assert_true(l.len <= LOG_LINE_MAX);
	struct json_object *o = parse_line(l.buf);
	assert_string_equal(get_str(o, "event"), "deny");
	assert_null(get_str(o, "name")); /* dropped whole, not cut */
	/* the keys after it still fit */
	assert_string_equal(get_str(o, "reason"), "name_not_allowed");
	assert_string_equal(get_str(o, "enforced"), "true");
	assert_string_equal(get_str(o, "count"), "3");
	json_object_put(o);

	/* truncation inside an array still closes it */
	log_line_begin(&l, "error");
	log_line_array_begin(&l, "diagnostics");
	for (int i = 0; i < 2000; i++)
		log_line_array_str(&l, "allow.d/x.list:1: bad port");
	log_line_finish(&l);
	assert_true(l.truncated);
	o = parse_line(l.buf);
	json_object_put(o);
}

static void test_file_and_reopen(void **state)
{
	char dir[] = "/tmp/egressd-test-log-XXXXXX";
	char path[128], rotated[128], line[LOG_LINE_MAX];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/events.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/events.log.1", dir);
	assert_int_equal(log_open(path), 0);
	assert_string_equal(log_path(), path);
	log_error(NULL, 0, "first %d", 1);
	assert_int_equal(rename(path, rotated), 0);
	log_error(NULL, 0, "second"); /* still the old (renamed) file */
	assert_int_equal(log_reopen(), 0);
	const char *diags[] = {"a.list:3: bad port \"44x\""};
	log_error(diags, 1, "third");
	log_close();
	assert_null(log_path());

	FILE *f = fopen(rotated, "r");
	assert_non_null(f);
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		struct json_object *o = parse_line(line);
		assert_string_equal(get_str(o, "detail"), n == 0 ? "first 1" : "second");
		json_object_put(o);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	struct json_object *o = parse_line(line), *arr;
	assert_string_equal(get_str(o, "event"), "error");
	assert_string_equal(get_str(o, "detail"), "third");
	assert_true(json_object_object_get_ex(o, "diagnostics", &arr));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, 0)),
	                    "a.list:3: bad port \"44x\"");
	json_object_put(o);
	assert_null(fgets(line, sizeof(line), f));
	fclose(f);
	unlink(path);
	unlink(rotated);
	rmdir(dir);
	assert_int_equal(log_write_errors(), 0);
}

/* A full pipe: writes fail without blocking and are counted. */
static void test_nonblocking_full_pipe(void **state)
{
	int p[2];
	char fdpath[64];

	(void)state;
	assert_int_equal(pipe(p), 0);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p[1]);
	assert_int_equal(log_open(fdpath), 0);
	uint64_t before = log_write_errors();
	/* 64 KiB pipe; each line ~100 bytes: 5000 lines must overflow it. */
	for (int i = 0; i < 5000; i++)
		log_error(NULL, 0, "filler line %d", i);
	assert_true(log_write_errors() > before);
	log_close();
	close(p[0]);
	close(p[1]);
}

static void test_metrics_render(void **state)
{
	struct metrics_snapshot s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.packets[VERDICT_ALLOW] = 5;
	s.packets[VERDICT_DENY] = 2;
	s.flows_allow = 4;
	s.flows_deny[REASON_IP_NOT_ALLOWED] = 7;
	s.dns_denied = 3;
	s.queue_dropped = 9;
	s.bindings = 11;
	s.flows_tracked = 12;
	s.log_write_errors = 1;
	s.dns_answers_dropped = 13;
	s.dns_limited_conns = 14;
	s.dns_limited_inflight = 15;
	s.dns_limited_slow = 16;
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(metrics_render(&s, b), 0);
	size_t n = evbuffer_get_length(b);
	char *text = calloc(1, n + 1);
	evbuffer_copyout(b, text, n);
	evbuffer_free(b);
	const char *want[] = {
	    "# TYPE egressd_packets_total counter\n",
	    "egressd_packets_total{verdict=\"allow\"} 5\n",
	    "egressd_packets_total{verdict=\"deny\"} 2\n",
	    "egressd_packets_total{verdict=\"pass\"} 0\n",
	    "egressd_packets_total{verdict=\"drop\"} 0\n",
	    "egressd_flows_total{decision=\"deny\",reason=\"ip_not_allowed\"} 7\n",
	    "egressd_flows_total{decision=\"allow\",reason=\"\"} 4\n",
	    "egressd_dns_queries_total{decision=\"deny\"} 3\n",
	    "egressd_dns_queries_total{decision=\"fail\"} 0\n",
	    "egressd_queue_dropped_total 9\n",
	    "egressd_bindings 11\n",
	    "# TYPE egressd_bindings gauge\n",
	    "egressd_flows_tracked 12\n",
	    "egressd_log_write_errors_total 1\n",
	    "# TYPE egressd_dns_answers_dropped_total counter\n",
	    "egressd_dns_answers_dropped_total 13\n",
	    "# TYPE egressd_dns_client_limited_total counter\n",
	    "egressd_dns_client_limited_total{limit=\"tcp_connections\"} 14\n",
	    "egressd_dns_client_limited_total{limit=\"inflight\"} 15\n",
	    "egressd_dns_client_limited_total{limit=\"tcp_query_time\"} 16\n",
	    "egressd_build_info{version=\"" EGRESSD_VERSION "\"} 1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(text, want[i]))
			fail_msg("missing: %s", want[i]);
	/* every line ends, no empty label names, nothing but ASCII */
	assert_int_equal(text[n - 1], '\n');
	for (size_t i = 0; i < n; i++)
		assert_true((unsigned char)text[i] < 0x80);
	free(text);
}

/* [log] host: every line names its gateway; "" turns the key off. */
static void test_host_key(void **state)
{
	struct flow_event ev;
	struct log_line l;
	char hn[256] = "";

	(void)state;
	fill_deny(&ev, NULL);
	log_set_host("gw-b.example");
	log_event_render(&l, &ev);
	struct json_object *o = parse_line(l.buf);
	assert_string_equal(get_str(o, "host"), "gw-b.example");
	assert_non_null(strstr(l.buf, "\"event\":\"deny\",\"host\":\"gw-b.example\","));
	json_object_put(o);

	log_line_begin(&l, "reload");
	log_line_finish(&l);
	o = parse_line(l.buf);
	assert_string_equal(get_str(o, "host"), "gw-b.example");
	json_object_put(o);

	/* a hostile value stays one valid JSON line */
	log_set_host("a\"b\nc");
	log_event_render(&l, &ev);
	o = parse_line(l.buf);
	assert_string_equal(get_str(o, "host"), "a\"b\nc");
	json_object_put(o);

	log_use_host(""); /* host = (empty): no key */
	log_event_render(&l, &ev);
	o = parse_line(l.buf);
	assert_null(get_str(o, "host"));
	json_object_put(o);

	log_use_host(NULL); /* unset: the machine's hostname */
	assert_int_equal(gethostname(hn, sizeof(hn) - 1), 0);
	log_event_render(&l, &ev);
	o = parse_line(l.buf);
	if (hn[0])
		assert_string_equal(get_str(o, "host"), hn);
	json_object_put(o);
	log_set_host(NULL);
}

/* The fields of a journal entry: "KEY=value\0"... ; returns the value of key or NULL. */
static const char *jfield(const char *f, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (size_t off = 0; off < n;) {
		const char *z = memchr(f + off, '\0', n - off);
		assert_non_null(z); /* every field is terminated */
		if ((size_t)(z - (f + off)) > kl && memcmp(f + off, key, kl) == 0 &&
		    f[off + kl] == '=')
			return f + off + kl + 1;
		off = (size_t)(z - f) + 1;
	}
	return NULL;
}

static void test_journal_fields(void **state)
{
	struct flow_event ev;
	struct log_line l;
	static char f[LOG_JOURNAL_MAX];

	(void)state;
	fill_deny(&ev, NULL);
	log_set_host("gw-a.example");
	log_event_render(&l, &ev);
	size_t n = log_journal_fields(f, sizeof(f), l.event, &ev, l.buf, l.len);
	assert_true(n > 0);
	assert_string_equal(jfield(f, n, "EGRESSD_EVENT"), "deny");
	assert_string_equal(jfield(f, n, "EGRESSD_REASON"), "name_not_allowed");
	/* network text escaped: no control byte, no raw 0xff in any field */
	assert_string_equal(jfield(f, n, "EGRESSD_NAME"), "evil\\\"\\\\\\n\\u0001\\u00ff.example");
	assert_string_equal(jfield(f, n, "EGRESSD_SRC"), "192.0.2.10");
	assert_string_equal(jfield(f, n, "EGRESSD_DST"), "2001:db8::5");
	assert_string_equal(jfield(f, n, "EGRESSD_DPORT"), "443");
	assert_string_equal(jfield(f, n, "EGRESSD_SEVERITY"), "critical");
	assert_string_equal(jfield(f, n, "EGRESSD_INDICATORS"),
	                    "credential:aws_access_key,typosquat");
	assert_string_equal(jfield(f, n, "EGRESSD_HOST"), "gw-a.example");
	assert_string_equal(jfield(f, n, "PRIORITY"), "2"); /* critical = LOG_CRIT */
	assert_string_equal(jfield(f, n, "SYSLOG_IDENTIFIER"), "egressd");
	/* MESSAGE is the JSON line itself, without its newline */
	const char *m = jfield(f, n, "MESSAGE");
	assert_non_null(m);
	assert_int_equal(strlen(m), l.len - 1);
	assert_memory_equal(m, l.buf, l.len - 1);
	for (size_t i = 0; i < n; i++)
		assert_true((unsigned char)f[i] >= 0x20 || f[i] == '\0');
	/* the masked credential is only in MESSAGE (as in the file), in no other field */
	const char *mk = "MPLE";
	for (size_t off = 0; off < n; off += strlen(f + off) + 1)
		if (strncmp(f + off, "MESSAGE=", 8) != 0)
			assert_null(strstr(f + off, mk));

	/* priorities follow the severity; allow and control lines are info */
	ev.ind.severity = SEVERITY_LOW;
	assert_int_equal(log_journal_priority("deny", &ev), 5);
	ev.ind.severity = SEVERITY_MEDIUM;
	assert_int_equal(log_journal_priority("deny", &ev), 4);
	ev.ind.severity = SEVERITY_HIGH;
	assert_int_equal(log_journal_priority("deny", &ev), 3);
	assert_int_equal(log_journal_priority("error", NULL), 3);
	assert_int_equal(log_journal_priority("reload", NULL), 6);
	ev.kind = EVENT_ALLOW;
	assert_int_equal(log_journal_priority("allow", &ev), 6);

	/* a control line: event, priority, message; no flow fields */
	log_set_host(NULL);
	log_line_begin(&l, "reload");
	log_line_u64(&l, "ranges", 1);
	log_line_finish(&l);
	n = log_journal_fields(f, sizeof(f), l.event, NULL, l.buf, l.len);
	assert_string_equal(jfield(f, n, "EGRESSD_EVENT"), "reload");
	assert_string_equal(jfield(f, n, "PRIORITY"), "6");
	assert_null(jfield(f, n, "EGRESSD_NAME"));
	assert_null(jfield(f, n, "EGRESSD_HOST"));
	assert_non_null(jfield(f, n, "MESSAGE"));

	/* a DNS denial names the query */
	memset(&ev, 0, sizeof(ev));
	ev.kind = EVENT_DNS_DENY;
	ev.qname = "exfil.example";
	ev.qtype = 16;
	ev.reason = REASON_NAME_NOT_ALLOWED;
	log_event_render(&l, &ev);
	n = log_journal_fields(f, sizeof(f), l.event, &ev, l.buf, l.len);
	assert_string_equal(jfield(f, n, "EGRESSD_EVENT"), "dns_deny");
	assert_string_equal(jfield(f, n, "EGRESSD_NAME"), "exfil.example");
	assert_string_equal(jfield(f, n, "EGRESSD_SEVERITY"), "low");
	assert_null(jfield(f, n, "EGRESSD_DPORT"));

	/* a too small buffer: fields left out, never overrun */
	n = log_journal_fields(f, 10, l.event, &ev, l.buf, l.len);
	assert_true(n <= 10);
}

/* JOURNAL_STREAM detection: "DEV:INODE" of the stream on the fd. */
static void test_journal_stream_detect(void **state)
{
	char path[] = "/tmp/egressd-test-journal-XXXXXX";
	char env[64];
	struct stat st;

	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	assert_true(log_journal_stream_matches(env, fd));
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + 1);
	assert_false(log_journal_stream_matches(env, fd));
	assert_false(log_journal_stream_matches(NULL, fd));
	assert_false(log_journal_stream_matches("", fd));
	assert_false(log_journal_stream_matches("garbage", fd));
	snprintf(env, sizeof(env), "%llu:%llux", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	assert_false(log_journal_stream_matches(env, fd));
	close(fd);
	/* log_open("-") without a matching JOURNAL_STREAM writes plain lines */
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(log_open("-"), 0);
	assert_false(log_journal());
	log_close();
}

/*
 * The real send path: in a private mount namespace (root only; skipped
 * otherwise) a tmpfs over /run/systemd and our own datagram socket at
 * /run/systemd/journal/socket stand in for journald; an event goes through
 * the writer thread and sd_journal_sendv, and the datagram (journald's
 * native protocol, "KEY=value\n") carries the fields.
 */
static void test_journal_send_path(void **state)
{
	(void)state;
	if (geteuid() != 0 || unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", "/run/systemd", "tmpfs", 0, "mode=0755") == -1) {
		fprintf(stderr, "skipped: needs root and a private mount namespace\n");
		skip();
	}
	assert_int_equal(mkdir("/run/systemd/journal", 0755), 0);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/run/systemd/journal/socket");
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	struct flow_event ev;
	fill_deny(&ev, NULL);
	log_set_host("gw-j.example");
	assert_int_equal(log_open("-"), 0);
	log_journal_set(true);
	assert_int_equal(log_async_start(), 0);
	log_event(&ev);
	log_flush();
	static char buf[65536];
	ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "EGRESSD_EVENT=deny\n"));
	assert_non_null(strstr(buf, "EGRESSD_REASON=name_not_allowed\n"));
	assert_non_null(strstr(buf, "EGRESSD_DST=2001:db8::5\n"));
	assert_non_null(strstr(buf, "EGRESSD_DPORT=443\n"));
	assert_non_null(strstr(buf, "EGRESSD_HOST=gw-j.example\n"));
	assert_non_null(strstr(buf, "PRIORITY=2\n"));
	assert_non_null(strstr(buf, "MESSAGE={\"ts\":"));
	assert_non_null(strstr(buf, "\"event\":\"deny\""));
	log_close();
	log_journal_set(false);
	log_set_host(NULL);
	close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_timestamp),
	    cmocka_unit_test(test_aggregated_line),
	    cmocka_unit_test(test_deny_event),
	    cmocka_unit_test(test_allow_and_dns_events),
	    cmocka_unit_test(test_truncated_line),
	    cmocka_unit_test(test_file_and_reopen),
	    cmocka_unit_test(test_nonblocking_full_pipe),
	    cmocka_unit_test(test_metrics_render),
	    cmocka_unit_test(test_host_key),
	    cmocka_unit_test(test_journal_fields),
	    cmocka_unit_test(test_journal_stream_detect),
	    cmocka_unit_test(test_journal_send_path),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
