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
	HTTP_BAD_LENGTH,     /* Content-Length not digits, too large, or given twice */
	HTTP_CL_AND_TE,      /* both Content-Length and Transfer-Encoding: smuggling */
	HTTP_BAD_TE,         /* Transfer-Encoding other than exactly "chunked" */
	HTTP_BAD_CHUNK,      /* chunk-size line or chunk framing malformed */
	HTTP_UPGRADE,        /* Upgrade header: the stream would stop being HTTP/1 */
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

/*
 * The client's request stream on one connection, request after request
 * (keep-alive, pipelining): head, then its body framed by Content-Length or
 * chunked encoding (RFC 9112 6, 7.1), then the next head. Anything whose
 * framing two readers could disagree on is refused (both CL and TE, CL twice,
 * TE other than "chunked", bad chunk sizes, obs-fold), and so is Upgrade.
 */
enum http_stream_state {
	HTTP_ST_HEAD = 0,    /* at the start of a request head */
	HTTP_ST_LENGTH,      /* inside a Content-Length body */
	HTTP_ST_CHUNK_SIZE,  /* reading a chunk-size line */
	HTTP_ST_CHUNK_EXT,   /* chunk extension up to CR */
	HTTP_ST_CHUNK_SIZE_LF,
	HTTP_ST_CHUNK_DATA,
	HTTP_ST_CHUNK_DATA_CR,
	HTTP_ST_CHUNK_DATA_LF,
	HTTP_ST_TRAILER,     /* at the start of a trailer line (or the final CRLF) */
	HTTP_ST_TRAILER_LINE,
	HTTP_ST_TRAILER_LINE_LF,
	HTTP_ST_TRAILER_LF,  /* final CR seen */
};

struct http_stream {
	enum http_stream_state st;
	uint64_t left;       /* body or chunk bytes still to come */
	unsigned digits;     /* hex digits of the current chunk size */
	uint32_t requests;   /* heads parsed so far */
};

#define HTTP_BODY_MAX ((uint64_t)1 << 40)

/*
 * Advance over in. *used = bytes consumed (always all of in unless a head
 * is complete or incomplete). PARSE_OK: a whole request head, the last
 * req->head_len of the *used bytes, is in *req; its body follows. PARSE_MORE: in
 * was body bytes (all consumed) or the start of a head that is not complete
 * yet (*used = 0: the caller keeps those bytes and calls again with more).
 * PARSE_BAD: *why says what was refused.
 */
enum parse http_stream_next(struct http_stream *s, struct cur in, struct http_req *req,
                            size_t *used, enum http_err *why);

#endif
