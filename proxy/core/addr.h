/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_ADDR_H
#define EGRESSD_ADDR_H
/* An IPv4 or IPv6 address, family-tagged. IPv4 lives in b[0..3], rest zero. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum addr_family {
	ADDR_NONE = 0,
	ADDR_V4 = 4,
	ADDR_V6 = 6,
};

struct addr {
	uint8_t family; /* enum addr_family */
	uint8_t b[16];
};

#define ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

bool addr_eq(const struct addr *a, const struct addr *b);
/* Parse "192.0.2.1" or "2001:db8::1" (no brackets, no port). */
bool addr_parse(const char *s, struct addr *out);
/* Text form into buf (ADDR_STRLEN bytes); returns buf. */
const char *addr_str(const struct addr *a, char *buf);
/* Keep the first `prefix` bits, zero the rest. */
void addr_mask(struct addr *a, unsigned prefix);
uint32_t addr_hash(const struct addr *a, uint32_t seed);

#endif
