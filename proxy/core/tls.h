/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_TLS_H
#define EGRESSD_TLS_H
/*
 * TLS ClientHello, fed as the reassembled first bytes of a TCP stream.
 *
 * record(5) = type(1)=22 | version(2) | length(2)
 * handshake = type(1)=1 | length(3) | body
 * body = legacy_version(2) random(32) session_id<0..32>
 *        cipher_suites<2..2^16-2> compression<1..2^8-1> extensions<0..2^16-1>
 *                                                         (RFC 8446 4.1.2)
 * The hello may span several records and segments: the handshake message is
 * rebuilt from the fragments of consecutive handshake records. MORE means
 * "not all of it yet"; the flow code decides how long to wait.
 */
#include "cur.h"
#include "name.h"

enum tls_err {
	TLS_OK = 0,
	TLS_NOT_HANDSHAKE,    /* first record is not handshake(22) */
	TLS_SSLV2,            /* SSLv2-compatible hello */
	TLS_BAD_RECORD,       /* record version/length out of range (0 or > 2^14+256) */
	TLS_NOT_CLIENT_HELLO, /* handshake type is not client_hello(1) */
	TLS_TOO_LARGE,        /* hello larger than TLS_HELLO_MAX */
	TLS_BAD_VERSION,      /* legacy_version below TLS 1.0 (0x0301) or above 0x0303 */
	TLS_BAD_LENGTH,       /* an inner length runs past its parent */
	TLS_TRAILING,         /* bytes after the extensions inside the hello */
	TLS_DUP_EXTENSION,    /* an extension type appears twice */
	TLS_SNI_BAD_LIST,     /* server_name list empty or malformed */
	TLS_SNI_MULTIPLE,     /* more than one host_name in the list */
	TLS_SNI_BAD_NAME,     /* host_name empty, too long, or not a hostname (see sni_err) */
	TLS_ERR_COUNT_,
};
const char *tls_err_name(enum tls_err e);

#define TLS_HELLO_MAX 65536

struct tls_hello {
	bool has_sni;
	char sni[NAME_MAX_LEN + 1]; /* normalised (name.h) */
	enum name_err sni_err;      /* why the name was refused, with TLS_SNI_BAD_NAME */
	bool ech;                   /* encrypted_client_hello (0xfe0d) present */
	uint16_t legacy_version;
	uint16_t max_version; /* highest of supported_versions, else legacy_version */
	unsigned records;     /* how many TLS records carried the hello */
	size_t hello_len;     /* bytes of the handshake message */
	size_t consumed;      /* stream bytes up to the end of the last record used */
};

/* Does the stream start like a TLS handshake record? (1 byte suffices.) */
bool tls_looks_like(struct cur in);

enum parse tls_client_hello(struct cur in, struct tls_hello *out, enum tls_err *why);

/*
 * One bare handshake message, no record framing: type(1)=1 | length(3) | body.
 * For QUIC, whose CRYPTO frames carry the handshake without records.
 * MORE: msg ends before the message does. Fills hello_len; records and
 * consumed are left 0.
 */
enum parse tls_handshake_message(struct cur msg, struct tls_hello *out, enum tls_err *why);

#endif
