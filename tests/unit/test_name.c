/* SPDX-License-Identifier: GPL-2.0-or-later */
/* name_normalize / name_is_below, plus addr_* and reason_name (small pure helpers). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "name.h"
#include "reason.h"

static void ok(const char *in, size_t len, const char *want)
{
	char out[NAME_MAX_LEN + 1];
	enum name_err why = NAME_ERR_COUNT_;
	if (!name_normalize(in, len, out, &why))
		fail_msg("\"%s\" refused: %s", in, name_err_name(why));
	assert_int_equal(why, NAME_OK);
	assert_string_equal(out, want);
}

static void bad(const char *in, size_t len, enum name_err want)
{
	char out[NAME_MAX_LEN + 1];
	enum name_err why = NAME_OK;
	if (name_normalize(in, len, out, &why))
		fail_msg("\"%s\" accepted as \"%s\"", in, out);
	if (why != want)
		fail_msg("\"%s\": got %s, want %s", in, name_err_name(why), name_err_name(want));
	assert_string_equal(out, "");
}

#define OK(s, w) ok(s, strlen(s), w)
#define BAD(s, e) bad(s, strlen(s), e)

static void normalize_good(void **state)
{
	(void)state;
	OK("example.com", "example.com");
	OK("WWW.Example.COM", "www.example.com");
	OK("example.com.", "example.com");
	OK("_dmarc.example.com", "_dmarc.example.com");
	OK("xn--bcher-kva.example", "xn--bcher-kva.example");
	OK("a-b.c-d.example", "a-b.c-d.example");
	OK("localhost", "localhost");
	OK("3com.example", "3com.example");
	OK("1.2.3.example", "1.2.3.example");
}

static void normalize_bad(void **state)
{
	(void)state;
	BAD("", NAME_EMPTY);
	BAD(".", NAME_EMPTY);
	BAD("example.com..", NAME_BAD_LABEL);
	BAD("a..b", NAME_BAD_LABEL);
	BAD(".a", NAME_BAD_LABEL);
	BAD("has space.example", NAME_BAD_CHAR);
	BAD("tab\t.example", NAME_BAD_CHAR);
	BAD("b\xc3\xbc"
	    "cher.example",
	    NAME_BAD_CHAR);
	BAD("a/b.example", NAME_BAD_CHAR);
	BAD("a:80", NAME_BAD_CHAR);
	bad("good.example\0.evil", 18, NAME_BAD_CHAR);
	BAD("192.0.2.1", NAME_IP_LITERAL);
	BAD("192.0.2.1.", NAME_IP_LITERAL);
	BAD("2001:db8::1", NAME_IP_LITERAL);
	BAD("::ffff:192.0.2.1", NAME_IP_LITERAL);
	BAD("3221225985", NAME_IP_LITERAL); /* inet_aton's one-number form */
	BAD("0xc0.0x00.0x02.0x01", NAME_IP_LITERAL);
	BAD("192.0.513", NAME_IP_LITERAL);
	BAD("example.123", NAME_IP_LITERAL);
}

static void normalize_lengths(void **state)
{
	(void)state;
	char buf[400];
	/* a 63-byte label is fine, 64 is not */
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".example", 9);
	OK(buf, buf);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".example", 9);
	BAD(buf, NAME_BAD_LABEL);
	/* 253 bytes total is fine (and 254 with the trailing dot), 254 is not */
	size_t n = 0;
	while (n < 253) {
		size_t l = 253 - n >= 50 ? 49 : 253 - n;
		memset(buf + n, 'b', l);
		n += l;
		if (n < 253)
			buf[n++] = '.';
	}
	buf[n] = '\0';
	assert_int_equal(strlen(buf), 253);
	char want[300];
	strcpy(want, buf);
	OK(buf, want);
	buf[253] = '.';
	buf[254] = '\0';
	OK(buf, want);
	buf[253] = 'c';
	BAD(buf, NAME_TOO_LONG);
}

static void below(void **state)
{
	(void)state;
	assert_true(name_is_below("a.b.c", "b.c"));
	assert_true(name_is_below("b.c", "b.c"));
	assert_true(name_is_below("x.y.b.c", "b.c"));
	assert_false(name_is_below("ab.c", "b.c"));
	assert_false(name_is_below("b.c", "a.b.c"));
	assert_false(name_is_below("c", "b.c"));
	assert_false(name_is_below("evilb.c", "b.c"));
	assert_false(name_is_below("a.b.c", ""));
}

static void addr(void **state)
{
	(void)state;
	struct addr a, b;
	char s[ADDR_STRLEN];
	assert_true(addr_parse("192.0.2.1", &a));
	assert_int_equal(a.family, ADDR_V4);
	assert_string_equal(addr_str(&a, s), "192.0.2.1");
	assert_true(addr_parse("2001:DB8::1", &b));
	assert_int_equal(b.family, ADDR_V6);
	assert_string_equal(addr_str(&b, s), "2001:db8::1");
	assert_false(addr_eq(&a, &b));
	assert_false(addr_parse("192.0.2.1:80", &a));
	assert_false(addr_parse("[2001:db8::1]", &a));
	assert_false(addr_parse("192.0.2", &a));
	assert_false(addr_parse("", &a));
	assert_false(addr_parse("example.com", &a));

	assert_true(addr_parse("203.0.113.77", &a));
	addr_mask(&a, 24);
	assert_true(addr_parse("203.0.113.0", &b));
	assert_true(addr_eq(&a, &b));
	assert_true(addr_parse("203.0.113.77", &a));
	addr_mask(&a, 27);
	assert_string_equal(addr_str(&a, s), "203.0.113.64");
	addr_mask(&a, 0);
	assert_string_equal(addr_str(&a, s), "0.0.0.0");
	assert_true(addr_parse("2001:db8:abcd:12ff::1", &a));
	addr_mask(&a, 52);
	assert_string_equal(addr_str(&a, s), "2001:db8:abcd:1000::");
	assert_true(addr_parse("2001:db8::1", &a));
	addr_mask(&a, 128);
	assert_string_equal(addr_str(&a, s), "2001:db8::1");

	/* same address, same hash; seed and family change it */
	assert_true(addr_parse("198.51.100.7", &a));
	assert_true(addr_parse("198.51.100.7", &b));
	assert_int_equal(addr_hash(&a, 1), addr_hash(&b, 1));
	assert_int_not_equal(addr_hash(&a, 1), addr_hash(&a, 2));
	assert_true(addr_parse("198.51.100.8", &b));
	assert_int_not_equal(addr_hash(&a, 1), addr_hash(&b, 1));
	/* ::c633:6407 has the same low bytes as 198.51.100.7 but is not equal */
	assert_true(addr_parse("::c633:6407", &b));
	assert_false(addr_eq(&a, &b));
	assert_int_not_equal(addr_hash(&a, 1), addr_hash(&b, 1));
}

static void reasons(void **state)
{
	(void)state;
	static const char *const want[] = {
	    "",
	    "ip_not_allowed",
	    "port_not_allowed",
	    "name_not_allowed",
	    "sni_ip_mismatch",
	    "no_name",
	    "protocol_not_allowed",
	    "ech",
	    "incomplete",
	    "malformed",
	    "revoked",
	};
	assert_int_equal(sizeof want / sizeof want[0], REASON_COUNT_);
	for (int r = 0; r < REASON_COUNT_; r++)
		assert_string_equal(reason_name((enum reason)r), want[r]);
	for (int e = 0; e < NAME_ERR_COUNT_; e++)
		assert_string_not_equal(name_err_name((enum name_err)e), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(normalize_good),
	    cmocka_unit_test(normalize_bad),
	    cmocka_unit_test(normalize_lengths),
	    cmocka_unit_test(below),
	    cmocka_unit_test(addr),
	    cmocka_unit_test(reasons),
	};
	return cmocka_run_group_tests_name("name", tests, NULL, NULL);
}
