/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pkt_parse on arbitrary bytes; the payload and the TCP options must lie inside the
 * input; pkt_plain_headers answers OK or one of its own reasons. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt p;
	enum pkt_err why = PKT_ERR_COUNT_;
	enum parse r = pkt_parse(data, size, &p, &why);

	if (r != PARSE_OK && r != PARSE_BAD)
		abort(); /* a queued packet is whole: never MORE */
	if ((r == PARSE_OK) != (why == PKT_OK) || why >= PKT_ERR_COUNT_)
		abort();
	if (r != PARSE_OK)
		return 0;
	if (p.src.family != p.dst.family || (p.src.family != ADDR_V4 && p.src.family != ADDR_V6))
		abort();
	if (p.payload_len) {
		if (p.payload < data || p.payload_len > size ||
		    (size_t)(p.payload - data) > size - p.payload_len)
			abort();
		volatile uint8_t last = p.payload[p.payload_len - 1];
		(void)last;
	}
	/* The header check of bare packets walks the TCP options: inside the input too. */
	if (p.tcp_opt_len) {
		if (p.tcp_opt < data || p.tcp_opt_len > 40 || (size_t)(p.tcp_opt - data) > size ||
		    p.tcp_opt_len > size - (size_t)(p.tcp_opt - data))
			abort();
	}
	enum pkt_err plain = pkt_plain_headers(&p);
	if (plain != PKT_OK && (plain < PKT_IP_OPTIONS || plain >= PKT_ERR_COUNT_))
		abort();
	return 0;
}
