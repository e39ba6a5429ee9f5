/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The aggregation behind egressd report (proxy/report.c): counts honoured,
 * tallies by destination, source, indicator and severity, credentials kept
 * as logged, malformed lines counted, and hostile strings escaped in the page.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../proxy/log.h"
#include "../../proxy/report.h"
#include "../../proxy/core/addr.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(struct report *r, const char *line)
{
	return report_add_line(r, line, strlen(line));
}

static uint64_t tally_n(const struct report_tally *t, const char *key)
{
	const struct report_item *it = report_tally_get(t, key);
	return it ? it->n : 0;
}

static const char *DENY_A =
    "{\"ts\":\"2026-12-03T13:00:01.000000Z\",\"event\":\"deny\",\"proto\":\"tcp\","
    "\"src\":\"198.51.100.10\",\"sport\":40000,\"dst\":\"203.0.113.9\",\"dport\":443,"
    "\"name\":\"a.example\",\"name_source\":\"sni\",\"reason\":\"name_not_allowed\","
    "\"indicators\":[\"typosquat\"],\"severity\":\"medium\",\"enforced\":true,\"count\":3}\n";

static void test_count_honoured(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	assert_int_equal(add(&r, DENY_A), 0);
	assert_int_equal(add(&r, DENY_A), 0);
	assert_int_equal(add(&r, "{\"ts\":\"2026-12-03T13:00:02.5Z\",\"event\":\"allow\","
	                         "\"name\":\"ok.example\",\"dport\":443,\"count\":5}"),
	                 0);
	assert_int_equal(add(&r, "{\"ts\":\"2026-12-03T13:00:03Z\",\"event\":\"allow\"}"), 0);
	assert_int_equal(r.deny, 6);
	assert_int_equal(r.allow, 6);
	assert_int_equal(r.events, 4);
	assert_int_equal(r.lines, 4);
	assert_int_equal(tally_n(&r.dests, "a.example:443"), 6);
	assert_int_equal(r.dests.n, 1); /* allows are not destinations of denials */
	assert_int_equal(tally_n(&r.sources, "198.51.100.10"), 6);
	assert_int_equal(tally_n(&r.reasons, "name_not_allowed"), 6);
	assert_int_equal(r.sev[REPORT_SEV_MEDIUM], 6);
	const struct report_item *it = report_tally_get(&r.indicators, "typosquat");
	assert_non_null(it);
	assert_int_equal(it->n, 6);
	assert_int_equal(it->sev[REPORT_SEV_MEDIUM], 6);
	assert_int_equal(it->sev[REPORT_SEV_HIGH], 0);
	/* the timeline keeps one sample per line, weighted */
	assert_int_equal(r.nsamples, 2);
	assert_int_equal(r.samples[0].n, 3);
	assert_true(r.t_max - r.t_min > 1.99 && r.t_max - r.t_min < 2.01);
	report_free(&r);
}

static void test_destinations_and_dns(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	/* no name: the address (IPv6 in brackets) and port */
	assert_int_equal(add(&r,
	                     "{\"event\":\"deny\",\"src\":\"2001:db8::10\",\"dst\":\"2001:db8::1\","
	                     "\"dport\":22,\"reason\":\"ip_not_allowed\",\"severity\":\"low\","
	                     "\"indicators\":[\"ip_literal\"]}"),
	                 0);
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"dst\":\"203.0.113.7\",\"dport\":80}"), 0);
	assert_int_equal(add(&r,
	                     "{\"event\":\"dns_deny\",\"src\":\"198.51.100.10\",\"qname\":"
	                     "\"x.t.example\",\"qtype\":\"TXT\",\"indicators\":[\"dns_tunnel\"],"
	                     "\"severity\":\"high\",\"enforced\":false,\"count\":4}"),
	                 0);
	assert_int_equal(add(&r, "{\"event\":\"dns_allow\",\"qname\":\"ok.example\",\"count\":2}"),
	                 0);
	assert_int_equal(add(&r, "{\"event\":\"reload\",\"exact_names\":3}"), 0);
	assert_int_equal(tally_n(&r.dests, "[2001:db8::1]:22"), 1);
	assert_int_equal(tally_n(&r.dests, "203.0.113.7:80"), 1);
	assert_int_equal(r.procs.n, 0); /* gateway mode: no process */
	assert_int_equal(tally_n(&r.qnames, "x.t.example"), 4);
	assert_int_equal(r.dns_deny, 4);
	assert_int_equal(r.dns_allow, 2);
	assert_int_equal(r.deny_audit, 4);
	assert_int_equal(r.other, 1);
	assert_int_equal(tally_n(&r.sources, "198.51.100.10"), 4);
	assert_int_equal(tally_n(&r.sources, "2001:db8::10"), 1);
	assert_int_equal(r.sev[REPORT_SEV_HIGH], 4);
	assert_int_equal(r.sev[REPORT_SEV_LOW], 2); /* absent severity counts as low */
	assert_int_equal(report_tally_get(&r.indicators, "dns_tunnel")->sev[REPORT_SEV_HIGH], 4);
	assert_int_equal(r.nsamples, 0); /* no ts: not on the timeline */
	assert_true(r.t_min > r.t_max);
	report_free(&r);
}

static void test_credentials_as_logged(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	assert_int_equal(
	    add(&r, "{\"event\":\"deny\",\"name\":\"e.example\",\"dport\":443,"
	            "\"indicators\":[\"credential:aws_access_key\",\"credential:github_token\"],"
	            "\"credentials\":[{\"type\":\"aws_access_key\",\"masked\":\"AKIA\u2026MPLE\"},"
	            "{\"type\":\"github_token\",\"masked\":\"ghp_\u2026abcd\"}],"
	            "\"severity\":\"critical\",\"count\":2}"),
	    0);
	/* an indicator without a credentials list: the type alone */
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"name\":\"e.example\",\"dport\":443,"
	                         "\"indicators\":[\"credential:slack_token\"],"
	                         "\"severity\":\"critical\"}"),
	                 0);
	assert_int_equal(tally_n(&r.creds, "aws_access_key AKIA\u2026MPLE"), 2);
	assert_int_equal(tally_n(&r.creds, "github_token ghp_\u2026abcd"), 2);
	assert_int_equal(tally_n(&r.creds, "slack_token "), 1);
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"name\":\"e.example\",\"uid\":1000,"
	                         "\"exe\":\"/usr/bin/curl\",\"pid\":42}"),
	                 0);
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"name\":\"e.example\",\"uid\":0,"
	                         "\"count\":2}"),
	                 0);
	assert_int_equal(tally_n(&r.procs, "/usr/bin/curl (uid 1000)"), 1);
	assert_int_equal(tally_n(&r.procs, "uid 0"), 2);
	assert_int_equal(r.creds.n, 3);
	assert_int_equal(r.sev[REPORT_SEV_CRITICAL], 3);
	assert_int_equal(r.sev[REPORT_SEV_LOW], 3);
	assert_int_equal(
	    report_tally_get(&r.indicators, "credential:aws_access_key")->sev[REPORT_SEV_CRITICAL],
	    2);
	report_free(&r);
}

static void test_malformed(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	assert_int_equal(add(&r, "\n"), 0); /* blank: ignored, not a line */
	assert_int_equal(add(&r, "   \n"), 0);
	assert_int_equal(add(&r, "not json\n"), -EINVAL);
	assert_int_equal(add(&r, "[1,2]\n"), -EINVAL);
	assert_int_equal(add(&r, "{\"ts\":\"2026-12-03T13:00:01Z\"}\n"), -EINVAL); /* no event */
	assert_int_equal(add(&r, "{\"event\":7}\n"), -EINVAL);
	assert_int_equal(add(&r, "{\"event\":\"deny\"} trailing\n"), -EINVAL);
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"name\":\"cut"), -EINVAL); /* truncated */
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"count\":-3,\"ts\":\"yesterday\"}"), 0);
	assert_int_equal(r.malformed, 6);
	assert_int_equal(r.lines, 7);
	assert_int_equal(r.events, 1);
	assert_int_equal(r.deny, 1); /* a negative count counts once */
	assert_int_equal(tally_n(&r.dests, "(unknown)"), 1);
	assert_int_equal(r.nsamples, 0);
	report_free(&r);
}

static void test_sorted(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	char line[256];
	/* enough keys to grow the table several times */
	for (int i = 0; i < 300; i++) {
		snprintf(
		    line, sizeof(line),
		    "{\"event\":\"deny\",\"name\":\"n%03d.example\",\"dport\":443,\"count\":%d}", i,
		    i % 7 + 1);
		assert_int_equal(add(&r, line), 0);
	}
	assert_int_equal(add(&r, "{\"event\":\"deny\",\"name\":\"n000.example\",\"dport\":443,"
	                         "\"count\":100}"),
	                 0);
	assert_int_equal(r.dests.n, 300);
	size_t *ix = report_tally_sorted(&r.dests);
	assert_non_null(ix);
	assert_string_equal(r.dests.v[ix[0]].key, "n000.example:443");
	assert_int_equal(r.dests.v[ix[0]].n, 101);
	for (size_t i = 1; i < r.dests.n; i++)
		assert_true(r.dests.v[ix[i - 1]].n >= r.dests.v[ix[i]].n);
	free(ix);
	report_free(&r);
}

static char *render(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(report_render(r, f), 0);
	fclose(f);
	return buf;
}

static void test_render_escapes(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	assert_int_equal(
	    add(&r, "{\"ts\":\"2026-12-03T13:00:01Z\",\"event\":\"deny\",\"src\":\"<b>s</b>\","
	            "\"name\":\"<script>alert(1)</script>\",\"dport\":443,"
	            "\"indicators\":[\"<img src=x onerror=alert(2)>\"],"
	            "\"credentials\":[{\"type\":\"x\\\"'&\",\"masked\":\"<i>AKIA\u2026</i>\"}],"
	            "\"severity\":\"high\"}"),
	    0);
	assert_int_equal(add(&r, "{\"event\":\"dns_deny\",\"qname\":\"q\\u0001\\u007f\xff.x\"}"),
	                 0);
	char *html = render(&r);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "<b>s</b>"));
	assert_non_null(strstr(html, "&lt;b&gt;s&lt;/b&gt;"));
	assert_null(strstr(html, "<i>AKIA"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;:443"));
	assert_non_null(strstr(html, "&lt;img src=x onerror=alert(2)&gt;"));
	assert_non_null(strstr(html, "x&quot;&#39;&amp;"));
	assert_non_null(strstr(html, "&lt;i&gt;AKIA\u2026&lt;/i&gt;"));
	assert_non_null(strstr(html, "q\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.x"));
	/* self-contained: nothing to fetch, a phone-sized viewport */
	assert_null(strstr(html, "http://"));
	assert_null(strstr(html, "https://"));
	assert_non_null(strstr(html, "name=\"viewport\""));
	assert_non_null(strstr(html, "default-src 'none'"));
	assert_non_null(strstr(html, "<svg id=\"timeline-plot\""));
	free(html);
	report_free(&r);
}

static void test_render_empty(void **state)
{
	(void)state;
	struct report r;
	report_init(&r);
	char *html = render(&r);
	assert_non_null(strstr(html, "No denied flows with a timestamp."));
	assert_non_null(strstr(html, "</html>"));
	free(html);
	report_free(&r);
}

/* What log.c actually writes (log_event_render) is what report reads. */
static void test_log_c_round_trip(void **state)
{
	(void)state;
	struct report r;
	struct flow_event ev;
	struct log_line l;
	report_init(&r);

	memset(&ev, 0, sizeof(ev));
	ev.kind = EVENT_DENY;
	ev.proto = 6;
	addr_parse("192.0.2.10", &ev.src);
	addr_parse("2001:db8::5", &ev.dst);
	ev.sport = 40000;
	ev.dport = 443;
	ev.name = "<script>x</script>.example";
	ev.name_source = NAME_SOURCE_SNI;
	ev.reason = REASON_NAME_NOT_ALLOWED;
	ev.ind.bits = IND_CREDENTIAL | IND_TYPOSQUAT;
	ev.ind.ncreds = 1;
	ev.ind.creds[0].type = CRED_AWS_ACCESS_KEY;
	snprintf(ev.ind.creds[0].masked, sizeof(ev.ind.creds[0].masked), "AKIA\xe2\x80\xa6MPLE");
	ev.ind.severity = SEVERITY_CRITICAL;
	ev.enforced = false;
	ev.count = 3;
	log_event_render(&l, &ev);
	assert_int_equal(report_add_line(&r, l.buf, l.len), 0);

	ev.dst.family = ADDR_NONE;
	memset(&ev.ind, 0, sizeof(ev.ind));
	addr_parse("192.0.2.53", &ev.dst);
	ev.kind = EVENT_DNS_DENY;
	ev.proto = 0;
	ev.sport = ev.dport = 0;
	ev.name = "";
	ev.name_source = NAME_SOURCE_NONE;
	ev.qname = "t.example";
	ev.qtype = 16;
	ev.ind.bits = IND_DNS_TUNNEL;
	ev.ind.severity = SEVERITY_HIGH;
	ev.enforced = true;
	ev.count = 1;
	log_event_render(&l, &ev);
	assert_int_equal(report_add_line(&r, l.buf, l.len), 0);

	ev.kind = EVENT_ALLOW;
	ev.qname = NULL;
	ev.proto = 6;
	ev.name = "ok.example";
	ev.reason = REASON_NONE;
	memset(&ev.ind, 0, sizeof(ev.ind));
	ev.count = 9;
	log_event_render(&l, &ev);
	assert_int_equal(report_add_line(&r, l.buf, l.len), 0);

	assert_int_equal(r.malformed, 0);
	assert_int_equal(r.deny, 3);
	assert_int_equal(r.dns_deny, 1);
	assert_int_equal(r.allow, 9);
	assert_int_equal(r.deny_audit, 3);
	assert_int_equal(tally_n(&r.dests, "<script>x</script>.example:443"), 3);
	assert_int_equal(tally_n(&r.qnames, "t.example"), 1);
	assert_int_equal(tally_n(&r.sources, "192.0.2.10"), 4);
	assert_int_equal(tally_n(&r.creds, "aws_access_key AKIA\xe2\x80\xa6MPLE"), 3);
	assert_int_equal(r.creds.n, 1); /* the credentials list, not the indicator again */
	assert_int_equal(report_tally_get(&r.indicators, "typosquat")->sev[REPORT_SEV_CRITICAL], 3);
	assert_int_equal(report_tally_get(&r.indicators, "dns_tunnel")->sev[REPORT_SEV_HIGH], 1);
	assert_int_equal(r.nsamples, 1);
	assert_true(r.t_min <= r.t_max);
	report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_honoured),
	    cmocka_unit_test(test_destinations_and_dns),
	    cmocka_unit_test(test_credentials_as_logged),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_sorted),
	    cmocka_unit_test(test_render_escapes),
	    cmocka_unit_test(test_render_empty),
	    cmocka_unit_test(test_log_c_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
