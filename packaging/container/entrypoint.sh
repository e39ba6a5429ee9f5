#!/bin/bash
# egressd sidecar entrypoint: host mode in a network namespace shared with
# the job (a Kubernetes pod, a CI runner's container network).
#
#   EGRESSD_ALLOW       allowlist entries, separated by spaces, commas or newlines
#                       (deb.debian.org:80,443 needs no splitting: a comma
#                       followed by a digit stays inside the entry)
#   EGRESSD_PRESETS     preset names (/usr/share/egressd/presets/NAME.list)
#   EGRESSD_AUDIT       yes: deny nothing, log what would be denied
#   EGRESSD_UPSTREAM    upstream resolvers (default: /etc/resolv.conf)
#   EGRESSD_LOG_LEVEL   deny (default) | all
#   EGRESSD_USER        user the daemon drops to (default egressd; empty: stay root)
#   EGRESSD_READY_FILE  touched once egressd logged "ready" (default /run/egressd/ready)
#   EGRESSD_READY_TIMEOUT  seconds to wait for "ready" (default 30)
#   EGRESSD_CONF_DIR    where the generated config goes (default /etc/egressd)
#   EGRESSD_BIN         the egressd binary (default egressd from PATH)
#
# Order: write config -> egressd check -> egressd rules --apply (from here
# on the namespace is closed: queued packets are dropped until the daemon is
# ready) -> start egressd -> wait for its "ready" event -> touch the ready
# file. The job waits for that file. On SIGTERM the daemon exits and the
# ruleset stays (fail closed). The JSON event log goes to stdout.
set -euo pipefail

bin=${EGRESSD_BIN:-egressd}
conf_dir=${EGRESSD_CONF_DIR:-/etc/egressd}
ready_file=${EGRESSD_READY_FILE:-/run/egressd/ready}
timeout=${EGRESSD_READY_TIMEOUT:-30}
export EGRESSD_USER=${EGRESSD_USER-egressd}

say() { echo "egressd-sidecar: $*" >&2; }
die() { say "$*"; exit 1; }

is_yes() {
	case "${1,,}" in yes|true|on|1) return 0 ;; no|false|off|0|"") return 1 ;; esac
	die "bad boolean \"$1\""
}

# Split on whitespace and on commas that do not start a port list
# ("a.example,b.example:80,443" -> "a.example" "b.example:80,443").
split_list() {
	sed -E 's/,([^0-9])/ \1/g; s/,$//' <<<"$1" | tr -s ' \t' '\n\n' | sed '/^$/d'
}

rm -f "$ready_file"
mkdir -p "$conf_dir/allow.d" "$(dirname "$ready_file")"

conf="$conf_dir/egressd.conf"
list="$conf_dir/allow.d/sidecar.list"
{
	echo "# written by the egressd sidecar from EGRESSD_ALLOW"
	split_list "${EGRESSD_ALLOW:-}"
} >"$list"

allow="$conf_dir/allow.d/*.list"
for p in $(split_list "${EGRESSD_PRESETS:-}"); do
	[[ $p =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad preset name \"$p\""
	allow+=" preset:$p"
done
enforce=yes
if is_yes "${EGRESSD_AUDIT:-no}"; then enforce=no; fi

{
	echo "# written by the egressd sidecar entrypoint"
	echo "[egressd]"
	echo "mode = host"
	echo "enforce = $enforce"
	echo "allow = $allow"
	if [ -n "${EGRESSD_UPSTREAM:-}" ]; then
		echo "[dns]"
		echo "upstream = $(split_list "$EGRESSD_UPSTREAM" | tr '\n' ' ')"
	fi
	echo "[log]"
	echo "file = -"
	echo "level = ${EGRESSD_LOG_LEVEL:-deny}"
} >"$conf"

"$bin" check -c "$conf" >&2 || die "config rejected"
"$bin" rules -c "$conf" --apply || die "cannot apply the ruleset"

# The daemon's stdout (the event log) goes through a FIFO so that this script
# sees the "ready" event while passing every line on to its own stdout.
fifo=$(mktemp -u /tmp/egressd-log.XXXXXX)
mkfifo -m 0600 "$fifo"
trap 'rm -f "$fifo"' EXIT
"$bin" -c "$conf" >"$fifo" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null || true' TERM INT
(
	ready=0
	while IFS= read -r line; do
		printf '%s\n' "$line"
		if [ $ready -eq 0 ] && [[ $line == *'"event":"ready"'* || $line == *'"event": "ready"'* ]]; then
			touch "$ready_file"
			ready=1
		fi
	done <"$fifo"
) &
reader=$!

deadline=$((SECONDS + timeout))
while [ ! -e "$ready_file" ]; do
	if ! kill -0 "$daemon" 2>/dev/null; then
		wait "$daemon" || rc=$?
		die "egressd exited before it was ready (status ${rc:-0})"
	fi
	if [ $SECONDS -ge $deadline ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		die "egressd not ready after ${timeout}s"
	fi
	sleep 0.2
done
say "ready ($ready_file)"

rc=0
while :; do
	wait "$daemon" && rc=0 || rc=$?
	# wait returns >128 when interrupted by the trapped signal: wait again.
	kill -0 "$daemon" 2>/dev/null || break
done
wait "$reader" || true
rm -f "$ready_file"
exit "$rc"
