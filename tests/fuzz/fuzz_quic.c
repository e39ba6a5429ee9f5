/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * quic_initial twice per input: on the bytes as they are (header parsing,
 * lengths, decryption failures), and with the bytes as the decrypted payload
 * of an Initial this harness protects under a fixed DCID, so the fuzzer
 * reaches the frame and ClientHello code behind the AEAD.
 * Invariants: consumed <= size; an SNI is normalised.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
/* RFC 9001 A.1 client keys for that DCID */
static const uint8_t key[16] = {0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46,
                                0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d};
static const uint8_t iv[12] = {0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3,
                               0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c};
static const uint8_t hp[16] = {0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10,
                               0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad, 0xed, 0xd2};

#define PLAIN_MAX 1400

static size_t protect(const uint8_t *plain, size_t plen, uint8_t *out)
{
	/* 1100 | 0001 v1 | dcid | scid<0> | token<0> | length(2) | pn(4) = 0 */
	size_t h = 0, length = 4 + plen + 16;
	out[h++] = 0xc3;
	memcpy(out + h, "\x00\x00\x00\x01", 4);
	h += 4;
	out[h++] = sizeof dcid;
	memcpy(out + h, dcid, sizeof dcid);
	h += sizeof dcid;
	out[h++] = 0;
	out[h++] = 0;
	out[h++] = (uint8_t)(0x40 | (length >> 8));
	out[h++] = (uint8_t)length;
	memset(out + h, 0, 4);
	h += 4;

	uint8_t mask[16];
	int len = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &len, out, (int)h) != 1 ||
	    EVP_EncryptUpdate(c, out + h, &len, plain, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(c, out + h + len, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + h + plen) != 1)
		abort();
	EVP_CIPHER_CTX_free(c);
	c = EVP_CIPHER_CTX_new();
	if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_EncryptUpdate(c, mask, &len, out + h, 16) != 1)
		abort();
	EVP_CIPHER_CTX_free(c);
	out[0] ^= mask[0] & 0x0f;
	for (int i = 0; i < 4; i++)
		out[h - 4 + i] ^= mask[1 + i];
	return h + plen + 16;
}

static void check(enum parse r, enum quic_err why, enum tls_err twhy, const struct tls_hello *h,
                  size_t size)
{
	if (why >= QUIC_ERR_COUNT_ || twhy >= TLS_ERR_COUNT_)
		abort();
	if ((r == PARSE_BAD) != (why != QUIC_OK))
		abort();
	if ((why == QUIC_HELLO) != (twhy != TLS_OK))
		abort();
	if (r != PARSE_OK)
		return;
	if (h->consumed > size)
		abort();
	if (h->has_sni) {
		char again[NAME_MAX_LEN + 1];
		enum name_err e;
		if (!name_normalize(h->sni, strlen(h->sni), again, &e) || strcmp(again, h->sni))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello h;
	enum quic_err why = QUIC_ERR_COUNT_;
	enum tls_err twhy = TLS_ERR_COUNT_;
	static uint8_t pkt[64 + PLAIN_MAX + 16];
	uint8_t plain[PLAIN_MAX];

	enum parse r = quic_initial(cur_make(data, size), &h, &why, &twhy);
	check(r, why, twhy, &h, size);

	/* as a payload: at least 20 bytes so the header-protection sample exists */
	size_t plen = size > PLAIN_MAX ? PLAIN_MAX : size;
	memset(plain, 0, sizeof plain);
	memcpy(plain, data, plen);
	if (plen < 20)
		plen = 20;
	size_t n = protect(plain, plen, pkt);
	why = QUIC_ERR_COUNT_;
	twhy = TLS_ERR_COUNT_;
	r = quic_initial(cur_make(pkt, n), &h, &why, &twhy);
	check(r, why, twhy, &h, n);
	if (why == QUIC_DECRYPT || why == QUIC_BAD_LENGTH || why == QUIC_NOT_INITIAL)
		abort(); /* we protected it correctly: it must open */
	return 0;
}
