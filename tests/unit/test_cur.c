/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The bounded cursor: every reader consumes what it reports or nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cur.h"

static void readers(void **state)
{
	(void)state;
	const uint8_t b[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
	struct cur c = cur_make(b, sizeof b);
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;

	assert_true(cur_u8(&c, &u8));
	assert_int_equal(u8, 0x01);
	assert_true(cur_u16(&c, &u16));
	assert_int_equal(u16, 0x0203);
	assert_true(cur_u24(&c, &u32));
	assert_int_equal(u32, 0x040506);
	assert_true(cur_u32(&c, &u32));
	assert_int_equal(u32, 0x0708090a);
	assert_int_equal(c.left, 0);
	assert_false(cur_u8(&c, &u8));
	assert_int_equal(c.left, 0);
}

static void short_reads_leave_cursor(void **state)
{
	(void)state;
	const uint8_t b[] = {0xaa, 0xbb, 0xcc};
	struct cur c = cur_make(b, sizeof b), save = c;
	uint16_t u16 = 0x1234;
	uint32_t u32 = 0x12345678;
	const uint8_t *p = NULL;
	uint8_t dst[4] = {0};

	assert_false(cur_u32(&c, &u32));
	assert_int_equal(u32, 0x12345678);
	assert_false(cur_skip(&c, 4));
	assert_false(cur_bytes(&c, 4, &p));
	assert_null(p);
	assert_false(cur_copy(&c, dst, 4));
	assert_int_equal(dst[0], 0);
	assert_ptr_equal(c.p, save.p);
	assert_int_equal(c.left, save.left);
	assert_true(cur_skip(&c, 2));
	assert_false(cur_u16(&c, &u16));
	assert_int_equal(u16, 0x1234);
	assert_int_equal(c.left, 1);
}

static void peek(void **state)
{
	(void)state;
	const uint8_t b[] = {1, 2};
	struct cur c = cur_make(b, 2);
	uint8_t v;
	assert_true(cur_peek_u8(&c, 1, &v));
	assert_int_equal(v, 2);
	assert_false(cur_peek_u8(&c, 2, &v));
	assert_int_equal(c.left, 2);
}

static void subs(void **state)
{
	(void)state;
	/* outer<4> = { inner<2> = {x y} z }: the inner length can't exceed its parent */
	const uint8_t b[] = {0x00, 0x04, 0x02, 'x', 'y', 'z', 0xee};
	struct cur c = cur_make(b, sizeof b), outer, inner;
	uint8_t v;

	assert_true(cur_sub_u16len(&c, &outer));
	assert_int_equal(outer.left, 4);
	assert_int_equal(c.left, 1);
	assert_true(cur_sub_u8len(&outer, &inner));
	assert_int_equal(inner.left, 2);
	assert_true(cur_u8(&inner, &v));
	assert_int_equal(v, 'x');
	assert_int_equal(outer.left, 1);

	/* a child claiming more than the parent holds: refused, parent unchanged */
	const uint8_t lie[] = {0x00, 0x02, 0x05, 'a', 'b'};
	struct cur l = cur_make(lie, sizeof lie), lo, li;
	assert_true(cur_sub_u16len(&l, &lo));
	struct cur before = lo;
	assert_false(cur_sub_u8len(&lo, &li));
	assert_ptr_equal(lo.p, before.p);
	assert_int_equal(lo.left, before.left);

	const uint8_t l24[] = {0x00, 0x00, 0x02, 'a', 'b', 'c'};
	struct cur c24 = cur_make(l24, sizeof l24), s24;
	assert_true(cur_sub_u24len(&c24, &s24));
	assert_int_equal(s24.left, 2);
	assert_int_equal(c24.left, 1);
	const uint8_t l24bad[] = {0x00, 0x00, 0x09, 'a'};
	c24 = cur_make(l24bad, sizeof l24bad);
	assert_false(cur_sub_u24len(&c24, &s24));
	assert_int_equal(c24.left, 4);
	const uint8_t l16short[] = {0x00};
	c24 = cur_make(l16short, 1);
	assert_false(cur_sub_u16len(&c24, &s24));
	assert_int_equal(c24.left, 1);
}

static void null_make(void **state)
{
	(void)state;
	struct cur c = cur_make(NULL, 100);
	uint8_t v;
	assert_int_equal(c.left, 0);
	assert_false(cur_u8(&c, &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(readers),   cmocka_unit_test(short_reads_leave_cursor),
	    cmocka_unit_test(peek),      cmocka_unit_test(subs),
	    cmocka_unit_test(null_make),
	};
	return cmocka_run_group_tests_name("cur", tests, NULL, NULL);
}
