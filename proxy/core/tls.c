/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "tls.h"

#include <string.h>

const char *tls_err_name(enum tls_err e)
{
	static const char *const names[TLS_ERR_COUNT_] = {
	    [TLS_OK] = "ok",
	    [TLS_NOT_HANDSHAKE] = "not_handshake",
	    [TLS_SSLV2] = "sslv2",
	    [TLS_BAD_RECORD] = "bad_record",
	    [TLS_NOT_CLIENT_HELLO] = "not_client_hello",
	    [TLS_TOO_LARGE] = "too_large",
	    [TLS_BAD_VERSION] = "bad_version",
	    [TLS_BAD_LENGTH] = "bad_length",
	    [TLS_TRAILING] = "trailing",
	    [TLS_DUP_EXTENSION] = "dup_extension",
	    [TLS_SNI_BAD_LIST] = "sni_bad_list",
	    [TLS_SNI_MULTIPLE] = "sni_multiple",
	    [TLS_SNI_BAD_NAME] = "sni_bad_name",
	};
	if ((unsigned)e >= TLS_ERR_COUNT_)
		return "unknown";
	return names[e];
}

enum {
	TLS_CT_HANDSHAKE = 22,
	TLS_HS_CLIENT_HELLO = 1,
	TLS_EXT_SERVER_NAME = 0,
	TLS_EXT_SUPPORTED_VERSIONS = 43,
	TLS_EXT_ECH = 0xfe0d,
	TLS_EXT_ESNI = 0xffce, /* draft encrypted_server_name: hides the name just the same */
	TLS_RECORD_MAX = 16384 + 256,
};

/*
 * 1 byte: a handshake record (22) or an SSLv2-style hello (high bit set:
 * a 2-byte record length), which tls_client_hello() then refuses by name.
 * More bytes sharpen it: 22 must be followed by major version 3.
 */
bool tls_looks_like(struct cur in)
{
	uint8_t b0, b1;
	if (!cur_peek_u8(&in, 0, &b0))
		return false;
	if (b0 & 0x80)
		return true;
	if (b0 != TLS_CT_HANDSHAKE)
		return false;
	if (cur_peek_u8(&in, 1, &b1) && b1 != 3)
		return false;
	return true;
}

static bool tls_is_grease(uint16_t v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/*
 * server_name extension (RFC 6066 3):
 * server_name_list<1..2^16-1> { name_type(1) | host_name<1..2^16-1> }
 * Exactly one host_name. Entries of other name types are skipped.
 */
static enum tls_err tls_sni(struct cur ext, struct tls_hello *out)
{
	struct cur list, name;
	unsigned hosts = 0;
	uint8_t type;

	if (!cur_sub_u16len(&ext, &list) || ext.left != 0 || list.left == 0)
		return TLS_SNI_BAD_LIST;
	while (list.left) {
		if (!cur_u8(&list, &type) || !cur_sub_u16len(&list, &name))
			return TLS_SNI_BAD_LIST;
		if (type != 0)
			continue;
		if (++hosts > 1)
			return TLS_SNI_MULTIPLE;
		if (!name_normalize((const char *)name.p, name.left, out->sni, &out->sni_err))
			return TLS_SNI_BAD_NAME;
	}
	if (hosts == 0)
		return TLS_SNI_BAD_LIST;
	out->has_sni = true;
	return TLS_OK;
}

/* supported_versions (RFC 8446 4.2.1), client form: versions<2..254> of u16. */
static enum tls_err tls_versions(struct cur ext, struct tls_hello *out)
{
	struct cur list;
	uint16_t v;

	if (!cur_sub_u8len(&ext, &list) || ext.left != 0 || list.left < 2 || list.left % 2)
		return TLS_BAD_LENGTH;
	while (cur_u16(&list, &v))
		if (!tls_is_grease(v) && v > out->max_version)
			out->max_version = v;
	return TLS_OK;
}

/*
 * body = legacy_version(2) random(32) session_id<0..32>
 *        cipher_suites<2..2^16-2> compression<1..2^8-1> [extensions<0..2^16-1>]
 * Extensions may be absent altogether (pre-TLS 1.2 clients); if present
 * they must fill the body exactly. Each type at most once, any order.
 */
static enum tls_err tls_body(struct cur body, struct tls_hello *out)
{
	struct cur sid, suites, comp, exts, data;
	uint64_t seen[65536 / 64];
	uint16_t type;
	enum tls_err err;

	if (!cur_u16(&body, &out->legacy_version))
		return TLS_BAD_LENGTH;
	if (out->legacy_version < 0x0301 || out->legacy_version > 0x0303)
		return TLS_BAD_VERSION;
	out->max_version = out->legacy_version;
	if (!cur_skip(&body, 32) || !cur_sub_u8len(&body, &sid) || sid.left > 32)
		return TLS_BAD_LENGTH;
	if (!cur_sub_u16len(&body, &suites) || suites.left < 2 || suites.left % 2)
		return TLS_BAD_LENGTH;
	if (!cur_sub_u8len(&body, &comp) || comp.left < 1)
		return TLS_BAD_LENGTH;
	if (body.left == 0)
		return TLS_OK;
	if (!cur_sub_u16len(&body, &exts))
		return TLS_BAD_LENGTH;
	if (body.left != 0)
		return TLS_TRAILING;

	memset(seen, 0, sizeof seen);
	while (exts.left) {
		if (!cur_u16(&exts, &type) || !cur_sub_u16len(&exts, &data))
			return TLS_BAD_LENGTH;
		uint64_t bit = (uint64_t)1 << (type % 64);
		if (seen[type / 64] & bit)
			return TLS_DUP_EXTENSION;
		seen[type / 64] |= bit;
		switch (type) {
		case TLS_EXT_SERVER_NAME:
			err = tls_sni(data, out);
			break;
		case TLS_EXT_SUPPORTED_VERSIONS:
			err = tls_versions(data, out);
			break;
		case TLS_EXT_ECH:
		case TLS_EXT_ESNI:
			out->ech = true;
			err = TLS_OK;
			break;
		default:
			err = TLS_OK;
			break;
		}
		if (err != TLS_OK)
			return err;
	}
	return TLS_OK;
}

/* handshake(4) = type(1) | length(3), then the body. */
static enum parse tls_hs_header(struct cur *msg, uint32_t *len, enum tls_err *err)
{
	uint8_t type;

	if (!cur_u8(msg, &type))
		return PARSE_MORE;
	if (type != TLS_HS_CLIENT_HELLO) {
		*err = TLS_NOT_CLIENT_HELLO;
		return PARSE_BAD;
	}
	if (!cur_u24(msg, len))
		return PARSE_MORE;
	if (*len > TLS_HELLO_MAX - 4) {
		*err = TLS_TOO_LARGE;
		return PARSE_BAD;
	}
	return msg->left < *len ? PARSE_MORE : PARSE_OK;
}

enum parse tls_handshake_message(struct cur msg, struct tls_hello *out, enum tls_err *why)
{
	enum tls_err err = TLS_OK;
	struct cur body;
	uint32_t len = 0;

	memset(out, 0, sizeof *out);
	enum parse r = tls_hs_header(&msg, &len, &err);
	if (r == PARSE_OK) {
		cur_sub(&msg, len, &body);
		out->hello_len = 4 + (size_t)len;
		err = tls_body(body, out);
		r = err == TLS_OK ? PARSE_OK : PARSE_BAD;
	}
	if (r == PARSE_BAD) { /* nothing half-parsed is left to be trusted; sni_err stays */
		out->has_sni = false;
		out->sni[0] = '\0';
		out->ech = false;
	}
	if (why)
		*why = err;
	return r;
}

/*
 * record(5) = type(1)=22 | version(2)=3.0..3.3 | length(2)=1..2^14+256
 * The handshake message is the concatenation of the fragments of
 * consecutive handshake records (RFC 8446 5.1); we copy them into one
 * buffer and parse it as a bare message. Records are taken whole: MORE
 * until the record holding the hello's last byte has fully arrived, but
 * the handshake header is checked as soon as its bytes are there.
 */
enum parse tls_client_hello(struct cur in, struct tls_hello *out, enum tls_err *why)
{
	uint8_t buf[TLS_HELLO_MAX];
	size_t have = 0, need = 0; /* need: message bytes, known once 4 are here */
	struct cur s = in;
	unsigned records = 0;
	enum tls_err err = TLS_OK;
	enum parse r;

	memset(out, 0, sizeof *out);
	for (;;) {
		struct cur rec;
		uint8_t type, major, minor;
		uint16_t rlen;

		if (!cur_u8(&s, &type))
			goto more;
		if (type != TLS_CT_HANDSHAKE) {
			err = (records == 0 && (type & 0x80)) ? TLS_SSLV2 : TLS_NOT_HANDSHAKE;
			goto bad;
		}
		if (!cur_u8(&s, &major))
			goto more;
		if (!cur_u8(&s, &minor))
			goto more;
		if (major != 3 || minor > 3) {
			err = TLS_BAD_RECORD;
			goto bad;
		}
		if (!cur_u16(&s, &rlen))
			goto more;
		if (rlen == 0 || rlen > TLS_RECORD_MAX) {
			err = TLS_BAD_RECORD;
			goto bad;
		}
		records++;
		bool whole = cur_sub(&s, rlen, &rec);
		if (!whole)
			rec = s; /* what there is of it, for the early header check */

		size_t want = need ? need - have : sizeof buf - have;
		size_t take = rec.left < want ? rec.left : want;
		const uint8_t *src;
		cur_bytes(&rec, take, &src);
		memcpy(buf + have, src, take);
		have += take;

		struct cur msg = cur_make(buf, have);
		uint32_t len = 0;
		r = tls_hs_header(&msg, &len, &err);
		if (r == PARSE_BAD)
			goto bad;
		if (have >= 4)
			need = 4 + (size_t)len;
		if (!whole)
			goto more;
		if (need && have >= need)
			break;
	}

	r = tls_handshake_message(cur_make(buf, need), out, &err);
	out->records = records;
	out->consumed = (size_t)(s.p - in.p);
	if (why)
		*why = err;
	return r;
more:
	if (why)
		*why = TLS_OK;
	return PARSE_MORE;
bad:
	memset(out, 0, sizeof *out);
	if (why)
		*why = err;
	return PARSE_BAD;
}
