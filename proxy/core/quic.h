/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_QUIC_H
#define EGRESSD_QUIC_H
/*
 * QUIC v1 Initial packet (RFC 9000 17.2.2, RFC 9001 5): derive the Initial
 * keys from the destination connection id, remove header protection,
 * decrypt the payload (AES-128-GCM via libcrypto) and collect the CRYPTO
 * frames' ClientHello. Secrets are wiped after use.
 */
#include "cur.h"
#include "tls.h"

enum quic_err {
	QUIC_OK = 0,
	QUIC_NOT_LONG_HEADER,
	QUIC_NOT_INITIAL,
	QUIC_BAD_VERSION,   /* not v1 (0x00000001) or v2 */
	QUIC_BAD_LENGTH,
	QUIC_DECRYPT,       /* AEAD authentication failed */
	QUIC_BAD_FRAME,
	QUIC_HELLO,         /* the ClientHello inside is bad: see tls_err */
	QUIC_ERR_COUNT_,
};
const char *quic_err_name(enum quic_err e);

/* One UDP datagram. MORE: the ClientHello continues in a later Initial. */
enum parse quic_initial(struct cur datagram, struct tls_hello *out, enum quic_err *why,
			enum tls_err *tls_why);

#endif
