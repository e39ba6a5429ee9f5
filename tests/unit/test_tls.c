/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TLS ClientHello parser: hellos built here, fed whole, split and truncated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls.h"

/* ---- a small builder ---------------------------------------------------- */

#define BLD_CAP 200000
#include "bld.h"
/* Length prefixes: open() reserves, close() fills in what was written since. */
static size_t open_len(struct bld *b, unsigned bytes)
{
	size_t at = b->n;
	for (unsigned i = 0; i < bytes; i++)
		put8(b, 0);
	return at;
}
static void close_len(struct bld *b, size_t at, unsigned bytes)
{
	size_t len = b->n - at - bytes;
	for (unsigned i = 0; i < bytes; i++)
		b->d[at + i] = (uint8_t)(len >> (8 * (bytes - 1 - i)));
}

struct hello_opts {
	uint16_t legacy_version;
	const char *names[4]; /* host_names in server_name, NULL-terminated */
	size_t name_len[4];   /* 0: strlen */
	bool sni;             /* add server_name at all */
	bool sni_empty_list;
	bool ech;
	bool dup_ext;
	bool versions;  /* supported_versions: GREASE, 1.3, 1.2 */
	size_t padding; /* padding extension (21) of this many bytes */
	unsigned session_id_len;
	bool trailing; /* junk after the extensions, inside the body */
	bool no_extensions;
};

static const struct hello_opts defaults = {
    .legacy_version = 0x0303,
    .names = {"Example.COM."},
    .sni = true,
    .versions = true,
    .session_id_len = 32,
};

/* handshake(4) | body: the bare ClientHello message. */
static void build_hello(struct bld *b, const struct hello_opts *o)
{
	size_t hs, ext, e, l, l2;
	uint8_t random[32];

	memset(random, 0xab, sizeof random);
	put8(b, 1);
	hs = open_len(b, 3);
	put16(b, o->legacy_version);
	putb(b, random, 32);
	put8(b, o->session_id_len);
	for (unsigned i = 0; i < o->session_id_len; i++)
		put8(b, i);
	l = open_len(b, 2);
	put16(b, 0x1301);
	put16(b, 0x1302);
	put16(b, 0xc02f);
	close_len(b, l, 2);
	put8(b, 1);
	put8(b, 0);
	if (o->no_extensions)
		goto done;
	ext = open_len(b, 2);
	put16(b, 0x0a0a); /* GREASE */
	put16(b, 0);
	if (o->sni) {
		put16(b, 0);
		e = open_len(b, 2);
		l = open_len(b, 2);
		for (unsigned i = 0; !o->sni_empty_list && i < 4 && o->names[i]; i++) {
			put8(b, 0);
			l2 = open_len(b, 2);
			putb(b, o->names[i], o->name_len[i] ? o->name_len[i] : strlen(o->names[i]));
			close_len(b, l2, 2);
		}
		close_len(b, l, 2);
		close_len(b, e, 2);
	}
	put16(b, 10); /* supported_groups */
	e = open_len(b, 2);
	l = open_len(b, 2);
	put16(b, 0x001d);
	put16(b, 0x11ec);
	close_len(b, l, 2);
	close_len(b, e, 2);
	if (o->versions) {
		put16(b, 43);
		e = open_len(b, 2);
		l = open_len(b, 1);
		put16(b, 0x3a3a);
		put16(b, 0x0304);
		put16(b, 0x0303);
		close_len(b, l, 1);
		close_len(b, e, 2);
	}
	if (o->ech) {
		put16(b, 0xfe0d);
		e = open_len(b, 2);
		for (int i = 0; i < 40; i++)
			put8(b, i);
		close_len(b, e, 2);
	}
	if (o->dup_ext) {
		put16(b, 10);
		put16(b, 4);
		put16(b, 2);
		put16(b, 0x0017);
	}
	if (o->padding) {
		put16(b, 21);
		e = open_len(b, 2);
		for (size_t i = 0; i < o->padding; i++)
			put8(b, 0);
		close_len(b, e, 2);
	}
	close_len(b, ext, 2);
	if (o->trailing) {
		put8(b, 0xde);
		put8(b, 0xad);
	}
done:
	close_len(b, hs, 3);
}

/* Wrap msg into records of at most `frag` bytes each. */
static void wrap_records(struct bld *out, const uint8_t *msg, size_t len, size_t frag)
{
	size_t off = 0;
	while (off < len) {
		size_t n = len - off < frag ? len - off : frag;
		put8(out, 22);
		put16(out, 0x0301);
		put16(out, (unsigned)n);
		putb(out, msg + off, n);
		off += n;
	}
}

static struct bld *stream_of(const struct hello_opts *o, size_t frag)
{
	struct bld *m = calloc(1, sizeof *m), *s = calloc(1, sizeof *s);
	assert_non_null(m);
	assert_non_null(s);
	build_hello(m, o);
	wrap_records(s, m->d, m->n, frag);
	free(m);
	return s;
}

static enum parse parse(const struct bld *s, struct tls_hello *h, enum tls_err *why)
{
	return tls_client_hello(cur_make(s->d, s->n), h, why);
}

/* ---- tests -------------------------------------------------------------- */

static void basic(void **state)
{
	(void)state;
	struct bld *s = stream_of(&defaults, 16384);
	struct tls_hello h;
	enum tls_err why;

	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_int_equal(why, TLS_OK);
	assert_true(h.has_sni);
	assert_string_equal(h.sni, "example.com"); /* lowercased, trailing dot gone */
	assert_false(h.ech);
	assert_int_equal(h.legacy_version, 0x0303);
	assert_int_equal(h.max_version, 0x0304);
	assert_int_equal(h.records, 1);
	assert_int_equal(h.consumed, s->n);
	assert_int_equal(h.hello_len, s->n - 5);
	free(s);
}

static void bytes_after_hello_not_consumed(void **state)
{
	(void)state;
	struct bld *s = stream_of(&defaults, 16384);
	size_t n = s->n;
	put8(s, 20); /* a change_cipher_spec record after it */
	put16(s, 0x0303);
	put16(s, 1);
	put8(s, 1);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_int_equal(h.consumed, n);
	free(s);
}

static void no_sni(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.sni = false;
	o.versions = false;
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_false(h.has_sni);
	assert_string_equal(h.sni, "");
	assert_int_equal(h.max_version, 0x0303);
	free(s);
}

static void no_extensions_tls10(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.no_extensions = true;
	o.legacy_version = 0x0301;
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_false(h.has_sni);
	assert_int_equal(h.max_version, 0x0301);
	free(s);
}

/* Every strict prefix of a valid stream is MORE; the whole is OK. */
static void check_prefixes(const struct bld *s, unsigned records)
{
	struct tls_hello h;
	enum tls_err why;
	for (size_t i = 0; i < s->n; i++) {
		enum parse r = tls_client_hello(cur_make(s->d, i), &h, &why);
		if (r != PARSE_MORE)
			fail_msg("prefix %zu of %zu: %d (%s)", i, s->n, r, tls_err_name(why));
	}
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_int_equal(h.records, records);
	assert_int_equal(h.consumed, s->n);
	assert_string_equal(h.sni, "example.com");
}

static void split_three_records_byte_by_byte(void **state)
{
	(void)state;
	struct bld *m = calloc(1, sizeof *m), *s = calloc(1, sizeof *s);
	build_hello(m, &defaults);
	/* three records of unequal size: 3 bytes (inside the handshake header), 60, rest */
	size_t cut1 = 3, cut2 = 63;
	wrap_records(s, m->d, cut1, cut1);
	wrap_records(s, m->d + cut1, cut2 - cut1, 16384);
	wrap_records(s, m->d + cut2, m->n - cut2, 16384);
	check_prefixes(s, 3);
	free(m);
	free(s);
}

static void one_byte_records(void **state)
{
	(void)state;
	struct bld *s = stream_of(&defaults, 1);
	struct bld *m = calloc(1, sizeof *m);
	build_hello(m, &defaults);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_int_equal(h.records, m->n);
	assert_string_equal(h.sni, "example.com");
	free(m);
	free(s);
}

static void large_hello_2500(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.padding = 2500; /* post-quantum key shares make hellos this big */
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_true(s->n > 2560);
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_string_equal(h.sni, "example.com");
	assert_int_equal(h.records, 1);
	free(s);
	/* and the same split into 1400-byte records (one per segment) */
	s = stream_of(&o, 1400);
	check_prefixes(s, 2);
	free(s);
}

static void hello_near_64k(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.padding = 65000;
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_int_equal(h.records, 4);
	free(s);
}

static void too_large(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.padding = 65530; /* extensions still fit 16 bits, the message passes 64 KiB */
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_TOO_LARGE);
	/* known from the first record's handshake header alone */
	assert_int_equal(tls_client_hello(cur_make(s->d, 9), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_TOO_LARGE);
	free(s);
}

static void expect_bad(const struct hello_opts *o, enum tls_err want)
{
	struct bld *s = stream_of(o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_BAD);
	if (why != want)
		fail_msg("got %s, want %s", tls_err_name(why), tls_err_name(want));
	assert_false(h.has_sni);
	free(s);
}

static void sni_idn(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.names[0] = "XN--BCHER-KVA.example";
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_string_equal(h.sni, "xn--bcher-kva.example");
	free(s);
}

static void sni_nul(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.names[0] = "allowed.example\0.evil.example";
	o.name_len[0] = 29;
	expect_bad(&o, TLS_SNI_BAD_NAME);
	/* the bare message keeps sni_err for the log */
	struct tls_hello h;
	enum tls_err why;
	struct bld *m = calloc(1, sizeof *m);
	build_hello(m, &o);
	assert_int_equal(tls_handshake_message(cur_make(m->d, m->n), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_SNI_BAD_NAME);
	assert_int_equal(h.sni_err, NAME_BAD_CHAR);
	free(m);
	struct bld *st = stream_of(&o, 100);
	assert_int_equal(parse(st, &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_SNI_BAD_NAME);
	assert_int_equal(h.sni_err, NAME_BAD_CHAR);
	free(st);
}

static void sni_bad_names(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	const char *bad[] = {
	    "", "a..b", "has space.example", "caf\xc3\xa9.example", "192.0.2.1", "2001:db8::1",
	    "."};
	enum name_err want[] = {NAME_EMPTY,      NAME_BAD_LABEL,  NAME_BAD_CHAR, NAME_BAD_CHAR,
	                        NAME_IP_LITERAL, NAME_IP_LITERAL, NAME_EMPTY};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct bld *m = calloc(1, sizeof *m);
		struct tls_hello h;
		enum tls_err why;
		o.names[0] = bad[i];
		o.name_len[0] = strlen(bad[i]);
		build_hello(m, &o);
		assert_int_equal(tls_handshake_message(cur_make(m->d, m->n), &h, &why), PARSE_BAD);
		assert_int_equal(why, TLS_SNI_BAD_NAME);
		if (h.sni_err != want[i])
			fail_msg("%s: got %s", bad[i], name_err_name(h.sni_err));
		free(m);
	}
}

static void sni_two_names(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.names[1] = "evil.example";
	expect_bad(&o, TLS_SNI_MULTIPLE);
}

static void sni_empty_list(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.sni_empty_list = true;
	expect_bad(&o, TLS_SNI_BAD_LIST);
}

static void dup_extension(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.dup_ext = true;
	expect_bad(&o, TLS_DUP_EXTENSION);
}

static void ech(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.ech = true;
	struct bld *s = stream_of(&o, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_OK);
	assert_true(h.ech);
	assert_string_equal(h.sni, "example.com");
	free(s);
}

static void bad_legacy_version(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.legacy_version = 0x0300;
	expect_bad(&o, TLS_BAD_VERSION);
	o.legacy_version = 0x0304;
	expect_bad(&o, TLS_BAD_VERSION);
}

static void bad_session_id(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.session_id_len = 33;
	expect_bad(&o, TLS_BAD_LENGTH);
}

static void trailing(void **state)
{
	(void)state;
	struct hello_opts o = defaults;
	o.trailing = true;
	expect_bad(&o, TLS_TRAILING);
}

/* Inner length running past its parent: the extensions block says 10 more bytes. */
static void inner_length_past_parent(void **state)
{
	(void)state;
	struct bld *m = calloc(1, sizeof *m);
	build_hello(m, &defaults);
	/* extensions length sits right after compression: 4+2+32+1+32+2+6+2 */
	size_t at = 4 + 2 + 32 + 1 + 32 + 2 + 6 + 2;
	unsigned len = (unsigned)(m->d[at] << 8 | m->d[at + 1]);
	assert_int_equal(len, m->n - at - 2);
	m->d[at] = (uint8_t)((len + 10) >> 8);
	m->d[at + 1] = (uint8_t)(len + 10);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(tls_handshake_message(cur_make(m->d, m->n), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_BAD_LENGTH);
	/* and the SNI name length running past its list */
	build_hello(memset(m, 0, sizeof *m), &defaults);
	size_t sni_at = at + 2 + 4 + 4 + 2 + 1; /* GREASE ext, sni hdr, list len, type */
	assert_int_equal(m->d[sni_at + 1], 12);
	m->d[sni_at + 1] = 40;
	assert_int_equal(tls_handshake_message(cur_make(m->d, m->n), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_SNI_BAD_LIST);
	free(m);
}

static void sslv2(void **state)
{
	(void)state;
	/* SSLv2 CLIENT-HELLO: len(2, high bit) type=1 version=0x0301 ... */
	const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
	struct tls_hello h;
	enum tls_err why;
	assert_true(tls_looks_like(cur_make(v2, 1)));
	assert_int_equal(tls_client_hello(cur_make(v2, sizeof v2), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_SSLV2);
	assert_int_equal(tls_client_hello(cur_make(v2, 1), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_SSLV2);
}

static void records_bad(void **state)
{
	(void)state;
	struct tls_hello h;
	enum tls_err why;
	const uint8_t appdata[] = {0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5};
	assert_int_equal(tls_client_hello(cur_make(appdata, sizeof appdata), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_NOT_HANDSHAKE);
	const uint8_t ver[] = {0x16, 0x03, 0x04, 0x00, 0x05, 1, 0, 0, 1, 0};
	assert_int_equal(tls_client_hello(cur_make(ver, sizeof ver), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_BAD_RECORD);
	const uint8_t major[] = {0x16, 0x02, 0x00};
	assert_int_equal(tls_client_hello(cur_make(major, sizeof major), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_BAD_RECORD);
	const uint8_t zero[] = {0x16, 0x03, 0x01, 0x00, 0x00};
	assert_int_equal(tls_client_hello(cur_make(zero, sizeof zero), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_BAD_RECORD);
	const uint8_t huge[] = {0x16, 0x03, 0x01, 0x41, 0x01};
	assert_int_equal(tls_client_hello(cur_make(huge, sizeof huge), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_BAD_RECORD);
	/* server_hello(2): known from the partial first record */
	const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x50, 0x02, 0x00, 0x00};
	assert_int_equal(tls_client_hello(cur_make(sh, sizeof sh), &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_NOT_CLIENT_HELLO);
	/* empty input: MORE */
	assert_int_equal(tls_client_hello(cur_make(NULL, 0), &h, &why), PARSE_MORE);
}

static void non_handshake_record_mid_hello(void **state)
{
	(void)state;
	struct bld *m = calloc(1, sizeof *m), *s = calloc(1, sizeof *s);
	build_hello(m, &defaults);
	wrap_records(s, m->d, 50, 50);
	put8(s, 21); /* alert in the middle */
	put16(s, 0x0303);
	put16(s, 2);
	put16(s, 0x0228);
	wrap_records(s, m->d + 50, m->n - 50, 16384);
	struct tls_hello h;
	enum tls_err why;
	assert_int_equal(parse(s, &h, &why), PARSE_BAD);
	assert_int_equal(why, TLS_NOT_HANDSHAKE);
	free(m);
	free(s);
}

static void looks_like(void **state)
{
	(void)state;
	const uint8_t a[] = {0x16, 0x03, 0x01};
	const uint8_t b[] = {0x16, 0x04};
	const uint8_t c[] = "GET / HTTP/1.1\r\n";
	assert_true(tls_looks_like(cur_make(a, 1)));
	assert_true(tls_looks_like(cur_make(a, 3)));
	assert_false(tls_looks_like(cur_make(b, 2)));
	assert_false(tls_looks_like(cur_make(c, 3)));
	assert_false(tls_looks_like(cur_make(a, 0)));
}

static void err_names(void **state)
{
	(void)state;
	for (int e = 0; e < TLS_ERR_COUNT_; e++) {
		assert_non_null(tls_err_name((enum tls_err)e));
		assert_string_not_equal(tls_err_name((enum tls_err)e), "unknown");
	}
	assert_string_equal(tls_err_name(TLS_SNI_MULTIPLE), "sni_multiple");
	assert_string_equal(tls_err_name(TLS_ERR_COUNT_), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(basic),
	    cmocka_unit_test(bytes_after_hello_not_consumed),
	    cmocka_unit_test(no_sni),
	    cmocka_unit_test(no_extensions_tls10),
	    cmocka_unit_test(split_three_records_byte_by_byte),
	    cmocka_unit_test(one_byte_records),
	    cmocka_unit_test(large_hello_2500),
	    cmocka_unit_test(hello_near_64k),
	    cmocka_unit_test(too_large),
	    cmocka_unit_test(sni_idn),
	    cmocka_unit_test(sni_nul),
	    cmocka_unit_test(sni_bad_names),
	    cmocka_unit_test(sni_two_names),
	    cmocka_unit_test(sni_empty_list),
	    cmocka_unit_test(dup_extension),
	    cmocka_unit_test(ech),
	    cmocka_unit_test(bad_legacy_version),
	    cmocka_unit_test(bad_session_id),
	    cmocka_unit_test(trailing),
	    cmocka_unit_test(inner_length_past_parent),
	    cmocka_unit_test(sslv2),
	    cmocka_unit_test(records_bad),
	    cmocka_unit_test(non_handshake_record_mid_hello),
	    cmocka_unit_test(looks_like),
	    cmocka_unit_test(err_names),
	};
	return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
