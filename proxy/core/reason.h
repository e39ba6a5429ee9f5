/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_REASON_H
#define EGRESSD_REASON_H
/* Deny reasons as logged (SPEC.md "Event log", key `reason`). */
enum reason {
	REASON_NONE = 0,
	REASON_IP_NOT_ALLOWED,
	REASON_PORT_NOT_ALLOWED,
	REASON_NAME_NOT_ALLOWED,
	REASON_SNI_IP_MISMATCH,
	REASON_NO_NAME,
	REASON_PROTOCOL_NOT_ALLOWED,
	REASON_ECH,
	REASON_INCOMPLETE,
	REASON_MALFORMED,
	REASON_REVOKED, /* a reload's new policy no longer allows the connection */
	REASON_COUNT_,
};

/* "ip_not_allowed", ...; "" for REASON_NONE. */
const char *reason_name(enum reason r);

#endif
