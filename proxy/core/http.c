/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "http.h"

#include <string.h>

const char *http_err_name(enum http_err e)
{
	static const char *const names[HTTP_ERR_COUNT_] = {
	    [HTTP_OK] = "ok",
	    [HTTP_NOT_HTTP] = "not_http",
	    [HTTP_H2_PREFACE] = "h2_preface",
	    [HTTP_BAD_REQUEST_LINE] = "bad_request_line",
	    [HTTP_BAD_VERSION] = "bad_version",
	    [HTTP_BAD_HEADER] = "bad_header",
	    [HTTP_NO_HOST] = "no_host",
	    [HTTP_DUP_HOST] = "dup_host",
	    [HTTP_BAD_HOST] = "bad_host",
	    [HTTP_HOST_MISMATCH] = "host_mismatch",
	    [HTTP_CONNECT] = "connect",
	    [HTTP_TOO_LARGE] = "too_large",
	    [HTTP_BAD_LENGTH] = "bad_content_length",
	    [HTTP_CL_AND_TE] = "cl_and_te",
	    [HTTP_BAD_TE] = "bad_transfer_encoding",
	    [HTTP_BAD_CHUNK] = "bad_chunk",
	    [HTTP_UPGRADE] = "upgrade",
	};
	if ((unsigned)e >= HTTP_ERR_COUNT_)
		return "unknown";
	return names[e];
}

static const char *const http_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI",
};

/* Does c start with the NUL-terminated lit (compared byte for byte)? */
static bool http_starts(struct cur c, const char *lit, bool nocase)
{
	uint8_t ch;
	for (; *lit; lit++) {
		if (!cur_u8(&c, &ch))
			return false;
		if (nocase && ch >= 'A' && ch <= 'Z')
			ch = (uint8_t)(ch - 'A' + 'a');
		if (ch != (uint8_t)*lit)
			return false;
	}
	return true;
}

static bool http_cur_eq(struct cur c, const char *lit, bool nocase)
{
	return c.left == strlen(lit) && http_starts(c, lit, nocase);
}

/*
 * A known method then SP; while fewer bytes than that have arrived, a
 * prefix of one ("GE" may still become "GET ").
 */
bool http_looks_like(struct cur in)
{
	if (in.left == 0)
		return false;
	for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
		const char *m = http_methods[i];
		size_t ml = strlen(m);
		struct cur c = in;
		uint8_t ch;
		bool ok = true;
		for (size_t k = 0; k <= ml && ok; k++) {
			if (!cur_u8(&c, &ch))
				return true; /* a prefix so far */
			ok = ch == (k < ml ? (uint8_t)m[k] : ' ');
		}
		if (ok)
			return true;
	}
	return false;
}

/* tchar (RFC 9110 5.6.2) */
static bool http_tchar(uint8_t ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/*
 * One line ending in CRLF: *line is it without the CRLF.
 * 1: got one; 0: no CRLF yet; -1: a bare CR or LF (refused: the other end
 * might split lines differently from us).
 */
static int http_line(struct cur *c, struct cur *line)
{
	struct cur s = *c;
	uint8_t ch, lf;
	size_t n = 0;

	while (cur_u8(&s, &ch)) {
		if (ch == '\n')
			return -1;
		if (ch == '\r') {
			if (!cur_u8(&s, &lf))
				return 0;
			if (lf != '\n')
				return -1;
			cur_sub(c, n, line);
			cur_skip(c, 2);
			return 1;
		}
		n++;
	}
	return 0;
}

/* Split at the first byte equal to sep: *head before it, c after it. */
static bool http_split(struct cur *c, uint8_t sep, struct cur *head)
{
	struct cur s = *c;
	uint8_t ch;
	size_t n = 0;
	while (cur_u8(&s, &ch)) {
		if (ch == sep) {
			cur_sub(c, n, head);
			cur_skip(c, 1);
			return true;
		}
		n++;
	}
	return false;
}

/*
 * authority = host [ ":" port ]   host = reg-name | IPv4 | "[" IPv6 "]"
 * The name goes through name_normalize(); literals are refused with
 * NAME_IP_LITERAL. port: 1..65535, decimal; "host:" is refused.
 */
static enum http_err http_authority(struct cur a, char *host, enum name_err *herr, uint16_t *port)
{
	struct cur name = a;
	uint8_t ch;

	*port = 0;
	if (cur_peek_u8(&a, 0, &ch) && ch == '[') {
		host[0] = '\0';
		*herr = NAME_IP_LITERAL;
		return HTTP_BAD_HOST;
	}
	struct cur rest = a;
	if (http_split(&rest, ':', &name)) {
		uint32_t v = 0;
		if (rest.left == 0 || rest.left > 5)
			goto bad_port;
		while (cur_u8(&rest, &ch)) {
			if (ch < '0' || ch > '9')
				goto bad_port;
			v = v * 10 + (uint32_t)(ch - '0');
		}
		if (v == 0 || v > 65535)
			goto bad_port;
		*port = (uint16_t)v;
	}
	if (!name_normalize((const char *)name.p, name.left, host, herr))
		return HTTP_BAD_HOST;
	return HTTP_OK;
bad_port:
	host[0] = '\0';
	*herr = NAME_OK;
	return HTTP_BAD_HOST;
}

/*
 * request-line = method SP request-target SP HTTP-version   (RFC 9112 3)
 * Targets: origin-form "/...", asterisk "*", absolute-form "http://auth/..."
 * (whose authority must agree with Host), authority-form only with CONNECT,
 * which is refused by name anyway.
 */
static enum http_err http_request_line(struct cur line, struct http_req *out, struct cur *abs_auth,
                                       bool *abs_https)
{
	struct cur method, target, version;
	uint8_t ch;

	if (http_cur_eq(line, "PRI * HTTP/2.0", false))
		return HTTP_H2_PREFACE;
	if (!http_split(&line, ' ', &method) || method.left == 0)
		return HTTP_BAD_REQUEST_LINE;
	if (method.left >= sizeof out->method)
		return HTTP_BAD_REQUEST_LINE;
	struct cur m = method;
	while (cur_u8(&m, &ch))
		if (!http_tchar(ch))
			return HTTP_BAD_REQUEST_LINE;
	memcpy(out->method, method.p, method.left);
	out->method[method.left] = '\0';
	if (http_cur_eq(method, "CONNECT", false))
		return HTTP_CONNECT;

	if (!http_split(&line, ' ', &target) || target.left == 0)
		return HTTP_BAD_REQUEST_LINE;
	version = line;
	struct cur t = target;
	while (cur_u8(&t, &ch))
		if (ch <= 0x20 || ch >= 0x7f)
			return HTTP_BAD_REQUEST_LINE;
	if (!http_cur_eq(version, "HTTP/1.1", false) && !http_cur_eq(version, "HTTP/1.0", false))
		return HTTP_BAD_VERSION;

	cur_peek_u8(&target, 0, &ch);
	if (ch == '/')
		return HTTP_OK;
	if (http_cur_eq(target, "*", false))
		return http_cur_eq(method, "OPTIONS", false) ? HTTP_OK : HTTP_BAD_REQUEST_LINE;

	size_t skip;
	if (http_starts(target, "http://", true)) {
		skip = 7;
		*abs_https = false;
	} else if (http_starts(target, "https://", true)) {
		skip = 8;
		*abs_https = true;
	} else {
		return HTTP_BAD_REQUEST_LINE;
	}
	cur_skip(&target, skip);
	size_t n = 0;
	struct cur s = target;
	while (cur_u8(&s, &ch) && ch != '/' && ch != '?' && ch != '#') {
		if (ch == '@') /* userinfo: deprecated, and a classic way to confuse readers */
			return HTTP_BAD_REQUEST_LINE;
		n++;
	}
	cur_sub(&target, n, abs_auth);
	out->absolute_form = true;
	return HTTP_OK;
}

/*
 * field-line = field-name ":" OWS field-value OWS   (RFC 9112 5)
 * No whitespace before the colon, no obs-fold, no control bytes but HTAB.
 */
static enum http_err http_header(struct cur line, struct cur *name, struct cur *value)
{
	uint8_t ch;

	if (!http_split(&line, ':', name) || name->left == 0)
		return HTTP_BAD_HEADER;
	struct cur n = *name;
	while (cur_u8(&n, &ch))
		if (!http_tchar(ch))
			return HTTP_BAD_HEADER;
	while (cur_peek_u8(&line, 0, &ch) && (ch == ' ' || ch == '\t'))
		cur_skip(&line, 1);
	size_t end = line.left;
	struct cur v = line;
	for (size_t i = 0; cur_u8(&v, &ch); i++) {
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return HTTP_BAD_HEADER;
		if (ch != ' ' && ch != '\t')
			end = i + 1;
	}
	cur_sub(&line, line.left < end ? line.left : end, value);
	return HTTP_OK;
}

enum parse http_request(struct cur in, struct http_req *out, enum http_err *why)
{
	struct cur c = in, line, abs_auth = {0};
	enum http_err err = HTTP_OK;
	bool abs_https = false, have_host = false;
	int r;

	memset(out, 0, sizeof *out);
	if (in.left == 0)
		goto more;
	if (!http_looks_like(in)) {
		err = HTTP_NOT_HTTP;
		goto bad;
	}
	if (c.left > HTTP_HEAD_MAX)
		c.left = HTTP_HEAD_MAX;

	r = http_line(&c, &line);
	if (r == 0)
		goto more;
	if (r < 0) {
		err = HTTP_BAD_REQUEST_LINE;
		goto bad;
	}
	err = http_request_line(line, out, &abs_auth, &abs_https);
	if (err != HTTP_OK)
		goto bad;

	for (;;) {
		struct cur name, value;
		uint8_t ch;

		r = http_line(&c, &line);
		if (r == 0)
			goto more;
		if (r < 0) {
			err = HTTP_BAD_HEADER;
			goto bad;
		}
		if (line.left == 0)
			break;
		if (cur_peek_u8(&line, 0, &ch) && (ch == ' ' || ch == '\t')) {
			err = HTTP_BAD_HEADER; /* obs-fold */
			goto bad;
		}
		err = http_header(line, &name, &value);
		if (err != HTTP_OK)
			goto bad;
		if (!http_cur_eq(name, "host", true))
			continue;
		if (have_host) {
			err = HTTP_DUP_HOST;
			goto bad;
		}
		have_host = true;
		err = http_authority(value, out->host, &out->host_err, &out->host_port);
		if (err != HTTP_OK)
			goto bad;
	}
	out->head_len = (size_t)(c.p - in.p);

	if (!have_host) {
		err = HTTP_NO_HOST;
		goto bad;
	}
	if (out->absolute_form) {
		char ahost[NAME_MAX_LEN + 1];
		enum name_err aerr;
		uint16_t aport;
		if (http_authority(abs_auth, ahost, &aerr, &aport) != HTTP_OK) {
			err = HTTP_HOST_MISMATCH;
			goto bad;
		}
		uint16_t dflt = abs_https ? 443 : 80;
		uint16_t p1 = aport ? aport : dflt, p2 = out->host_port ? out->host_port : dflt;
		if (strcmp(ahost, out->host) != 0 || p1 != p2) {
			err = HTTP_HOST_MISMATCH;
			goto bad;
		}
	}
	if (why)
		*why = HTTP_OK;
	return PARSE_OK;
more:
	if (in.left >= HTTP_HEAD_MAX) {
		err = HTTP_TOO_LARGE;
		goto bad;
	}
	if (why)
		*why = HTTP_OK;
	return PARSE_MORE;
bad:
	if (err != HTTP_BAD_HOST) {
		out->host[0] = '\0';
	}
	if (why)
		*why = err;
	return PARSE_BAD;
}

/*
 * Body framing of a parsed head (RFC 9112 6.3): Content-Length, or
 * Transfer-Encoding: chunked, or none. What two parsers could frame
 * differently is refused rather than guessed.
 */
static enum http_err http_framing(struct cur head, struct http_stream *s)
{
	struct cur line, name, value;
	bool have_cl = false, have_te = false;
	uint64_t cl = 0;
	uint8_t ch;

	if (http_line(&head, &line) != 1) /* request line */
		return HTTP_BAD_REQUEST_LINE;
	/* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing */
	bool v10 = line.left >= 8 && memcmp(line.p + line.left - 8, "HTTP/1.0", 8) == 0;
	while (http_line(&head, &line) == 1 && line.left > 0) {
		if (http_header(line, &name, &value) != HTTP_OK)
			return HTTP_BAD_HEADER;
		if (http_cur_eq(name, "content-length", true)) {
			if (have_cl || value.left == 0)
				return HTTP_BAD_LENGTH;
			have_cl = true;
			while (cur_u8(&value, &ch)) {
				if (ch < '0' || ch > '9' || cl > HTTP_BODY_MAX / 10)
					return HTTP_BAD_LENGTH;
				cl = cl * 10 + (uint64_t)(ch - '0');
			}
			if (cl > HTTP_BODY_MAX)
				return HTTP_BAD_LENGTH;
		} else if (http_cur_eq(name, "transfer-encoding", true)) {
			if (have_te || v10 || !http_cur_eq(value, "chunked", true))
				return HTTP_BAD_TE;
			have_te = true;
		} else if (http_cur_eq(name, "upgrade", true)) {
			return HTTP_UPGRADE;
		}
	}
	if (have_cl && have_te)
		return HTTP_CL_AND_TE;
	s->digits = 0;
	s->left = 0;
	if (have_te)
		s->st = HTTP_ST_CHUNK_SIZE;
	else if (have_cl && cl > 0) {
		s->st = HTTP_ST_LENGTH;
		s->left = cl;
	} else
		s->st = HTTP_ST_HEAD;
	return HTTP_OK;
}

static int http_hex(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF   (RFC 9112 7.1)
 * One byte at a time, except chunk data; returns false on a framing error.
 */
static bool http_chunk_step(struct http_stream *s, struct cur *c)
{
	uint8_t ch;
	int h;

	if (s->st == HTTP_ST_CHUNK_DATA) {
		size_t n = c->left < s->left ? c->left : (size_t)s->left;
		cur_skip(c, n);
		s->left -= n;
		if (s->left == 0)
			s->st = HTTP_ST_CHUNK_DATA_CR;
		return true;
	}
	if (!cur_u8(c, &ch))
		return true;
	switch (s->st) {
	case HTTP_ST_CHUNK_SIZE:
		h = http_hex(ch);
		if (h >= 0) {
			if (s->digits >= 10) /* 2^40: more than any body we follow */
				return false;
			s->left = s->left * 16 + (uint64_t)h;
			s->digits++;
			return true;
		}
		if (s->digits == 0)
			return false;
		if (ch == ';') {
			s->st = HTTP_ST_CHUNK_EXT;
			return true;
		}
		if (ch != '\r')
			return false;
		s->st = HTTP_ST_CHUNK_SIZE_LF;
		return true;
	case HTTP_ST_CHUNK_EXT:
		if (ch == '\r')
			s->st = HTTP_ST_CHUNK_SIZE_LF;
		else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
		return true;
	case HTTP_ST_CHUNK_SIZE_LF:
		if (ch != '\n')
			return false;
		s->digits = 0;
		s->st = s->left ? HTTP_ST_CHUNK_DATA : HTTP_ST_TRAILER;
		return true;
	case HTTP_ST_CHUNK_DATA_CR:
		s->st = HTTP_ST_CHUNK_DATA_LF;
		return ch == '\r';
	case HTTP_ST_CHUNK_DATA_LF:
		s->st = HTTP_ST_CHUNK_SIZE;
		return ch == '\n';
	case HTTP_ST_TRAILER:
		if (ch == '\r') {
			s->st = HTTP_ST_TRAILER_LF;
			return true;
		}
		if (ch == ' ' || ch == '\t' || ch == '\n') /* obs-fold or bare LF */
			return false;
		s->st = HTTP_ST_TRAILER_LINE;
		return true;
	case HTTP_ST_TRAILER_LINE:
		if (ch == '\r')
			s->st = HTTP_ST_TRAILER_LINE_LF;
		else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
		return true;
	case HTTP_ST_TRAILER_LINE_LF:
		s->st = HTTP_ST_TRAILER;
		return ch == '\n';
	case HTTP_ST_TRAILER_LF:
		if (ch != '\n')
			return false;
		s->st = HTTP_ST_HEAD;
		return true;
	default:
		return false;
	}
}

enum parse http_stream_next(struct http_stream *s, struct cur in, struct http_req *req,
                            size_t *used, enum http_err *why)
{
	struct cur c = in;
	enum http_err err = HTTP_OK;
	enum parse r;

	*used = 0;
	while (c.left > 0 && s->st != HTTP_ST_HEAD) {
		if (s->st == HTTP_ST_LENGTH) {
			size_t n = c.left < s->left ? c.left : (size_t)s->left;
			cur_skip(&c, n);
			s->left -= n;
			if (s->left == 0)
				s->st = HTTP_ST_HEAD;
		} else if (!http_chunk_step(s, &c)) {
			err = HTTP_BAD_CHUNK;
			goto bad;
		}
	}
	*used = (size_t)(c.p - in.p);
	if (s->st != HTTP_ST_HEAD || c.left == 0) {
		if (why)
			*why = HTTP_OK;
		return PARSE_MORE;
	}
	r = http_request(c, req, &err);
	if (r == PARSE_BAD)
		goto bad;
	if (r == PARSE_MORE) {
		if (why)
			*why = HTTP_OK;
		return PARSE_MORE;
	}
	err = http_framing(cur_make(c.p, req->head_len), s);
	if (err != HTTP_OK)
		goto bad;
	s->requests++;
	*used += req->head_len;
	if (why)
		*why = HTTP_OK;
	return PARSE_OK;
bad:
	if (why)
		*why = err;
	return PARSE_BAD;
}
