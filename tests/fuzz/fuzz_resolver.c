/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The resolver's own message handling (issue 9, class 6): the question
 * name it randomises (0x20) and checks, and the TTL clamp of answers to
 * clients. Invariants: the name stays inside the message and inside 255
 * bytes; randomising changes letters' case only and the result is still
 * "the question" of the randomised message, not of the original unless
 * nothing changed; the clamp never reads or writes past the message, is
 * idempotent, and with 0 changes nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../proxy/resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t m[DNS_MSG_MAX], m2[DNS_MSG_MAX];
	uint8_t bits[32];

	if (size > DNS_MSG_MAX)
		return 0;
	memcpy(m, data, size);
	size_t qn = resolver_qname_len(m, size);
	if (qn) {
		if (qn > 255 || 12 + qn > size)
			abort();
		if (!resolver_question_is(m, size, m + 12, qn))
			abort();
		memcpy(m2, m, size);
		/* the case bits: from the input's tail, so the fuzzer steers them */
		memset(bits, 0, sizeof bits);
		memcpy(bits, data + size - (size < sizeof bits ? size : sizeof bits),
		       size < sizeof bits ? size : sizeof bits);
		resolver_case_randomise(m2 + 12, qn, bits);
		if (memcmp(m2 + 12 + qn, m + 12 + qn, size - 12 - qn) != 0 ||
		    memcmp(m2, m, 12) != 0)
			abort();
		for (size_t i = 12; i < 12 + qn; i++)
			if ((m2[i] | 0x20) != (m[i] | 0x20) ||
			    (m2[i] != m[i] && ((m[i] | 0x20) < 'a' || (m[i] | 0x20) > 'z')))
				abort();
		if (resolver_qname_len(m2, size) != qn ||
		    !resolver_question_is(m2, size, m2 + 12, qn) ||
		    resolver_question_is(m2, size, m + 12, qn) != (memcmp(m2, m, 12 + qn) == 0))
			abort();
	}
	memcpy(m2, m, size);
	resolver_clamp_ttls(m2, size, 0);
	if (memcmp(m2, m, size) != 0)
		abort();
	uint32_t max = size >= 4 ? (uint32_t)data[0] << 8 | data[1] : 3600;
	resolver_clamp_ttls(m2, size, max ? max : 1);
	memcpy(m, m2, size);
	resolver_clamp_ttls(m2, size, max ? max : 1);
	if (memcmp(m2, m, size) != 0)
		abort();
	return 0;
}
