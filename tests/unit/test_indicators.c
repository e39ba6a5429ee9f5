/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "indicators.h"

/* Scan text; expect exactly one hit of type t whose masked form is masked. */
static void expect_one(const char *text, enum cred_type t, const char *masked, const char *secret)
{
	struct indicators ind;
	memset(&ind, 0, sizeof ind);
	ind_scan_credentials(&ind, (const uint8_t *)text, strlen(text));
	assert_true(ind.bits & IND_CREDENTIAL);
	assert_int_equal(ind.ncreds, 1);
	assert_int_equal(ind.creds[0].type, t);
	if (masked)
		assert_string_equal(ind.creds[0].masked, masked);
	/* the secret never appears in the masked form, nor any 9 characters of it */
	assert_null(strstr(ind.creds[0].masked, secret));
	size_t n = strlen(secret);
	for (size_t i = 0; i + 9 <= n; i++) {
		char piece[10];
		memcpy(piece, secret + i, 9);
		piece[9] = '\0';
		assert_null(strstr(ind.creds[0].masked, piece));
	}
	assert_int_equal(ind_severity(&ind), SEVERITY_CRITICAL);
}

static void expect_none(const char *text)
{
	struct indicators ind;
	memset(&ind, 0, sizeof ind);
	ind_scan_credentials(&ind, (const uint8_t *)text, strlen(text));
	assert_int_equal(ind.ncreds, 0);
	assert_false(ind.bits & IND_CREDENTIAL);
}

static void test_aws(void **state)
{
	(void)state;
	expect_one("POST /x HTTP/1.1\r\n\r\nkey=AKIAIOSFODNN7EXAMPLE&x=1", CRED_AWS_ACCESS_KEY,
	           "AKIA\xe2\x80\xa6MPLE", "AKIAIOSFODNN7EXAMPLE");
	expect_one("ASIAABCDEFGHIJKLMNOP", CRED_AWS_ACCESS_KEY, "ASIA\xe2\x80\xa6MNOP",
	           "ASIAABCDEFGHIJKLMNOP");
	expect_none("AKIAIOSFODNN7EXAMPL");   /* too short */
	expect_none("AKIAIOSFODNN7EXAMPLEX"); /* too long */
	expect_none("XAKIAIOSFODNN7EXAMPLE"); /* inside a longer word */
	expect_one("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
	           CRED_AWS_SECRET_KEY,
	           "wJal\xe2\x80\xa6"
	           "EKEY",
	           "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	expect_one("{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}",
	           CRED_AWS_SECRET_KEY, NULL, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	expect_none("just some 40 chars wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
}

static void test_tokens(void **state)
{
	(void)state;
	const char *ghp = "ghp_0123456789abcdefghijklmnopqrstuvwxyZ";
	expect_one(ghp, CRED_GITHUB_TOKEN, "ghp_\xe2\x80\xa6wxyZ", ghp);
	char pat[128];
	snprintf(pat, sizeof pat, "github_pat_%s",
	         "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
	         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
	assert_int_equal(strlen(pat), 11 + 82);
	expect_one(pat, CRED_GITHUB_TOKEN, NULL, pat);
	expect_one("token: glpat-abcdefghij0123456789 ", CRED_GITLAB_TOKEN,
	           "glpa\xe2\x80\xa6"
	           "6789",
	           "glpat-abcdefghij0123456789");
	expect_one("xoxb-1234567890-abcdefghij", CRED_SLACK_TOKEN, NULL,
	           "xoxb-1234567890-abcdefghij");
	expect_one("AIzaSyA-1234567890abcdefghijklmnopqrstu", CRED_GOOGLE_API_KEY, NULL,
	           "AIzaSyA-1234567890abcdefghijklmnopqrstu");
	expect_one("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
	           CRED_PRIVATE_KEY, NULL, "b3BlbnNzaC1rZXktdjEAAAAA");
	const char *jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
	                  "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
	expect_one(jwt, CRED_JWT, "eyJh\xe2\x80\xa6sR8U", jwt);
	expect_one("GET / HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNzd29yZA==\r\n\r\n",
	           CRED_BASIC_AUTH, "dXNl\xe2\x80\xa6ZA==", "dXNlcjpwYXNzd29yZA==");
	expect_one("authorization:   bearer abcdefghijklmnop1234\r\n", CRED_BEARER, NULL,
	           "abcdefghijklmnop1234");
	expect_none("Authorization: Bearer x\r\n");
	expect_none("ghp_short");
	expect_none("eyJhbGciOiJIUzI1NiJ9 no dots");
}

static void test_dedup_and_limit(void **state)
{
	(void)state;
	struct indicators ind;
	memset(&ind, 0, sizeof ind);
	const char *t = "AKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLE ASIAABCDEFGHIJKLMNOP "
	                "AKIAAAAAAAAAAAAAAAAA AKIABBBBBBBBBBBBBBBB AKIACCCCCCCCCCCCCCCC";
	ind_scan_credentials(&ind, (const uint8_t *)t, strlen(t));
	assert_int_equal(ind.ncreds, IND_MAX_CREDS);
	assert_string_equal(ind.creds[0].masked, "AKIA\xe2\x80\xa6MPLE");
	assert_string_equal(ind.creds[1].masked, "ASIA\xe2\x80\xa6MNOP");
	/* short secrets show less: never more than a quarter each side */
	memset(&ind, 0, sizeof ind);
	const char *s = "Authorization: Basic abcdefgh\r\n";
	ind_scan_credentials(&ind, (const uint8_t *)s, strlen(s));
	assert_int_equal(ind.ncreds, 1);
	assert_string_equal(ind.creds[0].masked, "ab\xe2\x80\xa6gh");
}

static void test_dns_names(void **state)
{
	(void)state;
	/* "AKIAIOSFODNN7EXAMPLE" as hex, split over two labels */
	char hex[64] = "";
	const char *key = "AKIAIOSFODNN7EXAMPLE";
	for (size_t i = 0; i < strlen(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)key[i]);
	char name[200];
	snprintf(name, sizeof name, "%.20s.%s.exfil.example", hex, hex + 20);
	struct indicators ind;
	memset(&ind, 0, sizeof ind);
	ind_scan_dns_name(&ind, name);
	assert_true(ind.bits & IND_CREDENTIAL);
	assert_int_equal(ind.creds[0].type, CRED_AWS_ACCESS_KEY);
	assert_string_equal(ind.creds[0].masked, "AKIA\xe2\x80\xa6MPLE");
	/* base32 of the same key (RFC 4648, lowercased as DNS does) */
	memset(&ind, 0, sizeof ind);
	ind_scan_dns_name(&ind, "iffusqkjj5jumt2ejzhdorkyifgvatc.x.example");
	/* 31 chars decode to 19 bytes: not the whole key, nothing found */
	assert_false(ind.bits & IND_CREDENTIAL);
	memset(&ind, 0, sizeof ind);
	ind_scan_dns_name(&ind, "iffusqkjj5jumt2ejzhdorkyifgvatcf.x.example");
	assert_true(ind.bits & IND_CREDENTIAL);
	assert_int_equal(ind.creds[0].type, CRED_AWS_ACCESS_KEY);
	/* the plain key in a label, lowercased by DNS */
	memset(&ind, 0, sizeof ind);
	ind_scan_dns_name(&ind, "akiaiosfodnn7example.leak.example");
	assert_true(ind.bits & IND_CREDENTIAL);
	/* an ordinary name: nothing */
	memset(&ind, 0, sizeof ind);
	ind_scan_dns_name(&ind, "www.deb.debian.org");
	assert_int_equal(ind.bits, 0);
}

static void test_tunnel_shapes(void **state)
{
	(void)state;
	assert_false(ind_dns_name_tunnel_shaped("www.example.com"));
	assert_false(ind_dns_name_tunnel_shaped("deb.debian.org"));
	assert_false(ind_dns_name_tunnel_shaped("aaaaabbbbbcccccdddddeeeee.example.com"));
	/* > 40 chars */
	assert_true(
	    ind_dns_name_tunnel_shaped("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com"));
	/* base32 / hex only, >= 24 */
	assert_true(ind_dns_name_tunnel_shaped("mfrggzdfmztwq2lknnwg23tp.t.example"));
	assert_true(ind_dns_name_tunnel_shaped("0123456789abcdef01234567.t.example"));
	assert_false(ind_dns_name_tunnel_shaped("00000000000000000000abc.t.example")); /* 23 */
	assert_true(ind_dns_name_tunnel_shaped("000000000000000000000abc.t.example")); /* 24 */
	/* high entropy on >= 20 */
	assert_true(ind_dns_name_tunnel_shaped("q8zk-x7vn_2mw9pt4jr6yb.example"));
	assert_false(ind_dns_name_tunnel_shaped(""));
}

static void test_lookalikes(void **state)
{
	(void)state;
	assert_true(ind_within_edit_distance("github.com", "github.com", 0));
	assert_true(ind_within_edit_distance("githuh.com", "github.com", 1));
	assert_true(ind_within_edit_distance("gthub.com", "github.com", 1));
	assert_true(ind_within_edit_distance("giithub.com", "github.com", 1));
	assert_false(ind_within_edit_distance("gitlab.com", "github.com", 1));
	/* homoglyphs fold to distance 0 */
	assert_true(ind_within_edit_distance("g1thub.com", "github.com", 0));
	assert_true(ind_within_edit_distance("rnicrosoft.com", "microsoft.com", 0));
	assert_true(ind_within_edit_distance("vvikipedia.org", "wikipedia.org", 0));
	assert_true(ind_within_edit_distance("examp1e.c0m", "example.com", 0));
	assert_false(ind_within_edit_distance("example.org", "example.com", 1));
	assert_false(ind_within_edit_distance("a", "abcd", 2));
	assert_true(ind_within_edit_distance("pypi.org", "pypl.org", 0));
}

/* IDN look-alikes: Punycode decoded, confusable letters mapped to Latin. */
static void test_idn_skeleton(void **state)
{
	(void)state;
	char out[256];
	assert_true(ind_confusable_skeleton("xn--pple-43d.com", out, sizeof out));
	assert_string_equal(out, "apple.com"); /* Cyrillic a */
	assert_true(ind_confusable_skeleton("xn--80ak6aa92e.com", out, sizeof out));
	assert_string_equal(out, "apple.com"); /* every letter Cyrillic */
	assert_true(ind_confusable_skeleton("login.xn--gthub-n2e.com", out, sizeof out));
	assert_string_equal(out, "login.github.com"); /* Ukrainian i */
	assert_true(ind_confusable_skeleton("xn--mple-43d3a6i.com", out, sizeof out));
	assert_string_equal(out, "example.com");
	assert_true(ind_confusable_skeleton("xn--bcher-kva.example", out, sizeof out));
	assert_string_equal(out, "bucher.example");
	/* no IDN label, or one that does not decode */
	assert_false(ind_confusable_skeleton("example.com", out, sizeof out));
	assert_false(ind_confusable_skeleton("xn--.com", out, sizeof out));
	assert_false(ind_confusable_skeleton("xn--99999999999999999999.com", out, sizeof out));
	assert_false(ind_confusable_skeleton("xn--a-ecp!.com", out, sizeof out));
	assert_false(ind_confusable_skeleton("xn--pple-43d.com", out, 4)); /* too small */
	/* a character that resembles nothing Latin stays visible */
	assert_true(ind_confusable_skeleton("xn--3e0b707e.com", out, sizeof out)); /* Hangul */
	assert_non_null(strchr(out, '~'));
	/* the skeleton then compares with the allowed domain */
	assert_true(ind_confusable_skeleton("xn--pple-43d.com", out, sizeof out));
	assert_true(ind_within_edit_distance(out, "apple.com", 0));
}

static void test_severity_and_names(void **state)
{
	(void)state;
	struct indicators ind = {0};
	assert_int_equal(ind_severity(&ind), SEVERITY_LOW);
	ind.bits = IND_QUIC;
	assert_int_equal(ind_severity(&ind), SEVERITY_LOW);
	ind.bits = IND_BEACON;
	assert_int_equal(ind_severity(&ind), SEVERITY_MEDIUM);
	ind.bits = IND_IP_LITERAL | IND_ECH | IND_SPLIT_HELLO;
	assert_int_equal(ind_severity(&ind), SEVERITY_MEDIUM);
	ind.bits = IND_SNI_SPOOF | IND_BEACON;
	assert_int_equal(ind_severity(&ind), SEVERITY_HIGH);
	ind.bits = IND_TYPOSQUAT;
	assert_int_equal(ind_severity(&ind), SEVERITY_HIGH);
	ind.bits = IND_DNS_TUNNEL | IND_CREDENTIAL;
	assert_int_equal(ind_severity(&ind), SEVERITY_CRITICAL);
	assert_string_equal(indicator_name(IND_DNS_TUNNEL), "dns_tunnel");
	assert_string_equal(indicator_name(IND_SPLIT_HELLO), "split_hello");
	assert_string_equal(cred_type_name(CRED_AWS_ACCESS_KEY), "aws_access_key");
	assert_string_equal(cred_type_name(CRED_COUNT_), "");
	assert_string_equal(severity_name(SEVERITY_CRITICAL), "critical");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aws),
	    cmocka_unit_test(test_tokens),
	    cmocka_unit_test(test_dedup_and_limit),
	    cmocka_unit_test(test_dns_names),
	    cmocka_unit_test(test_tunnel_shapes),
	    cmocka_unit_test(test_lookalikes),
	    cmocka_unit_test(test_idn_skeleton),
	    cmocka_unit_test(test_severity_and_names),
	};
	return cmocka_run_group_tests_name("indicators", tests, NULL, NULL);
}
