/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "quic.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

const char *quic_err_name(enum quic_err e)
{
	static const char *const names[QUIC_ERR_COUNT_] = {
	    [QUIC_OK] = "ok",
	    [QUIC_NOT_LONG_HEADER] = "not_long_header",
	    [QUIC_NOT_INITIAL] = "not_initial",
	    [QUIC_BAD_VERSION] = "bad_version",
	    [QUIC_BAD_LENGTH] = "bad_length",
	    [QUIC_DECRYPT] = "decrypt",
	    [QUIC_BAD_FRAME] = "bad_frame",
	    [QUIC_HELLO] = "hello",
	    [QUIC_REFUSED] = "refused",
	};
	if ((unsigned)e >= QUIC_ERR_COUNT_)
		return "unknown";
	return names[e];
}

#define QUIC_V1 0x00000001u
#define QUIC_V2 0x6b3343cfu
#define QUIC_TAG_LEN 16
#define QUIC_CRYPTO_MAX TLS_HELLO_MAX
#define QUIC_PLAIN_MAX 65536 /* a UDP datagram carries less */

struct quic_keys {
	uint8_t key[16], iv[12], hp[16];
};

/* RFC 9001 5.2 and RFC 9369 3.3.1. */
static const uint8_t quic_salt_v1[20] = {
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
};
static const uint8_t quic_salt_v2[20] = {
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
    0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
};

/* HKDF-SHA256, one mode (EXTRACT_ONLY or EXPAND_ONLY), through EVP_KDF. */
static bool quic_hkdf(int mode, const uint8_t *key, size_t klen, const uint8_t *salt, size_t slen,
                      const uint8_t *info, size_t ilen, uint8_t *out, size_t olen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[6], *p = params;
	bool ok = false;

	if (!ctx)
		goto done;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, klen);
	if (salt)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, slen);
	if (info)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, ilen);
	*p = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, olen, params) == 1;
done:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

/*
 * HKDF-Expand-Label (RFC 8446 7.1) with an empty context:
 * info = length(2) | label<7..255> = "tls13 " + label | context<0..255> = ""
 */
static bool quic_expand_label(const uint8_t *secret, const char *label, uint8_t *out, size_t olen)
{
	uint8_t info[2 + 1 + 255 + 1];
	size_t ll = strlen(label), n = 0;

	if (6 + ll > 255)
		return false;
	info[n++] = (uint8_t)(olen >> 8);
	info[n++] = (uint8_t)olen;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	return quic_hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, secret, 32, NULL, 0, info, n, out, olen);
}

/*
 * initial_secret = HKDF-Extract(salt, dcid)
 * client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
 * key/iv/hp = HKDF-Expand-Label(client_initial_secret, "quic key"/"quic iv"/"quic hp")
 * (v2: "quicv2 key"/"quicv2 iv"/"quicv2 hp")
 */
static bool quic_derive(uint32_t version, struct cur dcid, struct quic_keys *k)
{
	uint8_t initial[32], client[32];
	bool v2 = version == QUIC_V2, ok;

	ok = quic_hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, dcid.p, dcid.left,
	               v2 ? quic_salt_v2 : quic_salt_v1, 20, NULL, 0, initial, sizeof initial) &&
	     quic_expand_label(initial, "client in", client, sizeof client) &&
	     quic_expand_label(client, v2 ? "quicv2 key" : "quic key", k->key, sizeof k->key) &&
	     quic_expand_label(client, v2 ? "quicv2 iv" : "quic iv", k->iv, sizeof k->iv) &&
	     quic_expand_label(client, v2 ? "quicv2 hp" : "quic hp", k->hp, sizeof k->hp);
	explicit_bzero(initial, sizeof initial);
	explicit_bzero(client, sizeof client);
	return ok;
}

/* Header protection mask = AES-128-ECB(hp, sample)  (RFC 9001 5.4.3). */
static bool quic_hp_mask(const uint8_t *hp, const uint8_t *sample, uint8_t mask[16])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0;
	bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), NULL, hp, NULL) == 1 &&
	          EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	          EVP_EncryptUpdate(ctx, mask, &len, sample, 16) == 1 && len == 16;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* AEAD_AES_128_GCM open: plaintext into out (ctlen - 16 bytes). */
static bool quic_open(const struct quic_keys *k, const uint8_t *nonce, const uint8_t *aad,
                      size_t aadlen, const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t plen = ctlen - QUIC_TAG_LEN;
	int len = 0, fin = 0;
	bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
	          EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
	          EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, nonce) == 1 &&
	          EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) == 1 &&
	          EVP_DecryptUpdate(ctx, out, &len, ct, (int)plen) == 1 &&
	          EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, QUIC_TAG_LEN,
	                              (void *)(ct + plen)) == 1 &&
	          EVP_DecryptFinal_ex(ctx, out + len, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* Variable-length integer (RFC 9000 16): 2-bit length prefix, 1/2/4/8 bytes. */
static bool quic_varint(struct cur *c, uint64_t *v)
{
	struct cur save = *c;
	uint8_t b;
	if (!cur_u8(c, &b))
		return false;
	size_t n = (size_t)1 << (b >> 6);
	uint64_t x = b & 0x3f;
	for (size_t i = 1; i < n; i++) {
		if (!cur_u8(c, &b)) {
			*c = save;
			return false;
		}
		x = (x << 8) | b;
	}
	*v = x;
	return true;
}

/*
 * quic_initial()'s reassembly of one datagram: CRYPTO data by offset into
 * buf, with a byte map of what is filled. Frames may come in any order
 * (Chrome shuffles them) and overlap, but an overlap must repeat the same
 * bytes: two different hellos in one packet are refused.
 */
struct quic_crypto {
	uint8_t buf[QUIC_CRYPTO_MAX];
	uint8_t have[QUIC_CRYPTO_MAX / 8];
	enum quic_err err; /* why put refused a frame */
	enum tls_err tls_why;
};

static bool quic_crypto_put(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct quic_crypto *cr = arg;
	if (off > QUIC_CRYPTO_MAX || len > QUIC_CRYPTO_MAX - off) {
		cr->err = QUIC_HELLO;
		cr->tls_why = TLS_TOO_LARGE;
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		size_t o = (size_t)off + i;
		uint8_t bit = (uint8_t)(1u << (o % 8));
		if ((cr->have[o / 8] & bit) && cr->buf[o] != p[i]) {
			cr->err = QUIC_BAD_FRAME;
			return false;
		}
		cr->buf[o] = p[i];
		cr->have[o / 8] |= bit;
	}
	return true;
}

/*
 * Frames of an Initial packet (RFC 9000 12.4, 19): PADDING(0x00), PING(0x01),
 * ACK(0x02/0x03), CRYPTO(0x06), CONNECTION_CLOSE(0x1c). Anything else is not
 * allowed in an Initial and refused.
 */
static enum quic_err quic_frames(struct cur p, struct quic_initial_info *info, quic_crypto_fn fn,
                                 void *arg)
{
	uint64_t type, a, b, n, off, len;
	struct cur data;

	while (p.left) {
		if (!quic_varint(&p, &type))
			return QUIC_BAD_FRAME;
		switch (type) {
		case 0x00:
		case 0x01:
			break;
		case 0x02:
		case 0x03:
			/* largest, delay, range count, first range, ranges, [ECN x3] */
			if (!quic_varint(&p, &a) || !quic_varint(&p, &a) || !quic_varint(&p, &n) ||
			    !quic_varint(&p, &a))
				return QUIC_BAD_FRAME;
			if (n > p.left)
				return QUIC_BAD_FRAME;
			for (uint64_t i = 0; i < n; i++)
				if (!quic_varint(&p, &a) || !quic_varint(&p, &b))
					return QUIC_BAD_FRAME;
			if (type == 0x03 &&
			    (!quic_varint(&p, &a) || !quic_varint(&p, &a) || !quic_varint(&p, &a)))
				return QUIC_BAD_FRAME;
			break;
		case 0x06:
			if (!quic_varint(&p, &off) || !quic_varint(&p, &len) || len > p.left)
				return QUIC_BAD_FRAME;
			cur_sub(&p, (size_t)len, &data);
			info->frames++;
			if (!fn(arg, off, data.p, data.left))
				return QUIC_REFUSED;
			break;
		case 0x1c:
			/* error code, frame type, reason phrase<varint> */
			if (!quic_varint(&p, &a) || !quic_varint(&p, &a) ||
			    !quic_varint(&p, &len) ||
			    !cur_skip(&p, len > p.left ? SIZE_MAX : (size_t)len))
				return QUIC_BAD_FRAME;
			break;
		default:
			return QUIC_BAD_FRAME;
		}
	}
	return QUIC_OK;
}

/*
 * Initial packet (RFC 9000 17.2.2):
 * 1|1|type(2)|reserved(2)|pn_len(2) version(4) dcid<0..20> scid<0..20>
 * token<varint> length(varint) packet_number(1..4) payload(length - pn_len)
 * type is 0b00 in v1, 0b01 in v2. Header protection covers the low 4 bits
 * of byte 0 and the packet number; the sample starts 4 bytes after the
 * packet number's start.
 *
 * One packet at the start of *in; on QUIC_OK *in moves past it. The first
 * packet of a datagram fills info's version and DCID; a later (coalesced)
 * one that is not an Initial of that version and DCID gives
 * QUIC_NOT_INITIAL before anything is decrypted.
 */
static enum quic_err quic_packet(struct cur *in, bool first_pkt, struct quic_initial_info *info,
                                 quic_crypto_fn fn, void *arg)
{
	struct cur c = *in, dcid, scid, token, pkt = {0};
	struct quic_keys keys;
	uint8_t first, hdr[1 + 4 + 1 + QUIC_CID_MAX + 1 + QUIC_CID_MAX + 8 + 8 + 8 + 4];
	uint8_t mask[16], nonce[12], plain[QUIC_PLAIN_MAX];
	uint32_t version;
	uint64_t tlen, plen;
	enum quic_err err = QUIC_OK;
	bool have_keys = false;

	if (!cur_u8(&c, &first) || !(first & 0x80))
		return QUIC_NOT_LONG_HEADER;
	if (!cur_u32(&c, &version))
		return first_pkt ? QUIC_BAD_LENGTH : QUIC_NOT_INITIAL;
	if (version != QUIC_V1 && version != QUIC_V2)
		return first_pkt ? QUIC_BAD_VERSION : QUIC_NOT_INITIAL;
	if (!(first & 0x40)) /* fixed bit */
		return QUIC_NOT_LONG_HEADER;
	if (((first >> 4) & 3) != (version == QUIC_V2 ? 1 : 0))
		return QUIC_NOT_INITIAL;
	if (!cur_sub_u8len(&c, &dcid) || dcid.left > QUIC_CID_MAX)
		return first_pkt ? QUIC_BAD_LENGTH : QUIC_NOT_INITIAL;
	if (first_pkt) {
		info->version = version;
		info->dcid_len = dcid.left;
		memcpy(info->dcid, dcid.p, dcid.left);
	} else if (version != info->version || dcid.left != info->dcid_len ||
	           memcmp(dcid.p, info->dcid, dcid.left) != 0) {
		return QUIC_NOT_INITIAL; /* not this connection's: the server drops it too */
	}
	if (!cur_sub_u8len(&c, &scid) || scid.left > QUIC_CID_MAX || !quic_varint(&c, &tlen) ||
	    tlen > c.left)
		return QUIC_BAD_LENGTH;
	cur_sub(&c, (size_t)tlen, &token);
	if (!quic_varint(&c, &plen) || plen > c.left || plen < 4 + 16 || plen - 4 > sizeof plain)
		return QUIC_BAD_LENGTH;
	size_t pn_off = (size_t)(c.p - in->p);
	struct cur whole = *in;
	if (!cur_sub(&whole, pn_off + (size_t)plen, &pkt))
		return QUIC_BAD_LENGTH;

	if (!quic_derive(version, dcid, &keys)) {
		err = QUIC_DECRYPT;
		goto done;
	}
	have_keys = true;

	/* Sample: 16 bytes at pn_off + 4 (plen >= 20 guarantees they exist). */
	struct cur s = pkt;
	const uint8_t *sample = NULL, *pn_bytes = NULL;
	if (!cur_skip(&s, pn_off + 4) || !cur_bytes(&s, 16, &sample)) {
		err = QUIC_BAD_LENGTH;
		goto done;
	}
	if (!quic_hp_mask(keys.hp, sample, mask)) {
		err = QUIC_DECRYPT;
		goto done;
	}
	first ^= mask[0] & 0x0f;
	size_t pn_len = (size_t)(first & 3) + 1;

	/* The unprotected header is the AAD: first byte, fields as sent, clear pn. */
	size_t hlen = pn_off + pn_len;
	if (hlen > sizeof hdr) {
		err = QUIC_BAD_LENGTH;
		goto done;
	}
	s = pkt;
	if (!cur_copy(&s, hdr, pn_off) || !cur_bytes(&s, pn_len, &pn_bytes)) {
		err = QUIC_BAD_LENGTH;
		goto done;
	}
	hdr[0] = first;
	uint64_t pn = 0;
	for (size_t i = 0; i < pn_len; i++) {
		hdr[pn_off + i] = pn_bytes[i] ^ mask[1 + i];
		pn = (pn << 8) | hdr[pn_off + i];
	}
	memcpy(nonce, keys.iv, sizeof nonce);
	for (size_t i = 0; i < 8; i++)
		nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));

	size_t ctlen = s.left; /* payload + tag */
	if (ctlen < QUIC_TAG_LEN + 1) {
		err = QUIC_BAD_LENGTH;
		goto done;
	}
	if (!quic_open(&keys, nonce, hdr, hlen, s.p, ctlen, plain)) {
		err = QUIC_DECRYPT;
		goto done;
	}
	info->initials++;
	err = quic_frames(cur_make(plain, ctlen - QUIC_TAG_LEN), info, fn, arg);
	if (err == QUIC_OK) {
		cur_skip(in, pkt.left);
		info->consumed += pkt.left;
	}
done:
	if (have_keys)
		explicit_bzero(&keys, sizeof keys);
	return err;
}

enum parse quic_initial_crypto(struct cur datagram, struct quic_initial_info *info,
                               quic_crypto_fn fn, void *arg, enum quic_err *why)
{
	struct cur c = datagram;
	memset(info, 0, sizeof *info);
	enum quic_err err = quic_packet(&c, true, info, fn, arg);
	/*
	 * Coalesced packets (RFC 9000 12.2): a client's first flight may put
	 * 0-RTT after its Initial, or pad with zeros; only Initials are read.
	 * A datagram holds at least one byte per packet: bounded by its size.
	 */
	while (err == QUIC_OK && c.left) {
		enum quic_err e = quic_packet(&c, false, info, fn, arg);
		if (e == QUIC_NOT_LONG_HEADER || e == QUIC_NOT_INITIAL)
			break;
		err = e;
	}
	if (why)
		*why = err;
	return err == QUIC_OK ? PARSE_OK : PARSE_BAD;
}

/* One datagram, reassembled on its own: the ClientHello if it is all here. */
enum parse quic_initial(struct cur datagram, struct tls_hello *out, enum quic_err *why,
                        enum tls_err *tls_why)
{
	struct quic_crypto cr;
	struct quic_initial_info info;
	enum quic_err err;
	enum tls_err terr = TLS_OK;
	enum parse r;

	memset(out, 0, sizeof *out);
	memset(cr.have, 0, sizeof cr.have);
	cr.err = QUIC_OK;
	cr.tls_why = TLS_OK;
	r = quic_initial_crypto(datagram, &info, quic_crypto_put, &cr, &err);
	if (r == PARSE_BAD) {
		if (err == QUIC_REFUSED) {
			err = cr.err;
			terr = cr.tls_why;
		}
		goto done;
	}
	/* The contiguous prefix from offset 0 is what TLS can read. */
	size_t prefix = 0;
	while (prefix < QUIC_CRYPTO_MAX && (cr.have[prefix / 8] & (1u << (prefix % 8))))
		prefix++;
	r = tls_handshake_message(cur_make(cr.buf, prefix), out, &terr);
	out->consumed = info.consumed;
	if (r == PARSE_BAD)
		err = QUIC_HELLO;
done:
	if (r == PARSE_BAD)
		memset(out, 0, sizeof *out);
	if (why)
		*why = err;
	if (tls_why)
		*tls_why = terr;
	return err == QUIC_OK ? r : PARSE_BAD;
}
