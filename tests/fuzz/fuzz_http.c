/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http_request on the first bytes of a stream. Invariants: head_len <= size
 * and the head ends in CRLF CRLF; the host is normalised; a prefix of an
 * accepted head is never accepted; anything accepted looked like HTTP.
 * The request stream (keep-alive, pipelining) frames the same heads whether
 * the bytes come at once or in two pieces, and never consumes more than given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Heads found feeding data in pieces of at most step bytes; -1 - count on a refusal. */
static int fuzz_stream(const uint8_t *data, size_t size, size_t step, uint32_t *hash)
{
	static uint8_t buf[2 * HTTP_HEAD_MAX + 65536];
	struct http_stream st = {0};
	struct http_req r;
	size_t have = 0, pos = 0;
	int n = 0;

	*hash = 0;
	while (pos < size) {
		size_t take = size - pos < step ? size - pos : step;
		if (have + take > sizeof buf)
			return n; /* the engine's hold limit: not an invariant question */
		memcpy(buf + have, data + pos, take);
		have += take;
		pos += take;
		size_t off = 0;
		for (;;) {
			size_t used;
			enum http_err why = HTTP_ERR_COUNT_;
			enum parse p = http_stream_next(&st, cur_make(buf + off, have - off), &r,
			                                &used, &why);
			if (used > have - off || why >= HTTP_ERR_COUNT_)
				abort();
			if (p == PARSE_BAD)
				return -1 - n;
			off += used;
			if (p == PARSE_MORE)
				break;
			if (r.head_len == 0 || used < r.head_len)
				abort();
			n++;
			for (const char *h = r.host; *h; h++)
				*hash = *hash * 31u + (uint8_t)*h;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size <= 65536) {
		uint32_t h1, h2;
		int whole = fuzz_stream(data, size, size ? size : 1, &h1);
		int split = fuzz_stream(data, size, size / 2 + 1, &h2);
		if (whole != split || h1 != h2)
			abort();
	}

	struct http_req r, r2;
	enum http_err why = HTTP_ERR_COUNT_, why2;
	enum parse p = http_request(cur_make(data, size), &r, &why);
	bool looks = http_looks_like(cur_make(data, size));

	if (why >= HTTP_ERR_COUNT_ || (p == PARSE_BAD) != (why != HTTP_OK))
		abort();
	if (p != PARSE_OK)
		return 0;
	if (!looks || r.head_len > size || r.head_len < 4 ||
	    memcmp(data + r.head_len - 4, "\r\n\r\n", 4) != 0)
		abort();
	char again[NAME_MAX_LEN + 1];
	enum name_err e;
	if (!name_normalize(r.host, strlen(r.host), again, &e) || strcmp(again, r.host) != 0)
		abort();
	if (http_request(cur_make(data, r.head_len - 1), &r2, &why2) == PARSE_OK)
		abort();
	if (http_request(cur_make(data, r.head_len), &r2, &why2) != PARSE_OK ||
	    strcmp(r.host, r2.host) != 0 || r.host_port != r2.host_port)
		abort();
	return 0;
}
