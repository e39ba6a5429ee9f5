/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reason.h"

/* The strings are the SPEC.md contract (event log key `reason`). */
static const char *const reason_names[REASON_COUNT_] = {
    [REASON_NONE] = "",
    [REASON_IP_NOT_ALLOWED] = "ip_not_allowed",
    [REASON_PORT_NOT_ALLOWED] = "port_not_allowed",
    [REASON_NAME_NOT_ALLOWED] = "name_not_allowed",
    [REASON_SNI_IP_MISMATCH] = "sni_ip_mismatch",
    [REASON_NO_NAME] = "no_name",
    [REASON_PROTOCOL_NOT_ALLOWED] = "protocol_not_allowed",
    [REASON_ECH] = "ech",
    [REASON_INCOMPLETE] = "incomplete",
    [REASON_MALFORMED] = "malformed",
    [REASON_REVOKED] = "revoked",
};

const char *reason_name(enum reason r)
{
	if ((unsigned)r >= REASON_COUNT_)
		return "malformed";
	return reason_names[r];
}
