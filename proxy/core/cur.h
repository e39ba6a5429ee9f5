/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_CUR_H
#define EGRESSD_CUR_H
/*
 * The one bounded cursor every byte read goes through.
 * Every reader either consumes exactly what it reports, or returns false
 * and leaves the cursor unchanged. A child cursor (cur_sub*) can never run
 * past its parent, so nested lengths are checked against the right parent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;
	size_t left;
};

static inline struct cur cur_make(const void *p, size_t n)
{
	struct cur c = {(const uint8_t *)p, p ? n : 0};
	return c;
}

static inline bool cur_u8(struct cur *c, uint8_t *v)
{
	if (c->left < 1)
		return false;
	*v = c->p[0];
	c->p++;
	c->left--;
	return true;
}

static inline bool cur_u16(struct cur *c, uint16_t *v)
{
	if (c->left < 2)
		return false;
	*v = (uint16_t)((c->p[0] << 8) | c->p[1]);
	c->p += 2;
	c->left -= 2;
	return true;
}

static inline bool cur_u24(struct cur *c, uint32_t *v)
{
	if (c->left < 3)
		return false;
	*v = ((uint32_t)c->p[0] << 16) | ((uint32_t)c->p[1] << 8) | c->p[2];
	c->p += 3;
	c->left -= 3;
	return true;
}

static inline bool cur_u32(struct cur *c, uint32_t *v)
{
	if (c->left < 4)
		return false;
	*v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) | ((uint32_t)c->p[2] << 8) |
	     c->p[3];
	c->p += 4;
	c->left -= 4;
	return true;
}

/* Peek without consuming. */
static inline bool cur_peek_u8(const struct cur *c, size_t off, uint8_t *v)
{
	if (c->left <= off)
		return false;
	*v = c->p[off];
	return true;
}

static inline bool cur_skip(struct cur *c, size_t n)
{
	if (c->left < n)
		return false;
	c->p += n;
	c->left -= n;
	return true;
}

/* Borrow n bytes: *out points into the parent buffer. */
static inline bool cur_bytes(struct cur *c, size_t n, const uint8_t **out)
{
	if (c->left < n)
		return false;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return true;
}

static inline bool cur_copy(struct cur *c, void *dst, size_t n)
{
	const uint8_t *src;
	if (!cur_bytes(c, n, &src))
		return false;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)dst)[i] = src[i];
	return true;
}

/* A child of exactly n bytes; the parent moves past it. */
static inline bool cur_sub(struct cur *c, size_t n, struct cur *sub)
{
	const uint8_t *p;
	if (!cur_bytes(c, n, &p))
		return false;
	*sub = cur_make(p, n);
	return true;
}

/* A child whose length is an 8/16/24-bit big-endian prefix. */
static inline bool cur_sub_u8len(struct cur *c, struct cur *sub)
{
	struct cur save = *c;
	uint8_t n;
	if (!cur_u8(c, &n) || !cur_sub(c, n, sub)) {
		*c = save;
		return false;
	}
	return true;
}

static inline bool cur_sub_u16len(struct cur *c, struct cur *sub)
{
	struct cur save = *c;
	uint16_t n;
	if (!cur_u16(c, &n) || !cur_sub(c, n, sub)) {
		*c = save;
		return false;
	}
	return true;
}

static inline bool cur_sub_u24len(struct cur *c, struct cur *sub)
{
	struct cur save = *c;
	uint32_t n;
	if (!cur_u24(c, &n) || !cur_sub(c, n, sub)) {
		*c = save;
		return false;
	}
	return true;
}

/* Parsers answer OK, MORE (need more bytes) or BAD (with a named reason). */
enum parse {
	PARSE_OK = 0,
	PARSE_MORE = 1,
	PARSE_BAD = 2,
};

#endif
