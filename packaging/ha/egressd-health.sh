#!/bin/sh
# keepalived track script for an egressd gateway: exit 0 while egressd
# serves, 1 when not. Serving = its NFQUEUE (first queue, [queue] num) is
# bound in this network namespace (/proc/net/netfilter/nfnetlink_queue is
# per namespace; the kernel unbinds the queue the moment the daemon exits,
# even on SIGKILL). Without a bound queue the ruleset drops every new flow
# (fail closed), so the box must give its addresses away.
#   egressd-health.sh [QUEUE_NUM]
q=${1:-0}
[ -r /proc/net/netfilter/nfnetlink_queue ] || exit 1
exec awk -v q="$q" '$1 == q { found = 1 } END { exit !found }' \
	/proc/net/netfilter/nfnetlink_queue
