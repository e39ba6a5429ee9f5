/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_MARKS_H
#define EGRESSD_MARKS_H
/*
 * Packet and conntrack mark bits owned by egressd (other bits are left
 * alone). The ruleset and the verdicts agree on these; see doc/DESIGN.md.
 */
#define MARK_MASK    0x0f000000u
#define MARK_ALLOW   0x01000000u /* connection allowed: ct mark, fast path */
#define MARK_DENY    0x02000000u /* connection denied: reset/drop */
#define MARK_PASS    0x03000000u /* this packet passes, flow undecided */
#define MARK_QUEUED  0x04000000u /* set before queueing; still set after = not queued: drop */
#define MARK_QUEUED_NEW 0x06000000u /* as QUEUED, and conntrack had no entry for the packet */
#define MARK_SELF    0x08000000u /* egressd's own sockets (SO_MARK): exempt */
#define MARK_INSPECT 0x05000000u /* allowed plain HTTP: client payload still queued */
#define MARK_INBOUND 0x07000000u /* ct mark, host mode: a connection to this host (its
                                  * port forwards: Docker -p), not egress of the containers */

#endif
