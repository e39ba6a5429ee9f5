#!/bin/sh
# keepalived's notify script for an egressd pair: hand conntrackd's state
# over on a VRRP transition (the conntrack-tools "primary-backup.sh" recipe).
#   conntrackd-notify.sh primary|backup|fault [CONNTRACKD_CONF]
# primary: commit the peer's connections (external cache) into the kernel
#   table, with their ct marks: egressd's ruleset accepts them on its fast
#   path. Then flush both caches, resync the internal cache from the kernel
#   and send a bulk update, so the (new) backup has everything.
# backup:  make sure conntrackd runs, shorten the kernel timers of the
#   connections this box carried (they now live on the peer) and ask the
#   master for a resync.
# fault:   shorten the timers.
set -u
CONF=${2:-/etc/conntrackd/conntrackd.conf}
CT=${CONNTRACKD:-/usr/sbin/conntrackd}
say() { logger -t egressd-ha "$*" 2>/dev/null; echo "egressd-ha: $*" >&2; }
ct() { "$CT" -C "$CONF" "$@" || say "conntrackd $* failed ($?)"; }

case "${1:-}" in
primary)
	ct -c
	ct -f
	ct -R
	ct -B
	;;
backup)
	if ! "$CT" -C "$CONF" -s >/dev/null 2>&1; then
		say "conntrackd not running: starting it"
		"$CT" -C "$CONF" -d || { say "cannot start conntrackd"; exit 1; }
	fi
	ct -t
	ct -n
	;;
fault)
	ct -t
	;;
*)
	echo "usage: $0 primary|backup|fault [CONNTRACKD_CONF]" >&2
	exit 2
	;;
esac
say "transition to $1 done"
exit 0
