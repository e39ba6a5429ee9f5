/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ct_parse (nfq/conntrack.c) on arbitrary bytes as one netlink message (its
 * length field included: ct_parse checks it against the input). What it
 * returns must be self-consistent; a message built from a parsed entry must
 * parse back to the same tuple. */
#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../nfq/conntrack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t buf[16384 / 4];
	if (size > sizeof buf)
		return 0;
	memcpy(buf, data, size);
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	struct ct_entry e;
	if (ct_parse(nlh, size, &e) != 0)
		return 0;
	if (e.src.family != e.dst.family || (e.src.family != ADDR_V4 && e.src.family != ADDR_V6))
		abort();
	(void)ct_entry_open(&e);
	static char out[2048];
	struct nlmsghdr *m = ct_build_set_mark(out, sizeof out, 1, &e, 0x02000000u, 0x0f000000u);
	struct ct_entry back;
	if (!m || ct_parse(m, m->nlmsg_len, &back) != 0 || back.proto != e.proto ||
	    !addr_eq(&back.src, &e.src) || !addr_eq(&back.dst, &e.dst) || back.zone != e.zone)
		abort();
	return 0;
}
