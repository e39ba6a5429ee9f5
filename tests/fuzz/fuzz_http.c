/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * http_request on the first bytes of a stream. Invariants: head_len <= size
 * and the head ends in CRLF CRLF; the host is normalised; a prefix of an
 * accepted head is never accepted; anything accepted looked like HTTP.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
