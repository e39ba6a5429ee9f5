/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_HTTP_H
#define EGRESSD_HTTP_H
/*
 * HTTP/1.x request head: request line and headers up to the empty line.
 * request-line = method SP request-target SP HTTP-version CRLF  (RFC 9112 3)
 * The Host header and an absolute-form target must agree; exactly one Host.
 */
#include "cur.h"
#include "name.h"

enum http_err {
	HTTP_OK = 0,
	HTTP_NOT_HTTP,       /* does not start with a method token */
	HTTP_H2_PREFACE,     /* "PRI * HTTP/2.0" prior-knowledge preface */
	HTTP_BAD_REQUEST_LINE,
	HTTP_BAD_VERSION,
	HTTP_BAD_HEADER,     /* header line without ':' or with bad bytes, obs-fold */
	HTTP_NO_HOST,
	HTTP_DUP_HOST,
	HTTP_BAD_HOST,       /* host is not a hostname (see host_err) or bad port */
	HTTP_HOST_MISMATCH,  /* absolute-form target's authority differs from Host */
	HTTP_CONNECT,        /* CONNECT method (proxy request) */
	HTTP_TOO_LARGE,      /* head larger than HTTP_HEAD_MAX */
	HTTP_ERR_COUNT_,
};
const char *http_err_name(enum http_err e);

#define HTTP_HEAD_MAX 16384

struct http_req {
	char method[16];
	char host[NAME_MAX_LEN + 1]; /* normalised; an IP literal is refused with NAME_IP_LITERAL */
	enum name_err host_err;
	uint16_t host_port;          /* port in Host, 0 if none */
	bool absolute_form;
	size_t head_len;             /* bytes up to and including the empty line */
};

/* Could these first bytes be an HTTP/1 request (method token then SP)? */
bool http_looks_like(struct cur in);

enum parse http_request(struct cur in, struct http_req *out, enum http_err *why);

#endif
