/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_CONNTRACK_H
#define EGRESSD_CONNTRACK_H
/*
 * ctnetlink over libmnl: list the conntrack entries that carry a mark, and
 * change an entry's mark, by its original tuple and zone. Used by revoke on
 * reload (doc/DESIGN.md "Revoke"). Needs CAP_NET_ADMIN in the namespace.
 * Synchronous, bounded in time by the kernel's dump; no libevent.
 *
 * The message builders and the parser are separate from the socket so that
 * they can be tested without one (tests/unit/test_conntrack.c).
 */
#include "../proxy/core/addr.h"
#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct_entry {
	uint8_t proto;              /* IPPROTO_TCP, IPPROTO_UDP, ... */
	struct addr src, dst;       /* original direction */
	uint16_t sport, dport;      /* original direction; 0 for protocols without ports */
	uint16_t zone;              /* CTA_ZONE (0: the default zone) */
	uint32_t mark;
	bool has_tcp_state;
	uint8_t tcp_state;          /* TCP_CONNTRACK_* */
};

/* Does the entry still carry traffic? (false: TCP in TIME_WAIT or CLOSE) */
bool ct_entry_open(const struct ct_entry *e);

/* Message builders: into buf (cap bytes, at least 1024);
 * the message, or NULL if it does not fit. seq is the netlink sequence. */
struct nlmsghdr *ct_build_dump(void *buf, size_t cap, uint32_t seq, uint32_t mark,
                               uint32_t mask);
/* Update: the entry's mark becomes (mark & ~mask) | value. */
struct nlmsghdr *ct_build_set_mark(void *buf, size_t cap, uint32_t seq, const struct ct_entry *e,
                                   uint32_t value, uint32_t mask);
struct nlmsghdr *ct_build_delete(void *buf, size_t cap, uint32_t seq, const struct ct_entry *e);
/* Parse one conntrack message (IPCTNL_MSG_CT_NEW, as a dump answers) of the
 * len bytes at nlh; its nlmsg_len must lie within them. 0, or -EINVAL. */
int ct_parse(const struct nlmsghdr *nlh, size_t len, struct ct_entry *out);

struct ct;
/* NULL with err filled on failure. */
struct ct *ct_open(char *err, size_t errlen);
void ct_close(struct ct *c); /* NULL-safe */
/*
 * Every entry with (mark & mask) == value (filtered by the kernel where it
 * can, and here): fn(entry, arg) for each; fn returning < 0 stops the walk
 * (after the dump is read to its end). 0 or -errno.
 */
int ct_dump_mark(struct ct *c, uint32_t value, uint32_t mask,
                 int (*fn)(const struct ct_entry *e, void *arg), void *arg);
/* 0, -ENOENT (gone), or -errno. */
int ct_set_mark(struct ct *c, const struct ct_entry *e, uint32_t value, uint32_t mask);
int ct_delete(struct ct *c, const struct ct_entry *e);

#endif
