/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_RTNL_H
#define EGRESSD_RTNL_H
/*
 * rtnetlink (libmnl) for `egressd run`: the veth pair, its addresses, links
 * up, the default route, and the veth's removal; what `ip link|addr|route`
 * did before. Every call works in the network namespace of the calling
 * thread, opens its own socket and waits for the kernel's ack.
 *
 * The rtnl_msg_* builders write one request into buf (no socket; the unit
 * tests read them back) and return it, or NULL when it does not fit or an
 * argument is out of range (a name longer than IFNAMSIZ - 1, a family that
 * is neither IPv4 nor IPv6, a prefix longer than the address).
 */
#include "../proxy/core/addr.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct nlmsghdr;

#define RTNL_MSG_MAX 512 /* a buffer this size holds any request below */

/* RTM_NEWLINK (create, exclusive): veth `name`, its peer `peer` created in
 * the network namespace of process peer_pid (0: this one). */
struct nlmsghdr *rtnl_msg_veth_new(void *buf, size_t len, uint32_t seq, const char *name,
                                   const char *peer, pid_t peer_pid);
/* RTM_DELLINK of the link called `name` (its veth peer goes with it). */
struct nlmsghdr *rtnl_msg_link_del(void *buf, size_t len, uint32_t seq, const char *name);
/* RTM_NEWLINK (change, no create): link `name` administratively up. */
struct nlmsghdr *rtnl_msg_link_up(void *buf, size_t len, uint32_t seq, const char *name);
/* RTM_NEWADDR (create, exclusive): a/prefix on link ifindex, scope global
 * (`ip addr add A/P dev D`: IFA_LOCAL and IFA_ADDRESS both A). */
struct nlmsghdr *rtnl_msg_addr_new(void *buf, size_t len, uint32_t seq, unsigned ifindex,
                                   const struct addr *a, unsigned prefix);
/* RTM_NEWROUTE (create, exclusive): default route via gw in the main table
 * (`ip route add default via GW`). */
struct nlmsghdr *rtnl_msg_route_default(void *buf, size_t len, uint32_t seq, const struct addr *gw);

/* The ack of one request (for tests): 0, the kernel's -errno, or -EPROTO
 * when buf[0..n) is not an ack of seq. */
int rtnl_parse_ack(const void *buf, size_t n, uint32_t seq);

/* Send one request and wait for its ack: 0 or -errno. */
int rtnl_talk(struct nlmsghdr *nlh);

/* The above, sent. 0 or -errno (-ENODEV: no such link). */
int rtnl_veth_add(const char *name, const char *peer, pid_t peer_pid);
int rtnl_link_del(const char *name);
int rtnl_link_up(const char *name);
int rtnl_addr_add(const char *dev, const struct addr *a, unsigned prefix);
int rtnl_route_default(const struct addr *gw);

#endif
