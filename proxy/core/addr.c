/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

bool addr_eq(const struct addr *a, const struct addr *b)
{
	if (a->family != b->family)
		return false;
	size_t n = a->family == ADDR_V4 ? 4 : a->family == ADDR_V6 ? 16 : 0;
	return memcmp(a->b, b->b, n) == 0;
}

/* Text to address: inet_pton only, so "01.2.3.4", brackets or ports are refused. */
bool addr_parse(const char *s, struct addr *out)
{
	struct addr a;
	memset(&a, 0, sizeof a);
	if (!s)
		return false;
	if (inet_pton(AF_INET, s, a.b) == 1) {
		a.family = ADDR_V4;
	} else if (inet_pton(AF_INET6, s, a.b) == 1) {
		a.family = ADDR_V6;
	} else {
		return false;
	}
	*out = a;
	return true;
}

const char *addr_str(const struct addr *a, char *buf)
{
	const char *r = NULL;
	if (a->family == ADDR_V4)
		r = inet_ntop(AF_INET, a->b, buf, ADDR_STRLEN);
	else if (a->family == ADDR_V6)
		r = inet_ntop(AF_INET6, a->b, buf, ADDR_STRLEN);
	if (!r)
		strcpy(buf, "?");
	return buf;
}

void addr_mask(struct addr *a, unsigned prefix)
{
	unsigned bits = a->family == ADDR_V4 ? 32 : a->family == ADDR_V6 ? 128 : 0;
	if (prefix >= bits)
		return;
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;
		if (lo >= prefix)
			a->b[i] = 0;
		else if (prefix - lo < 8)
			a->b[i] &= (uint8_t)(0xff00u >> (prefix - lo));
	}
}

/* FNV-1a over family and the address bytes, seeded; then a final mix. */
uint32_t addr_hash(const struct addr *a, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;
	size_t n = a->family == ADDR_V4 ? 4 : a->family == ADDR_V6 ? 16 : 0;
	h = (h ^ a->family) * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ a->b[i]) * 16777619u;
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	h *= 0x846ca68bu;
	h ^= h >> 16;
	return h;
}
