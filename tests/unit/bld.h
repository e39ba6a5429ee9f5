/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_TEST_BLD_H
#define EGRESSD_TEST_BLD_H
/*
 * A byte builder for the unit tests' hand-made packets and messages
 * (big-endian, bounded: running past BLD_CAP fails the test). Include after
 * <cmocka.h>; define BLD_CAP first for a larger buffer.
 */
#include <stdint.h>
#include <string.h>

#ifndef BLD_CAP
#define BLD_CAP 4096
#endif

struct bld {
	uint8_t d[BLD_CAP];
	size_t n;
};

static inline void put8(struct bld *b, unsigned v)
{
	assert_true(b->n < sizeof b->d);
	b->d[b->n++] = (uint8_t)v;
}
static inline void put16(struct bld *b, unsigned v)
{
	put8(b, v >> 8);
	put8(b, v);
}
static inline void put32(struct bld *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b, v & 0xffff);
}
static inline void putb(struct bld *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof b->d);
	if (n)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

#endif
