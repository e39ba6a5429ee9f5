/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_INDICATORS_H
#define EGRESSD_INDICATORS_H
/*
 * Exfiltration indicators: what makes a denied flow look like a backdoored
 * tool sending a secret out. Never stores a secret: a credential is kept as
 * its type and a masked form (first and last characters).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum indicator {
	IND_CREDENTIAL = 1u << 0,
	IND_DNS_TUNNEL = 1u << 1,
	IND_TYPOSQUAT = 1u << 2,
	IND_IP_LITERAL = 1u << 3,
	IND_SNI_SPOOF = 1u << 4,
	IND_ECH = 1u << 5,
	IND_QUIC = 1u << 6,
	IND_SPLIT_HELLO = 1u << 7,
	IND_BEACON = 1u << 8,
	IND_METADATA = 1u << 9, /* a cloud metadata endpoint (169.254.169.254, ...) */
};
/* "dns_tunnel", ... for one bit. */
const char *indicator_name(enum indicator bit);

enum cred_type {
	CRED_NONE = 0,
	CRED_AWS_ACCESS_KEY,
	CRED_AWS_SECRET_KEY,
	CRED_GITHUB_TOKEN,
	CRED_GITLAB_TOKEN,
	CRED_SLACK_TOKEN,
	CRED_GOOGLE_API_KEY,
	CRED_PRIVATE_KEY,
	CRED_JWT,
	CRED_BEARER,
	CRED_BASIC_AUTH,
	CRED_COUNT_,
};
const char *cred_type_name(enum cred_type t); /* "aws_access_key", ... */

enum severity {
	SEVERITY_LOW = 0,
	SEVERITY_MEDIUM,
	SEVERITY_HIGH,
	SEVERITY_CRITICAL,
};
const char *severity_name(enum severity s);

#define IND_MAX_CREDS 4

struct cred_hit {
	enum cred_type type;
	char masked[24]; /* e.g. "AKIA…MPLE" (UTF-8 ellipsis) */
};

struct indicators {
	uint32_t bits;
	struct cred_hit creds[IND_MAX_CREDS];
	size_t ncreds;
	char imitates[254]; /* typosquat: the allowed name it looks like */
	enum severity severity;
};

/* Scan bytes (borrowed) for credentials; adds hits (deduplicated) to ind. */
void ind_scan_credentials(struct indicators *ind, const uint8_t *buf, size_t len);
/* Also decodes base32/base64/hex-shaped labels of a DNS name and scans those. */
void ind_scan_dns_name(struct indicators *ind, const char *qname);
/* Long/high-entropy/encoded-looking labels. */
bool ind_dns_name_tunnel_shaped(const char *qname);
/* Edit distance <= max between a and b (ASCII), cheaply. */
bool ind_within_edit_distance(const char *a, const char *b, unsigned max);
/* The homoglyph fold ind_within_edit_distance compares (0->o, rn->m, ...):
 * into out (cap bytes, NUL-terminated, truncated); returns its length. */
size_t ind_fold(const char *s, char *out, size_t cap);
/*
 * The ASCII look-alike of a name with IDN labels: each "xn--" label is
 * Punycode-decoded (RFC 3492) and its letters mapped to the Latin letters
 * they are confused with (Cyrillic "а" -> "a", Greek "ο" -> "o", "é" -> "e"
 * ...); a character with no look-alike becomes '~'. Writes the result into
 * out (cap bytes) and returns true when some label was an IDN; false (out
 * unspecified) for a name without one or a label that does not decode.
 */
bool ind_confusable_skeleton(const char *name, char *out, size_t cap);
/* Severity from the bits (documented in doc/indicators.md). */
enum severity ind_severity(const struct indicators *ind);

#endif
