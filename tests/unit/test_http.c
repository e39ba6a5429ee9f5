/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP/1 request head: Host, absolute-form, hostile heads, partial input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

static enum parse req(const char *s, struct http_req *r, enum http_err *why)
{
	return http_request(cur_make(s, strlen(s)), r, why);
}

static void ok(const char *s, const char *host, uint16_t port)
{
	struct http_req r;
	enum http_err why = HTTP_ERR_COUNT_;
	enum parse p = req(s, &r, &why);
	if (p != PARSE_OK)
		fail_msg("%s -> %d %s", s, p, http_err_name(why));
	assert_int_equal(why, HTTP_OK);
	assert_string_equal(r.host, host);
	assert_int_equal(r.host_port, port);
	assert_int_equal(r.head_len, strlen(s));
}

static void bad(const char *s, enum http_err want)
{
	struct http_req r;
	enum http_err why = HTTP_OK;
	enum parse p = req(s, &r, &why);
	if (p != PARSE_BAD || why != want)
		fail_msg("%s -> %d %s, want %s", s, p, http_err_name(why), http_err_name(want));
}

static void simple(void **state)
{
	(void)state;
	struct http_req r;
	enum http_err why;
	const char *s =
	    "GET /index.html HTTP/1.1\r\nHost: WWW.Example.com\r\nUser-Agent: t\r\n\r\n";
	assert_int_equal(req(s, &r, &why), PARSE_OK);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.host, "www.example.com");
	assert_int_equal(r.host_port, 0);
	assert_false(r.absolute_form);
	assert_int_equal(r.head_len, strlen(s));

	ok("HEAD / HTTP/1.0\r\nhOsT:example.com:8080 \r\n\r\n", "example.com", 8080);
	ok("POST /x HTTP/1.1\r\nContent-Length: 0\r\nHost:\texample.com.\t\r\n\r\n", "example.com",
	   0);
	ok("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 0);

	/* body bytes after the head are not part of it */
	const char *b = "POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabc";
	assert_int_equal(req(b, &r, &why), PARSE_OK);
	assert_int_equal(r.head_len, strlen(b) - 3);
}

static void absolute_form(void **state)
{
	(void)state;
	struct http_req r;
	enum http_err why;
	assert_int_equal(
	    req("GET http://Example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", &r, &why),
	    PARSE_OK);
	assert_true(r.absolute_form);
	ok("GET http://example.com:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 0);
	ok("GET http://example.com HTTP/1.1\r\nHost: example.com:80\r\n\r\n", "example.com", 80);
	ok("GET https://example.com/ HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "example.com",
	   443);
	bad("GET http://evil.example/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_HOST_MISMATCH);
	bad("GET http://example.com:8080/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
	    HTTP_HOST_MISMATCH);
	bad("GET http://example.com/ HTTP/1.1\r\nHost: example.com:81\r\n\r\n", HTTP_HOST_MISMATCH);
	bad("GET http://192.0.2.1/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_HOST_MISMATCH);
	bad("GET http://example.com@evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
	    HTTP_BAD_REQUEST_LINE);
	bad("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_BAD_REQUEST_LINE);
	bad("GET example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_BAD_REQUEST_LINE);
}

static void hosts(void **state)
{
	(void)state;
	struct http_req r;
	enum http_err why;
	bad("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", HTTP_DUP_HOST);
	bad("GET / HTTP/1.1\r\nHost: a.example\r\nhost: a.example\r\n\r\n", HTTP_DUP_HOST);
	bad("GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", HTTP_NO_HOST);
	bad("GET / HTTP/1.1\r\nX-Host: a.example\r\n\r\n", HTTP_NO_HOST);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n", &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_BAD_HOST);
	assert_int_equal(r.host_err, NAME_IP_LITERAL);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", &r, &why),
	                 PARSE_BAD);
	assert_int_equal(why, HTTP_BAD_HOST);
	assert_int_equal(r.host_err, NAME_IP_LITERAL);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: \r\n\r\n", &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_BAD_HOST);
	assert_int_equal(r.host_err, NAME_EMPTY);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a b.example\r\n\r\n", &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_BAD_HOST);
	assert_int_equal(r.host_err, NAME_BAD_CHAR);
	bad("GET / HTTP/1.1\r\nHost: a.example:\r\n\r\n", HTTP_BAD_HOST);
	bad("GET / HTTP/1.1\r\nHost: a.example:0\r\n\r\n", HTTP_BAD_HOST);
	bad("GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n", HTTP_BAD_HOST);
	bad("GET / HTTP/1.1\r\nHost: a.example:80a\r\n\r\n", HTTP_BAD_HOST);
	bad("GET / HTTP/1.1\r\nHost: a.example:123456\r\n\r\n", HTTP_BAD_HOST);
	ok("GET / HTTP/1.1\r\nHost: a.example:65535\r\n\r\n", "a.example", 65535);
}

static void refused_by_name(void **state)
{
	(void)state;
	struct http_req r;
	enum http_err why;
	bad("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", HTTP_CONNECT);
	/* CONNECT is known as soon as the request line is complete */
	assert_int_equal(req("CONNECT example.com:443 HTTP/1.1\r\n", &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_CONNECT);
	bad("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP_H2_PREFACE);
	bad("GET / HTTP/2.0\r\nHost: a.example\r\n\r\n", HTTP_BAD_VERSION);
	bad("GET / HTTP/1.2\r\nHost: a.example\r\n\r\n", HTTP_BAD_VERSION);
	bad("GET / http/1.1\r\nHost: a.example\r\n\r\n", HTTP_BAD_VERSION);
	bad("SSH-2.0-OpenSSH_9.2\r\n", HTTP_NOT_HTTP);
	bad("\x16\x03\x01", HTTP_NOT_HTTP);
	bad("GET  / HTTP/1.1\r\nHost: a.example\r\n\r\n", HTTP_BAD_REQUEST_LINE);
	bad("GET /\r\nHost: a.example\r\n\r\n", HTTP_BAD_REQUEST_LINE);
	bad("GET / HTTP/1.1\nHost: a.example\n\n", HTTP_BAD_REQUEST_LINE);
	bad("GET /a\x01 HTTP/1.1\r\nHost: a.example\r\n\r\n", HTTP_BAD_REQUEST_LINE);
}

static void headers_bad(void **state)
{
	(void)state;
	bad("GET / HTTP/1.1\r\nHost: a.example\r\nNoColon\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\nHost : a.example\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\nX: y\r\n folded\r\nHost: a.example\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\nX: a\x01z\r\nHost: a.example\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\nHost: a.example\nX: y\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\nHost: a.example\rX: y\r\n\r\n", HTTP_BAD_HEADER);
	bad("GET / HTTP/1.1\r\n: empty\r\nHost: a.example\r\n\r\n", HTTP_BAD_HEADER);
	/* NUL in the Host value: a control byte, refused before name checks */
	struct http_req r;
	enum http_err why;
	const char nul[] = "GET / HTTP/1.1\r\nHost: a.example\0.evil\r\n\r\n";
	assert_int_equal(http_request(cur_make(nul, sizeof nul - 1), &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_BAD_HEADER);
}

static void partial(void **state)
{
	(void)state;
	const char *s = "GET /path HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
	size_t n = strlen(s);
	struct http_req r;
	enum http_err why;
	for (size_t i = 0; i < n; i++) {
		enum parse p = http_request(cur_make(s, i), &r, &why);
		if (p != PARSE_MORE)
			fail_msg("prefix %zu: %d %s", i, p, http_err_name(why));
	}
	assert_int_equal(http_request(cur_make(s, n), &r, &why), PARSE_OK);
	assert_string_equal(r.host, "example.com");
	/* a bad header is BAD before the head is complete */
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nX", &r, &why),
	                 PARSE_BAD);
	assert_int_equal(why, HTTP_DUP_HOST);
}

static void too_large(void **state)
{
	(void)state;
	size_t n = HTTP_HEAD_MAX + 100;
	char *s = malloc(n + 1);
	assert_non_null(s);
	strcpy(s, "GET / HTTP/1.1\r\nHost: a.example\r\nX: ");
	size_t l = strlen(s);
	memset(s + l, 'a', n - l);
	s[n] = '\0';
	struct http_req r;
	enum http_err why;
	assert_int_equal(req(s, &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_TOO_LARGE);
	/* exactly at the limit without an end: too large too */
	assert_int_equal(http_request(cur_make(s, HTTP_HEAD_MAX), &r, &why), PARSE_BAD);
	assert_int_equal(why, HTTP_TOO_LARGE);
	/* one less: still MORE */
	assert_int_equal(http_request(cur_make(s, HTTP_HEAD_MAX - 1), &r, &why), PARSE_MORE);
	/* a head that ends inside the limit with a long body after it is fine */
	strcpy(s, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
	memset(s + strlen(s), 'b', 100);
	assert_int_equal(http_request(cur_make(s, n), &r, &why), PARSE_OK);
	free(s);
}

static void looks_like(void **state)
{
	(void)state;
	const char *yes[] = {"GET ",           "G",       "GE",  "GET", "POST /",
	                     "PRI * HTTP/2.0", "DELETE ", "PATC"};
	const char *no[] = {"GETX", "get ", "\x16\x03", "SSH-2.0", "X", "GET/", "HELO "};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!http_looks_like(cur_make(yes[i], strlen(yes[i]))))
			fail_msg("%s", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (http_looks_like(cur_make(no[i], strlen(no[i]))))
			fail_msg("%s", no[i]);
	assert_false(http_looks_like(cur_make("", 0)));
}

static void names(void **state)
{
	(void)state;
	for (int e = 0; e < HTTP_ERR_COUNT_; e++)
		assert_string_not_equal(http_err_name((enum http_err)e), "unknown");
	assert_string_equal(http_err_name(HTTP_HOST_MISMATCH), "host_mismatch");
}

/*
 * Feed s to a stream parser `step` bytes at a time, keeping an incomplete
 * head as the engine would, and join the Hosts seen with ','. Returns the
 * number of heads, or -1 with *why set on a refusal.
 */
static int stream(const char *s, size_t step, char *hosts, size_t hosts_len, enum http_err *why)
{
	struct http_stream st = {0};
	struct http_req r;
	char buf[4096];
	size_t have = 0, pos = 0, len = strlen(s);
	int n = 0;

	hosts[0] = '\0';
	*why = HTTP_OK;
	while (pos < len || have > 0) {
		size_t take = len - pos < step ? len - pos : step;
		assert_true(have + take <= sizeof buf);
		memcpy(buf + have, s + pos, take);
		have += take;
		pos += take;
		size_t off = 0;
		for (;;) {
			size_t used;
			enum parse p = http_stream_next(&st, cur_make(buf + off, have - off), &r, &used,
			                                why);
			if (p == PARSE_BAD)
				return -1;
			off += used;
			if (p == PARSE_MORE)
				break;
			n++;
			if (hosts[0])
				strncat(hosts, ",", hosts_len - strlen(hosts) - 1);
			strncat(hosts, r.host, hosts_len - strlen(hosts) - 1);
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (take == 0)
			break;
	}
	assert_int_equal(st.requests, (uint32_t)n);
	return n;
}

static void stream_ok(const char *s, int want_n, const char *want_hosts)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 4096};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		char hosts[512];
		enum http_err why;
		int n = stream(s, steps[i], hosts, sizeof hosts, &why);
		if (n != want_n || strcmp(hosts, want_hosts) != 0)
			fail_msg("step %zu: %d heads (%s) [%s], want %d (%s)", steps[i], n, hosts,
			         http_err_name(why), want_n, want_hosts);
	}
}

static void stream_bad(const char *s, enum http_err want)
{
	static const size_t steps[] = {1, 5, 4096};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		char hosts[512];
		enum http_err why;
		int n = stream(s, steps[i], hosts, sizeof hosts, &why);
		if (n != -1 || why != want)
			fail_msg("step %zu: %d [%s], want %s", steps[i], n, http_err_name(why),
			         http_err_name(want));
	}
}

#define GET(h) "GET / HTTP/1.1\r\nHost: " h "\r\n\r\n"

static void stream_keepalive(void **state)
{
	(void)state;
	stream_ok(GET("a.example") GET("b.example"), 2, "a.example,b.example");
	stream_ok(GET("a.example") GET("a.example") GET("c.example"), 3,
	          "a.example,a.example,c.example");
	/* A body that looks like a head is body, not a request. */
	stream_ok("POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 35\r\n\r\n"
	          GET("b.example") GET("c.example"), 2, "a.example,c.example");
	stream_ok("POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n" GET("b.example"),
	          2, "a.example,b.example");
	/* Chunked: sizes, extensions, trailers. */
	stream_ok("POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
	          "5\r\nhello\r\n1A;ext=1\r\n" "abcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n" GET("b.example"),
	          2, "a.example,b.example");
	stream_ok("POST / HTTP/1.1\r\nHost: a.example\r\ntransfer-encoding: Chunked\r\n\r\n"
	          "3\r\n" "GET\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n" GET("b.example"),
	          2, "a.example,b.example");
	/* A head not complete yet: nothing is decided. */
	stream_ok(GET("a.example") "GET / HTTP/1.1\r\nHost: b.exa", 1, "a.example");
}

static void stream_smuggling(void **state)
{
	(void)state;
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	           HTTP_CL_AND_TE);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	           HTTP_BAD_LENGTH);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HTTP_BAD_LENGTH);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", HTTP_BAD_LENGTH);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HTTP_BAD_LENGTH);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	           HTTP_BAD_LENGTH);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	           HTTP_BAD_TE);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	           "Transfer-Encoding: chunked\r\n\r\n", HTTP_BAD_TE);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", HTTP_BAD_CHUNK);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", HTTP_BAD_CHUNK);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "fffffffffff\r\n", HTTP_BAD_CHUNK);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "2\r\nabX\r\n", HTTP_BAD_CHUNK);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "0\r\n folded\r\n\r\n", HTTP_BAD_CHUNK);
	stream_bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	           "1\nx\r\n", HTTP_BAD_CHUNK);
	stream_bad("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", HTTP_UPGRADE);
	stream_bad(GET("a") "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", HTTP_BAD_HEADER);
	stream_bad(GET("a") "CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", HTTP_CONNECT);
	stream_bad(GET("a") "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_DUP_HOST);
	stream_bad(GET("a") "garbage after the first request\r\n\r\n", HTTP_NOT_HTTP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(simple),      cmocka_unit_test(absolute_form),
	    cmocka_unit_test(hosts),       cmocka_unit_test(refused_by_name),
	    cmocka_unit_test(headers_bad), cmocka_unit_test(partial),
	    cmocka_unit_test(too_large),   cmocka_unit_test(looks_like),
	    cmocka_unit_test(names),       cmocka_unit_test(stream_keepalive),
	    cmocka_unit_test(stream_smuggling),
	};
	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
