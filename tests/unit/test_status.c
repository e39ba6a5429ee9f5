/* egressd status: metrics text parsing, rates, rendering (proxy/status.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../proxy/status.h"

static const char SAMPLE[] =
    "# HELP egressd_build_info Build information; always 1.\n"
    "# TYPE egressd_build_info gauge\n"
    "egressd_build_info{version=\"1.2.3\"} 1\n"
    "egressd_flows_total{decision=\"allow\",reason=\"\"} 10\n"
    "egressd_flows_total{decision=\"deny\",reason=\"ip_not_allowed\"} 7\n"
    "egressd_flows_total{decision=\"deny\",reason=\"name_not_allowed\"} 30\n"
    "egressd_flows_total{decision=\"deny\",reason=\"ech\"} 0\n"
    "egressd_dns_queries_total{decision=\"allow\"} 5\n"
    "egressd_dns_queries_total{decision=\"deny\"} 2\n"
    "egressd_dns_queries_total{decision=\"fail\"} 1\n"
    "egressd_queue_dropped_total 3\n"
    "egressd_bindings 42\n"
    "egressd_flows_tracked 9\n"
    "egressd_worker_packets_total{worker=\"0\"} 100\n"
    "egressd_worker_packets_total{worker=\"1\"} 200\n";

static void parse_sample(void **state)
{
	(void)state;
	struct status_snap s = {0};
	assert_int_equal(status_parse(SAMPLE, strlen(SAMPLE), &s), 0);
	assert_string_equal(s.version, "1.2.3");
	assert_int_equal(s.allow, 10);
	assert_int_equal(s.deny, 37);
	assert_int_equal(s.nreasons, 3);
	assert_int_equal(s.dns_allow, 5);
	assert_int_equal(s.dns_deny, 2);
	assert_int_equal(s.dns_fail, 1);
	assert_int_equal(s.queue_dropped, 3);
	assert_int_equal(s.bindings, 42);
	assert_int_equal(s.flows_tracked, 9);
	assert_int_equal(s.nworkers, 2);
	assert_int_equal(s.workers[1], 200);
}

static void parse_hostile(void **state)
{
	(void)state;
	struct status_snap s = {0};
	/* Not metrics at all. */
	assert_int_equal(status_parse("<html>hi</html>", 15, &s), -22);
	assert_int_equal(status_parse("", 0, &s), -22);
	/* Broken lines are skipped, good ones kept; no NUL terminator needed. */
	static const char t[] =
	    "egressd_bindings\n"                                  /* no value */
	    "egressd_flows_total{decision=\"deny\" 5\n"           /* bad labels */
	    "egressd_flows_total{decision=\"deny,reason=\"x\"} 5\n" /* unterminated */
	    "egressd_queue_dropped_total abc\n"
	    "egressd_worker_packets_total{worker=\"99999\"} 5\n"  /* out of range */
	    "egressd_worker_packets_total{worker=\"-1\"} 5\n"
	    "egressd_flows_total{decision=\"deny\",reason=\"a\\\"b\\\\c\"} -4\n"
	    "egressd_flows_total{reason=\"port_not_allowed\",decision=\"deny\"} 2 1700000000\n"
	    "egressd_bindings 1e3\r\n"
	    "egressd_flows_tracked NaN\n"
	    "egressd_queue_dropped_total 4";                        /* no final newline */
	assert_int_equal(status_parse(t, sizeof(t) - 1, &s), 0);
	assert_int_equal(s.bindings, 1000);
	assert_int_equal(s.flows_tracked, 0);
	assert_int_equal(s.queue_dropped, 4);
	assert_int_equal(s.nworkers, 0);
	assert_int_equal(s.deny, 2);
	assert_int_equal(s.nreasons, 2);
	assert_string_equal(s.reasons[0].reason, "a\"b\\c");
	/* A truncated buffer: the parser stops at len. */
	struct status_snap u = {0};
	assert_int_equal(status_parse(SAMPLE, 60, &u), -22); /* comments only */
	assert_string_equal(u.version, "");
	/* Many distinct reasons: bounded. */
	char big[8192];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
		                      "egressd_flows_total{decision=\"deny\",reason=\"r%d\"} 1\n", i);
	assert_int_equal(status_parse(big, n, &u), 0);
	assert_int_equal(u.nreasons, STATUS_MAX_REASONS);
	assert_int_equal(u.deny, 100);
}

static void rates(void **state)
{
	(void)state;
	struct status_snap a = {0}, b = {0};
	a.t = 10.0;
	b.t = 12.0;
	a.allow = 10;
	b.allow = 30;
	a.deny = 4;
	b.deny = 8;
	a.dns_allow = 1;
	b.dns_allow = 3;
	b.dns_deny = 2;
	a.nworkers = 1;
	a.workers[0] = 100;
	b.nworkers = 2;
	b.workers[0] = 300;
	b.workers[1] = 50;
	struct status_rates r;
	status_rates(&a, &b, &r);
	assert_true(r.have);
	assert_true(r.allow_ps == 10.0);
	assert_true(r.deny_ps == 2.0);
	assert_true(r.dns_ps == 2.0);
	assert_true(r.worker_ps[0] == 100.0);
	assert_true(r.worker_ps[1] == 25.0);
	/* A restart (counters went down): count from zero. */
	b.allow = 6;
	status_rates(&a, &b, &r);
	assert_true(r.allow_ps == 3.0);
	/* No previous or no elapsed time: no rates. */
	status_rates(NULL, &b, &r);
	assert_false(r.have);
	status_rates(&b, &b, &r);
	assert_false(r.have);
}

static void render(void **state)
{
	(void)state;
	struct status_snap a = {0}, b = {0};
	a.t = 1.0;
	assert_int_equal(status_parse(SAMPLE, strlen(SAMPLE), &a), 0);
	b = a;
	b.t = 2.0;
	b.allow += 5;
	b.deny += 3;
	b.reasons[1].n += 3;
	char buf[4096];
	size_t n = status_render(buf, sizeof(buf), 0, 0, "http://127.0.0.1:9469/metrics", &a, &b);
	assert_int_equal(n, strlen(buf));
	assert_non_null(strstr(buf, "egressd 1.2.3  http://127.0.0.1:9469/metrics\n"));
	assert_non_null(strstr(buf, "FLOWS\n"));
	assert_non_null(strstr(buf, "  allowed  5.0/s      total 15\n"));
	assert_non_null(strstr(buf, "  denied   3.0/s      total 40\n"));
	assert_non_null(strstr(buf, "TOP DENY REASONS\n  name_not_allowed       33\n"
	                            "  ip_not_allowed         7\n\n"));
	assert_null(strstr(buf, "ech")); /* zero counts are not shown */
	assert_non_null(strstr(buf, "DNS      0.0/s      allow 5  deny 2  fail 1\n"));
	assert_non_null(strstr(buf, "QUEUE    dropped 3"));
	assert_non_null(strstr(buf, "BINDINGS 42\n"));
	assert_non_null(strstr(buf, "WORKERS  2\n  worker 0   0.0/s      packets 100\n"));
	/* No previous scrape: no rates. */
	status_render(buf, sizeof(buf), 0, 0, NULL, NULL, &b);
	assert_non_null(strstr(buf, "  allowed  -/s        total 15\n"));
	/* Width and height bound every line and the line count. */
	n = status_render(buf, sizeof(buf), 20, 6, "http://127.0.0.1:9469/metrics", &a, &b);
	unsigned lines = 0;
	for (const char *p = buf, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		assert_true(nl - p <= 20);
		lines++;
	}
	assert_int_equal(lines, 6);
	assert_int_equal(buf[n - 1], '\n');
	/* A buffer too small: still NUL-terminated, whole lines only. */
	char tiny[40];
	n = status_render(tiny, sizeof(tiny), 0, 0, "x", &a, &b);
	assert_true(n < sizeof(tiny));
	assert_int_equal(tiny[n], '\0');
}

static void log_names(void **state)
{
	(void)state;
	char path[] = "/tmp/test_status_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "{\"event\":\"deny\",\"name\":\"old.example\"}\n");
	for (int i = 0; i < 3; i++)
		fprintf(f, "{\"event\":\"deny\",\"name\":\"a.example\",\"reason\":\"x\"}\n");
	fprintf(f, "not json\n{\"event\":\"deny\",\"dst\":\"192.0.2.9\"}\n");
	fprintf(f, "{\"event\":\"dns_deny\",\"qname\":\"b.example\"}\n");
	fprintf(f, "{\"event\":\"allow\",\"name\":\"ok.example\"}\n[1,2]\n\"s\"\n");
	fprintf(f, "{\"event\":\"deny\",\"name\":\"partial.exam"); /* being written */
	fclose(f);
	struct status_snap s = {0};
	s.allow = 7;
	assert_int_equal(status_log_names(path, 1 << 20, &s), 0);
	assert_int_equal(s.allow, 7);
	assert_int_equal(s.nnames, 4);
	assert_string_equal(s.names[1].name, "a.example");
	assert_int_equal(s.names[1].n, 3);
	assert_string_equal(s.names[2].name, "192.0.2.9");
	assert_string_equal(s.names[3].name, "b.example");
	char buf[4096];
	status_render(buf, sizeof(buf), 0, 0, NULL, NULL, &s);
	assert_non_null(strstr(buf, "TOP DENIED NAMES (last 256 KiB of /tmp/test_status_"));
	assert_non_null(strstr(buf, ")\n  a.example "));
	/* A small tail: the cut first line (old.example) is skipped. */
	assert_int_equal(status_log_names(path, 150, &s), 0);
	for (size_t i = 0; i < s.nnames; i++)
		assert_string_not_equal(s.names[i].name, "old.example");
	/* Metrics parsing keeps the names. */
	assert_int_equal(status_parse(SAMPLE, strlen(SAMPLE), &s), 0);
	assert_true(s.nnames > 0);
	unlink(path);
	assert_int_equal(status_log_names(path, 100, &s), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_sample),
	    cmocka_unit_test(parse_hostile),
	    cmocka_unit_test(rates),
	    cmocka_unit_test(render),
	    cmocka_unit_test(log_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
