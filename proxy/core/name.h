/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_NAME_H
#define EGRESSD_NAME_H
/*
 * DNS names as seen on the wire (SNI, Host, qname): lowercase ASCII,
 * no trailing dot, labels 1..63 of letters, digits, '-' and '_' , at most
 * 253 characters. IDNs must already be in their xn-- (A-label) form here;
 * conversion of UTF-8 names from the config happens in config/.
 */
#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_LEN 253

enum name_err {
	NAME_OK = 0,
	NAME_EMPTY,
	NAME_TOO_LONG,
	NAME_BAD_LABEL,   /* empty label (".."), or a label longer than 63 */
	NAME_BAD_CHAR,    /* NUL, space, non-LDH or non-ASCII byte */
	NAME_IP_LITERAL,  /* the name is an IPv4/IPv6 literal */
	NAME_ERR_COUNT_,
};
const char *name_err_name(enum name_err e);

/*
 * Normalise len bytes of in into out (NAME_MAX_LEN + 1 bytes): lowercase,
 * one trailing dot removed. Returns true, or false with *why.
 */
bool name_normalize(const char *in, size_t len, char *out, enum name_err *why);

/* Is name equal to suffix or below it ("a.b.c" is below "b.c")? */
bool name_is_below(const char *name, const char *suffix);

#endif
