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
	QUIC_REFUSED,       /* the caller's CRYPTO callback refused a frame */
	QUIC_ERR_COUNT_,
};
const char *quic_err_name(enum quic_err e);

/* One UDP datagram. MORE: the ClientHello continues in a later Initial. */
enum parse quic_initial(struct cur datagram, struct tls_hello *out, enum quic_err *why,
			enum tls_err *tls_why);

#define QUIC_CID_MAX 20

/* What quic_initial_crypto() learned from a datagram's (first) Initial. */
struct quic_initial_info {
	uint32_t version;
	uint8_t dcid[QUIC_CID_MAX]; /* the client's original DCID: the keys' input */
	size_t dcid_len;
	unsigned initials; /* Initial packets opened (coalesced ones share the DCID) */
	unsigned frames;   /* CRYPTO frames handed to the callback */
	size_t consumed;   /* datagram bytes up to the end of the last Initial opened */
};

/*
 * One CRYPTO frame: len bytes at stream offset off, in the order the packet
 * carries them (any order, overlaps possible). Return false to stop: the
 * datagram is then BAD with QUIC_REFUSED.
 */
typedef bool (*quic_crypto_fn)(void *arg, uint64_t off, const uint8_t *p, size_t len);

/*
 * Decrypt ONE datagram's Initial packet(s) and hand each CRYPTO frame to fn;
 * no reassembly, no state. Coalesced packets after the first: further
 * Initials with the same DCID are opened too; anything else (0-RTT,
 * Handshake, short header, padding) ends the walk and is ignored. info is
 * filled (DCID, version) as soon as the first header is read, even on BAD.
 * OK: at least the first Initial opened and all its frames were taken.
 */
enum parse quic_initial_crypto(struct cur datagram, struct quic_initial_info *info,
                               quic_crypto_fn fn, void *arg, enum quic_err *why);

#endif
