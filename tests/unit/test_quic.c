/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QUIC Initial: the RFC 9001 Appendix A.2 client Initial, built here by
 * encrypting the RFC's plaintext with the RFC's keys (and checked against the
 * RFC's protected bytes), then packets of our own under keys this file
 * derives independently (HMAC-based HKDF), for MORE / frame / hello cases.
 */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "quic.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		assert_true(n < cap);
		assert_int_equal(sscanf(h, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* RFC 9001 A.1 / A.2 */
static const char rfc_dcid[] = "8394c8f03e515708";
static const char rfc_key[] = "1f369613dd76d5467730efcbe3b1a22d";
static const char rfc_iv[] = "fa044b2f42a3fd3b46fb255c";
static const char rfc_hp[] = "9f50449e04a0e810283a1e9933adedd2";
static const char rfc_header[] = "c300000001088394c8f03e5157080000449e00000002";
static const char rfc_crypto[] = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
                                 "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
                                 "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
                                 "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
                                 "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
                                 "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
                                 "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
                                 "75300901100f088394c8f03e51570806048000ffff";
static const char rfc_protected_prefix[] =
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11";
static const char rfc_protected_suffix[] =
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934";

struct keys {
	uint8_t key[16], iv[12], hp[16];
};

/* HKDF-Expand-Label, one HMAC block (all outputs here are <= 32 bytes). */
static void expand_label(const uint8_t prk[32], const char *label, uint8_t *out, size_t len)
{
	uint8_t info[64], t[32];
	size_t n = 0, ll = strlen(label);
	unsigned tl = 0;
	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	info[n++] = 1;
	assert_non_null(HMAC(EVP_sha256(), prk, 32, info, n, t, &tl));
	memcpy(out, t, len);
}

static void derive(bool v2, const uint8_t *dcid, size_t dlen, struct keys *k)
{
	static const uint8_t salt1[] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
	                                0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
	static const uint8_t salt2[] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
	                                0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
	uint8_t initial[32], client[32];
	unsigned l = 0;
	assert_non_null(HMAC(EVP_sha256(), v2 ? salt2 : salt1, 20, dcid, dlen, initial, &l));
	expand_label(initial, "client in", client, 32);
	expand_label(client, v2 ? "quicv2 key" : "quic key", k->key, 16);
	expand_label(client, v2 ? "quicv2 iv" : "quic iv", k->iv, 12);
	expand_label(client, v2 ? "quicv2 hp" : "quic hp", k->hp, 16);
}

/*
 * Protect: header (pn_len 4 at its end) + plaintext -> packet in out.
 * Returns its length.
 */
static size_t protect(const struct keys *k, const uint8_t *hdr, size_t hlen, uint32_t pn,
                      const uint8_t *plain, size_t plen, uint8_t *out)
{
	uint8_t nonce[12], mask[16];
	int len = 0, fin = 0;
	memcpy(out, hdr, hlen);
	memcpy(nonce, k->iv, 12);
	for (int i = 0; i < 4; i++)
		nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, k->key, nonce), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &len, hdr, (int)hlen), 1);
	assert_int_equal(EVP_EncryptUpdate(c, out + hlen, &len, plain, (int)plen), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + hlen + len, &fin), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + hlen + plen), 1);
	EVP_CIPHER_CTX_free(c);
	c = EVP_CIPHER_CTX_new();
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, k->hp, NULL), 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	assert_int_equal(EVP_EncryptUpdate(c, mask, &len, out + hlen, 16), 1);
	EVP_CIPHER_CTX_free(c);
	out[0] ^= mask[0] & 0x0f;
	for (int i = 0; i < 4; i++)
		out[hlen - 4 + i] ^= mask[1 + i];
	return hlen + plen + 16;
}

static size_t rfc_packet(uint8_t *pkt)
{
	struct keys k;
	uint8_t hdr[64], plain[1162] = {0};
	size_t hlen = unhex(rfc_header, hdr, sizeof hdr);
	unhex(rfc_key, k.key, 16);
	unhex(rfc_iv, k.iv, 12);
	unhex(rfc_hp, k.hp, 16);
	unhex(rfc_crypto, plain, sizeof plain);
	return protect(&k, hdr, hlen, 2, plain, sizeof plain, pkt);
}

static void rfc9001_a2(void **state)
{
	(void)state;
	uint8_t pkt[1300], want[64], dcid[8];
	struct keys k, mine;
	size_t n = rfc_packet(pkt);
	assert_int_equal(n, 1200);
	size_t pl = unhex(rfc_protected_prefix, want, sizeof want);
	assert_memory_equal(pkt, want, pl);
	size_t sl = unhex(rfc_protected_suffix, want, sizeof want);
	assert_memory_equal(pkt + n - sl, want, sl);
	/* this file's derivation agrees with the RFC's keys */
	unhex(rfc_dcid, dcid, 8);
	unhex(rfc_key, k.key, 16);
	unhex(rfc_iv, k.iv, 12);
	unhex(rfc_hp, k.hp, 16);
	derive(false, dcid, 8, &mine);
	assert_memory_equal(&mine, &k, sizeof k);

	struct tls_hello h;
	enum quic_err why = QUIC_ERR_COUNT_;
	enum tls_err twhy = TLS_ERR_COUNT_;
	assert_int_equal(quic_initial(cur_make(pkt, n), &h, &why, &twhy), PARSE_OK);
	assert_int_equal(why, QUIC_OK);
	assert_int_equal(twhy, TLS_OK);
	assert_true(h.has_sni);
	assert_string_equal(h.sni, "example.com");
	assert_int_equal(h.max_version, 0x0304);
	assert_int_equal(h.hello_len, 241);
	assert_int_equal(h.consumed, 1200);
}

static void rfc_tampered(void **state)
{
	(void)state;
	uint8_t pkt[1300];
	size_t n = rfc_packet(pkt);
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	/* a flipped ciphertext bit, tag, or header byte fails authentication */
	size_t spots[] = {100, 600, n - 1, 10 /* inside the DCID */};
	for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
		pkt[spots[i]] ^= 0x20;
		assert_int_equal(quic_initial(cur_make(pkt, n), &h, &why, &twhy), PARSE_BAD);
		assert_int_equal(why, QUIC_DECRYPT);
		assert_false(h.has_sni);
		pkt[spots[i]] ^= 0x20;
	}
	/* every truncation is refused, none crashes or passes */
	for (size_t cut = 0; cut < n; cut++) {
		enum parse r = quic_initial(cur_make(pkt, cut), &h, &why, &twhy);
		if (r != PARSE_BAD)
			fail_msg("cut %zu: %d", cut, r);
		if (cut > 22 && why != QUIC_BAD_LENGTH)
			fail_msg("cut %zu: %s", cut, quic_err_name(why));
	}
	/* trailing bytes (a coalesced packet) after it are ignored */
	memset(pkt + n, 0, 50);
	assert_int_equal(quic_initial(cur_make(pkt, n + 50), &h, &why, &twhy), PARSE_OK);
	assert_int_equal(h.consumed, 1200);
}

static void headers_refused(void **state)
{
	(void)state;
	uint8_t pkt[1300];
	size_t n = rfc_packet(pkt);
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	uint8_t t[1300];

	memcpy(t, pkt, n);
	t[0] = 0x40; /* short header */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_NOT_LONG_HEADER);
	memcpy(t, pkt, n);
	t[0] = 0x80 | (pkt[0] & 0x3f); /* fixed bit clear */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_NOT_LONG_HEADER);
	memcpy(t, pkt, n);
	t[0] = 0xe0 | (pkt[0] & 0x0f); /* v1 Handshake packet */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_NOT_INITIAL);
	memcpy(t, pkt, n);
	t[4] = 0x02; /* version 2, not 0x6b3343cf */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_VERSION);
	memset(t + 1, 0, 4); /* version negotiation */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_VERSION);
	memcpy(t, pkt, n);
	t[5] = 21; /* DCID length over 20 */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_LENGTH);
	memcpy(t, pkt, n);
	t[16] = 0x45; /* Length 0x059e: past the datagram */
	assert_int_equal(quic_initial(cur_make(t, n), &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_LENGTH);
}

/* ---- our own Initials ---------------------------------------------------- */

static const uint8_t our_dcid[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};

static size_t dcid_packet(bool v2, const uint8_t *dcid, size_t dlen, const uint8_t *frames,
                          size_t flen, size_t pad_to, uint8_t *out)
{
	struct keys k;
	uint8_t hdr[64], plain[1400] = {0};
	size_t h = 0;
	size_t plen = flen < pad_to ? pad_to : flen; /* PADDING up to a decent size */
	assert_true(plen <= sizeof plain);
	memcpy(plain, frames, flen);
	derive(v2, dcid, dlen, &k);
	hdr[h++] = v2 ? 0xd3 : 0xc3;
	if (v2) {
		memcpy(hdr + h, "\x6b\x33\x43\xcf", 4);
	} else {
		memcpy(hdr + h, "\x00\x00\x00\x01", 4);
	}
	h += 4;
	hdr[h++] = (uint8_t)dlen;
	memcpy(hdr + h, dcid, dlen);
	h += dlen;
	hdr[h++] = 3;
	memcpy(hdr + h, "\xaa\xbb\xcc", 3);
	h += 3;
	hdr[h++] = 0; /* token */
	size_t length = 4 + plen + 16;
	hdr[h++] = (uint8_t)(0x40 | (length >> 8));
	hdr[h++] = (uint8_t)length;
	memcpy(hdr + h, "\x00\x00\x00\x00", 4);
	h += 4;
	return protect(&k, hdr, h, 0, plain, plen, out);
}

static size_t our_packet(bool v2, const uint8_t *frames, size_t flen, uint8_t *out)
{
	return dcid_packet(v2, our_dcid, sizeof our_dcid, frames, flen, 1100, out);
}

/* CRYPTO frame with 2-byte varints for offset and length. */
static size_t crypto(uint8_t *f, size_t off, const uint8_t *d, size_t len)
{
	size_t n = 0;
	f[n++] = 0x06;
	f[n++] = (uint8_t)(0x40 | (off >> 8));
	f[n++] = (uint8_t)off;
	f[n++] = (uint8_t)(0x40 | (len >> 8));
	f[n++] = (uint8_t)len;
	memcpy(f + n, d, len);
	return n + len;
}

static size_t rfc_hello(uint8_t *out)
{
	uint8_t c[300];
	size_t n = unhex(rfc_crypto, c, sizeof c);
	memcpy(out, c + 4, n - 4); /* skip the CRYPTO frame header */
	return n - 4;
}

static enum parse run(const uint8_t *frames, size_t flen, bool v2, struct tls_hello *h,
                      enum quic_err *why, enum tls_err *twhy)
{
	uint8_t pkt[1500];
	size_t n = our_packet(v2, frames, flen, pkt);
	return quic_initial(cur_make(pkt, n), h, why, twhy);
}

static void shuffled_frames(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200];
	size_t hl = rfc_hello(hello), n = 0;
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	/* Chrome-style: pieces out of order, with PING, PADDING and an ACK between */
	n += crypto(f + n, 100, hello + 100, hl - 100);
	f[n++] = 0x01;
	f[n++] = 0x00;
	f[n++] = 0x00;
	n += crypto(f + n, 40, hello + 40, 60);
	f[n++] = 0x02; /* ACK: largest 0, delay 0, 1 range, first 0, then 1 gap/len */
	f[n++] = 0x00;
	f[n++] = 0x00;
	f[n++] = 0x01;
	f[n++] = 0x00;
	f[n++] = 0x00;
	f[n++] = 0x00;
	n += crypto(f + n, 0, hello, 50); /* overlaps 40..50 with identical bytes */
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_OK);
	assert_string_equal(h.sni, "example.com");
	/* and in QUIC v2 */
	assert_int_equal(run(f, n, true, &h, &why, &twhy), PARSE_OK);
	assert_string_equal(h.sni, "example.com");
}

static void hello_continues(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200];
	size_t hl = rfc_hello(hello), n;
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	n = crypto(f, 0, hello, 120);
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_MORE);
	assert_int_equal(why, QUIC_OK);
	/* a gap at the start: nothing to read yet */
	n = crypto(f, 10, hello + 10, hl - 10);
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_MORE);
	/* no CRYPTO at all */
	f[0] = 0x01;
	assert_int_equal(run(f, 1, false, &h, &why, &twhy), PARSE_MORE);
}

static void frames_refused(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200];
	size_t hl = rfc_hello(hello), n;
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	/* a STREAM frame has no business in an Initial */
	n = crypto(f, 0, hello, hl);
	f[n++] = 0x08;
	f[n++] = 0x00;
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_FRAME);
	/* overlapping CRYPTO data that disagrees */
	n = crypto(f, 0, hello, hl);
	uint8_t other[300];
	memcpy(other, hello, hl);
	memcpy(other + 0x3b, "EVIL", 4);
	n += crypto(f + n, 0, other, hl);
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_FRAME);
	/* CRYPTO length past the payload */
	n = crypto(f, 0, hello, hl);
	f[3] = 0x7f;
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_BAD_FRAME);
	/* CRYPTO offset far beyond any hello */
	n = 0;
	f[n++] = 0x06;
	f[n++] = 0x80;
	f[n++] = 0x10;
	f[n++] = 0x00;
	f[n++] = 0x00;
	f[n++] = 0x01;
	f[n++] = 0x00;
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_HELLO);
	assert_int_equal(twhy, TLS_TOO_LARGE);
}

static void bad_hello_inside(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200];
	size_t hl = rfc_hello(hello), n;
	struct tls_hello h;
	enum quic_err why;
	enum tls_err twhy;
	/* the SNI is at a fixed place in the RFC hello: "example.com" -> "192.0.2.123" */
	uint8_t *sni = memmem(hello, hl, "example.com", 11);
	assert_non_null(sni);
	memcpy(sni, "192.0.2.123", 11);
	n = crypto(f, 0, hello, hl);
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_HELLO);
	assert_int_equal(twhy, TLS_SNI_BAD_NAME);
	/* not a ClientHello */
	rfc_hello(hello);
	hello[0] = 2;
	n = crypto(f, 0, hello, hl);
	assert_int_equal(run(f, n, false, &h, &why, &twhy), PARSE_BAD);
	assert_int_equal(why, QUIC_HELLO);
	assert_int_equal(twhy, TLS_NOT_CLIENT_HELLO);
}

/* ---- one datagram at a time: quic_initial_crypto ------------------------ */

/* What a caller keeps across datagrams: the CRYPTO stream and its byte map. */
struct stream {
	uint8_t buf[4096];
	bool have[4096];
	unsigned calls;
	bool conflict;
};

static bool put(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct stream *st = arg;
	st->calls++;
	if (off > sizeof st->buf || len > sizeof st->buf - off)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (st->have[off + i] && st->buf[off + i] != p[i]) {
			st->conflict = true;
			return false;
		}
		st->buf[off + i] = p[i];
		st->have[off + i] = true;
	}
	return true;
}

static enum parse stream_hello(const struct stream *st, struct tls_hello *h)
{
	size_t n = 0;
	enum tls_err twhy;
	while (n < sizeof st->buf && st->have[n])
		n++;
	return tls_handshake_message(cur_make(st->buf, n), h, &twhy);
}

static enum parse feed(struct stream *st, const uint8_t *pkt, size_t n,
                       struct quic_initial_info *info, enum quic_err *why)
{
	return quic_initial_crypto(cur_make(pkt, n), info, put, st, why);
}

static void split_over_datagrams(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200], p1[1500], p2[1500];
	size_t hl = rfc_hello(hello), half = hl / 2;
	struct quic_initial_info i1, i2;
	struct tls_hello h;
	enum quic_err why;
	/* datagram 1: the first half; datagram 2: the second half */
	size_t n1 = our_packet(false, f, crypto(f, 0, hello, half), p1);
	size_t n2 = our_packet(false, f, crypto(f, half, hello + half, hl - half), p2);

	/* neither alone is a whole hello */
	assert_int_equal(quic_initial(cur_make(p1, n1), &h, &why, NULL), PARSE_MORE);
	assert_int_equal(quic_initial(cur_make(p2, n2), &h, &why, NULL), PARSE_MORE);

	/* in order */
	static struct stream st;
	memset(&st, 0, sizeof st);
	assert_int_equal(feed(&st, p1, n1, &i1, &why), PARSE_OK);
	assert_int_equal(why, QUIC_OK);
	assert_int_equal(i1.version, 1);
	assert_int_equal(i1.dcid_len, sizeof our_dcid);
	assert_memory_equal(i1.dcid, our_dcid, sizeof our_dcid);
	assert_int_equal(i1.initials, 1);
	assert_int_equal(i1.frames, 1);
	assert_int_equal(i1.consumed, n1);
	assert_int_equal(stream_hello(&st, &h), PARSE_MORE);
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_OK);
	assert_int_equal(i2.dcid_len, i1.dcid_len);
	assert_memory_equal(i2.dcid, i1.dcid, i1.dcid_len);
	assert_int_equal(stream_hello(&st, &h), PARSE_OK);
	assert_string_equal(h.sni, "example.com");

	/* out of order: the second half first leaves a gap at 0 */
	memset(&st, 0, sizeof st);
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_OK);
	assert_int_equal(stream_hello(&st, &h), PARSE_MORE);
	/* the same datagram again: identical bytes, nothing new */
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_OK);
	assert_false(st.conflict);
	assert_int_equal(stream_hello(&st, &h), PARSE_MORE);
	assert_int_equal(feed(&st, p1, n1, &i1, &why), PARSE_OK);
	assert_int_equal(stream_hello(&st, &h), PARSE_OK);
	assert_string_equal(h.sni, "example.com");

	/* a second datagram that rewrites bytes already seen: the caller's refusal */
	uint8_t other[300];
	memcpy(other, hello, hl);
	memcpy(other + half - 4, "EVIL", 4);
	n2 = our_packet(false, f, crypto(f, half - 8, other + half - 8, hl - half + 8), p2);
	memset(&st, 0, sizeof st);
	assert_int_equal(feed(&st, p1, n1, &i1, &why), PARSE_OK);
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_BAD);
	assert_int_equal(why, QUIC_REFUSED);
	assert_true(st.conflict);
}

static void dcid_reported(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200], p1[1500], p2[1500];
	static const uint8_t other_dcid[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33};
	size_t hl = rfc_hello(hello), half = hl / 2;
	struct quic_initial_info i1, i2;
	enum quic_err why;
	static struct stream st;
	memset(&st, 0, sizeof st);
	size_t n1 = our_packet(false, f, crypto(f, 0, hello, half), p1);
	size_t n2 = dcid_packet(false, other_dcid, sizeof other_dcid, f,
	                        crypto(f, half, hello + half, hl - half), 1100, p2);
	assert_int_equal(feed(&st, p1, n1, &i1, &why), PARSE_OK);
	/* it opens (its own keys) but its DCID is not the first one's */
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_OK);
	assert_int_equal(i2.dcid_len, sizeof other_dcid);
	assert_memory_equal(i2.dcid, other_dcid, sizeof other_dcid);
	assert_false(i1.dcid_len == i2.dcid_len && memcmp(i1.dcid, i2.dcid, i1.dcid_len) == 0);
	/* a datagram that fails to open still tells which DCID it claimed */
	p2[n2 - 1] ^= 1;
	assert_int_equal(feed(&st, p2, n2, &i2, &why), PARSE_BAD);
	assert_int_equal(why, QUIC_DECRYPT);
	assert_int_equal(i2.dcid_len, sizeof other_dcid);
	assert_memory_equal(i2.dcid, other_dcid, sizeof other_dcid);
	/* v2 is reported as such */
	n1 = our_packet(true, f, crypto(f, 0, hello, half), p1);
	assert_int_equal(feed(&st, p1, n1, &i1, &why), PARSE_OK);
	assert_int_equal(i1.version, 0x6b3343cf);
}

static void coalesced(void **state)
{
	(void)state;
	uint8_t hello[300], f[1200], d[3000];
	size_t hl = rfc_hello(hello), half = hl / 2, n;
	struct quic_initial_info info;
	struct tls_hello h;
	enum quic_err why;
	static struct stream st;
	/* two Initials of one connection in one datagram, then a 0-RTT packet and zeros */
	n = dcid_packet(false, our_dcid, sizeof our_dcid, f, crypto(f, 0, hello, half), 100, d);
	size_t first_len = n;
	n += dcid_packet(false, our_dcid, sizeof our_dcid, f,
	                 crypto(f, half, hello + half, hl - half), 200, d + n);
	size_t initials_len = n;
	d[n++] = 0xd0; /* v1 long header, type 01 = 0-RTT */
	memcpy(d + n, "\x00\x00\x00\x01", 4);
	n += 4;
	memset(d + n, 0x5a, 60);
	n += 60;
	memset(d + n, 0, 100);
	n += 100;
	memset(&st, 0, sizeof st);
	assert_int_equal(quic_initial_crypto(cur_make(d, n), &info, put, &st, &why), PARSE_OK);
	assert_int_equal(info.initials, 2);
	assert_int_equal(info.frames, 2);
	assert_int_equal(info.consumed, initials_len);
	assert_int_equal(stream_hello(&st, &h), PARSE_OK);
	assert_string_equal(h.sni, "example.com");
	assert_int_equal(quic_initial(cur_make(d, n), &h, &why, NULL), PARSE_OK);
	assert_string_equal(h.sni, "example.com");

	/* an Initial of another DCID after the first is not read */
	static const uint8_t other_dcid[] = {9, 8, 7, 6, 5, 4, 3, 2};
	n = first_len;
	n += dcid_packet(false, other_dcid, sizeof other_dcid, f,
	                 crypto(f, half, hello + half, hl - half), 200, d + n);
	memset(&st, 0, sizeof st);
	assert_int_equal(quic_initial_crypto(cur_make(d, n), &info, put, &st, &why), PARSE_OK);
	assert_int_equal(info.initials, 1);
	assert_int_equal(info.consumed, first_len);
	assert_int_equal(stream_hello(&st, &h), PARSE_MORE);

	/* a coalesced Initial of the same DCID that does not open: refused */
	n = first_len;
	n += dcid_packet(false, our_dcid, sizeof our_dcid, f,
	                 crypto(f, half, hello + half, hl - half), 200, d + n);
	d[n - 1] ^= 1;
	memset(&st, 0, sizeof st);
	assert_int_equal(quic_initial_crypto(cur_make(d, n), &info, put, &st, &why), PARSE_BAD);
	assert_int_equal(why, QUIC_DECRYPT);
}

static void names(void **state)
{
	(void)state;
	for (int e = 0; e < QUIC_ERR_COUNT_; e++)
		assert_string_not_equal(quic_err_name((enum quic_err)e), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc9001_a2),       cmocka_unit_test(rfc_tampered),
	    cmocka_unit_test(headers_refused),  cmocka_unit_test(shuffled_frames),
	    cmocka_unit_test(hello_continues),  cmocka_unit_test(frames_refused),
	    cmocka_unit_test(bad_hello_inside), cmocka_unit_test(split_over_datagrams),
	    cmocka_unit_test(dcid_reported),    cmocka_unit_test(coalesced),
	    cmocka_unit_test(names),
	};
	return cmocka_run_group_tests_name("quic", tests, NULL, NULL);
}
