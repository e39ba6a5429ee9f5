/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tls_client_hello on a stream. Invariants: consumed <= size; an SNI is
 * normalised (normalising it again changes nothing); the stream cut at
 * `consumed` gives the same answer; every shorter prefix is never OK with
 * a different name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const struct tls_hello *h)
{
	char again[NAME_MAX_LEN + 1];
	enum name_err e;
	if (!h->has_sni) {
		if (h->sni[0])
			abort();
		return;
	}
	if (!name_normalize(h->sni, strlen(h->sni), again, &e) || strcmp(again, h->sni) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello h, h2;
	enum tls_err why = TLS_ERR_COUNT_, why2;
	enum parse r = tls_client_hello(cur_make(data, size), &h, &why);

	(void)tls_looks_like(cur_make(data, size));
	if (why >= TLS_ERR_COUNT_ || (r == PARSE_BAD) != (why != TLS_OK))
		abort();
	if (r == PARSE_OK) {
		if (h.consumed > size || h.consumed < 5 + 4 || h.records < 1 ||
		    h.hello_len > TLS_HELLO_MAX || h.max_version < h.legacy_version)
			abort();
		check_name(&h);
		if (tls_client_hello(cur_make(data, h.consumed), &h2, &why2) != PARSE_OK ||
		    strcmp(h.sni, h2.sni) != 0 || h2.consumed != h.consumed)
			abort();
		/* one byte less is never a complete hello */
		if (tls_client_hello(cur_make(data, h.consumed - 1), &h2, &why2) == PARSE_OK)
			abort();
	} else if (r == PARSE_BAD && why == TLS_SNI_BAD_NAME) {
		if (h.sni_err == NAME_OK)
			abort();
	}

	/* the same bytes as a bare handshake message (the QUIC path) */
	r = tls_handshake_message(cur_make(data, size), &h, &why);
	if (why >= TLS_ERR_COUNT_ || (r == PARSE_BAD) != (why != TLS_OK))
		abort();
	if (r == PARSE_OK) {
		if (h.hello_len > size)
			abort();
		check_name(&h);
	}
	return 0;
}
