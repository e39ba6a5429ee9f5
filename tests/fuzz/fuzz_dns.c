/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DNS: the input as a query, as an answer, and as a TCP stream.
 * Invariants: question_end <= size; qname normalised; a reply we build
 * parses back as an answer with our rcode and no addresses; answers never
 * report more addresses than the room given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "indicators.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	enum dns_err why = DNS_ERR_COUNT_;
	struct dns_addr addrs[8];
	size_t n = 99;
	uint8_t rcode;
	static uint8_t reply[DNS_MSG_MAX];

	enum parse r = dns_query_parse(cur_make(data, size), &q, &why);
	if (why >= DNS_ERR_COUNT_ || r == PARSE_MORE || (r == PARSE_OK) != (why == DNS_OK))
		abort();
	if (strlen(q.raw_qname) >= sizeof q.raw_qname)
		abort();
	if (r == PARSE_OK || why == DNS_NAME_REFUSED) {
		if (q.question_end > size || q.question_end < 12 + 1 + 4)
			abort();
		if (r == PARSE_OK) {
			char again[NAME_MAX_LEN + 1];
			enum name_err e;
			if (!name_normalize(q.qname, strlen(q.qname), again, &e) ||
			    strcmp(again, q.qname) != 0)
				abort();
			/* the look-alike check decodes Punycode labels of names like this */
			char skel[NAME_MAX_LEN + 1];
			if (ind_confusable_skeleton(q.qname, skel, sizeof skel) &&
			    strlen(skel) >= sizeof skel)
				abort();
		}
		size_t len =
		    dns_build_reply(data, size, &q, DNS_RCODE_REFUSED, reply, sizeof reply);
		if (len > sizeof reply)
			abort();
		if (len) {
			enum dns_err w2;
			if (dns_answer_addrs(cur_make(reply, len), q.qname, true, addrs, 8, &n,
			                     &rcode, &w2) != PARSE_OK ||
			    n != 0 || rcode != DNS_RCODE_REFUSED)
				abort();
		}
	}

	/* ech stripping: never longer; unchanged input copied byte for byte; idempotent. */
	static uint8_t s1[DNS_MSG_MAX], s2[DNS_MSG_MAX];
	bool ch1 = true, ch2 = true;
	size_t l1 = dns_strip_ech(data, size, s1, sizeof s1, &ch1);
	if (l1 > size || (l1 == 0 && ch1))
		abort();
	if (l1 && !ch1 && (l1 != size || memcmp(s1, data, size) != 0))
		abort();
	if (l1) {
		size_t l2 = dns_strip_ech(s1, l1, s2, sizeof s2, &ch2);
		if (l2 != l1 || ch2 || memcmp(s1, s2, l1) != 0)
			abort();
	}

	const char *qname = r == PARSE_OK ? q.qname : "example.com";
	r = dns_answer_addrs(cur_make(data, size), qname, true, addrs, 8, &n, &rcode, &why);
	if (why >= DNS_ERR_COUNT_ || n > 8 || (r == PARSE_BAD && n != 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if (addrs[i].addr.family != ADDR_V4 && addrs[i].addr.family != ADDR_V6)
			abort();

	struct cur stream = cur_make(data, size), msg;
	for (unsigned i = 0; i < 1000 && dns_tcp_next(&stream, &msg) == PARSE_OK; i++)
		if (msg.left < 12 || msg.p < data || msg.p + msg.left > data + size)
			abort();
	return 0;
}
