/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "name.h"

#include <arpa/inet.h>
#include <string.h>

#include "cur.h"

const char *name_err_name(enum name_err e)
{
	static const char *const names[NAME_ERR_COUNT_] = {
	    [NAME_OK] = "ok",
	    [NAME_EMPTY] = "empty",
	    [NAME_TOO_LONG] = "too_long",
	    [NAME_BAD_LABEL] = "bad_label",
	    [NAME_BAD_CHAR] = "bad_char",
	    [NAME_IP_LITERAL] = "ip_literal",
	};
	if ((unsigned)e >= NAME_ERR_COUNT_)
		return "unknown";
	return names[e];
}

static bool name_is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

static bool name_is_hex(uint8_t ch)
{
	return name_is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/*
 * An address in disguise: anything inet_pton takes, and any name whose last
 * label is all digits or 0x-hex ("10.1", "2130706433", "0x7f.1"), which
 * inet_aton() and many resolvers' stub libraries turn into an IPv4 address.
 * No real top-level domain is numeric, so nothing legitimate is lost.
 */
static bool name_is_ip_literal(const char *s, size_t len)
{
	char tmp[NAME_MAX_LEN + 1];
	uint8_t bin[16];
	if (len > NAME_MAX_LEN)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1)
		return true;

	/* Find the last label through the cursor. */
	struct cur c = cur_make(s, len), last = c;
	uint8_t ch;
	while (cur_u8(&c, &ch))
		if (ch == '.')
			last = c;
	if (last.left == 0)
		return false;
	struct cur l = last;
	uint8_t c0 = 0, c1 = 0;
	if (last.left > 2 && cur_peek_u8(&l, 0, &c0) && cur_peek_u8(&l, 1, &c1) && c0 == '0' &&
	    (c1 == 'x' || c1 == 'X')) {
		cur_skip(&l, 2);
		while (cur_u8(&l, &ch))
			if (!name_is_hex(ch))
				return false;
		return true;
	}
	while (cur_u8(&l, &ch))
		if (!name_is_digit(ch))
			return false;
	return true;
}

/*
 * in: len bytes, not NUL-terminated, from the network or the config.
 * Accepts: labels of [A-Za-z0-9_-], 1..63 bytes, dot-separated, one trailing
 * dot, at most 253 bytes without it. Refuses everything else, and refuses
 * IP literals so an address can never pass as a name.
 */
bool name_normalize(const char *in, size_t len, char *out, enum name_err *why)
{
	enum name_err err = NAME_OK;
	struct cur c = cur_make(in, len);
	uint8_t ch;

	if (len > 0 && cur_peek_u8(&c, len - 1, &ch) && ch == '.')
		len--;
	c = cur_make(in, len);
	if (len == 0) {
		err = NAME_EMPTY;
		goto fail;
	}
	if (len > NAME_MAX_LEN) {
		err = NAME_TOO_LONG;
		goto fail;
	}
	if (name_is_ip_literal(in, len)) {
		err = NAME_IP_LITERAL;
		goto fail;
	}

	size_t o = 0, label = 0;
	while (cur_u8(&c, &ch)) {
		if (ch == '.') {
			if (label == 0) {
				err = NAME_BAD_LABEL;
				goto fail;
			}
			label = 0;
			out[o++] = '.';
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			ch = (uint8_t)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || name_is_digit(ch) || ch == '-' ||
		           ch == '_')) {
			err = NAME_BAD_CHAR;
			goto fail;
		}
		if (++label > 63) {
			err = NAME_BAD_LABEL;
			goto fail;
		}
		out[o++] = (char)ch;
	}
	if (label == 0) { /* "a.." : the dot before the stripped one left an empty label */
		err = NAME_BAD_LABEL;
		goto fail;
	}
	out[o] = '\0';
	if (why)
		*why = NAME_OK;
	return true;
fail:
	out[0] = '\0';
	if (why)
		*why = err;
	return false;
}

/* Both normalised. An empty suffix covers nothing (fail closed). */
bool name_is_below(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	if (s == 0 || n < s)
		return false;
	if (strcmp(name + (n - s), suffix) != 0)
		return false;
	return n == s || name[n - s - 1] == '.';
}
