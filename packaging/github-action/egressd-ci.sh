#!/bin/bash
# egressd for CI jobs (any CI system on Debian or Ubuntu, run as root):
#
#   egressd-ci.sh [--deb FILE] [--allow ENTRY]... [--allow-file FILE]...
#                 [--preset NAME]... [--audit] [--no-runner]
#   egressd-ci.sh --report     print the denied flows and their count
#   egressd-ci.sh --stop       stop egressd and remove its ruleset
#
# Installs the package (from --deb, else apt) unless egressd is already
# there, writes the config (host mode: the job's own network namespace),
# applies the ruleset and starts egressd: under systemd as egressd.service,
# otherwise in the background. Returns once egressd is ready; from then on
# the job reaches only the allowlist. Unless --no-runner, the endpoints the
# CI runner itself needs (runner.list next to this script) are allowed too.
#
# Paths for tests: EGRESSD_CONF_DIR (default /etc/egressd), EGRESSD_STATE_DIR
# (default /run/egressd-ci), EGRESSD_BIN, EGRESSD_READY_TIMEOUT (30 s).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${EGRESSD_BIN:-egressd}
conf_dir=${EGRESSD_CONF_DIR:-/etc/egressd}
state=${EGRESSD_STATE_DIR:-/run/egressd-ci}
timeout=${EGRESSD_READY_TIMEOUT:-30}
conf=$conf_dir/egressd.conf

say() { echo "egressd-ci: $*" >&2; }
die() { say "$*"; exit 1; }

use_systemd() {
	[ -z "${EGRESSD_NO_SYSTEMD:-}" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

# Under systemd the sandboxed service may write only below /var/log/egressd.
events_path() {
	if use_systemd; then echo /var/log/egressd/events.json; else echo "$state/events.json"; fi
}

report() {
	local events
	events=$(events_path)
	[ -e "$events" ] || die "no event log at $events"
	local n
	n=$(grep -c '"event":"deny"' "$events" || true)
	grep '"event":"deny"\|"event":"dns_deny"' "$events" || true
	say "$n denied flow(s)"
}

stop() {
	if use_systemd; then
		systemctl stop egressd.service || true
	elif [ -e "$state/egressd.pid" ]; then
		local pid deadline
		pid=$(cat "$state/egressd.pid")
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + 10))
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		rm -f "$state/egressd.pid"
	fi
	"$bin" rules -c "$conf" --delete
}

deb='' audit=no runner=yes
allows=() files=() presets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--deb) deb=$2; shift ;;
	--allow) allows+=("$2"); shift ;;
	--allow-file) files+=("$2"); shift ;;
	--preset) presets+=("$2"); shift ;;
	--audit) audit=yes ;;
	--no-runner) runner=no ;;
	--report) report; exit 0 ;;
	--stop) stop; exit 0 ;;
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument \"$1\" (see --help)" ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || die "must run as root (sudo)"

# 1. the package
if [ -n "$deb" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$(realpath "$deb")" >&2
elif ! command -v "$bin" >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends egressd >&2
fi
command -v "$bin" >/dev/null || die "egressd is not installed"

# 2. the config
mkdir -p "$conf_dir/allow.d" "$state"
list=$conf_dir/allow.d/ci.list
{
	echo "# written by egressd-ci.sh"
	set -f # "*.example.com" is an entry, not a glob
	for a in "${allows[@]}"; do
		# one argument may carry several entries (spaces or newlines); the
		# word "shared" belongs to the entry before it ("*.x.example shared")
		line=''
		for e in $a; do
			if [ "$e" = shared ] && [ -n "$line" ]; then
				line+=" shared"
				continue
			fi
			[ -z "$line" ] || echo "$line"
			line=$e
		done
		[ -z "$line" ] || echo "$line"
	done
	set +f
	for f in "${files[@]}"; do echo "# from $f"; cat "$f"; done
	if [ $runner = yes ] && [ -e "$here/runner.list" ]; then
		echo "# the CI runner's own endpoints"; cat "$here/runner.list"
	fi
} >"$list"
allow="$conf_dir/allow.d/*.list"
for p in "${presets[@]}"; do
	for n in $p; do
		[[ $n =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad preset name \"$n\""
		allow+=" preset:$n"
	done
done
enforce=yes
[ $audit = no ] || enforce=no
events=$(events_path)
cat >"$conf" <<CONF
# written by egressd-ci.sh
[egressd]
mode = host
enforce = $enforce
allow = $allow
[log]
file = $events
level = deny
CONF
"$bin" check -c "$conf" >&2 || die "config rejected"

# 3. the ruleset and the daemon
if use_systemd; then
	# Type=notify: "start" returns once egressd is ready (the unit applies the rules).
	systemctl restart egressd.service || { systemctl status egressd.service >&2 || true; die "egressd failed to start"; }
	say "ready (egressd.service)"
	exit 0
fi

"$bin" rules -c "$conf" --apply || die "cannot apply the ruleset"
export EGRESSD_USER=${EGRESSD_USER-egressd}
getent passwd "$EGRESSD_USER" >/dev/null || EGRESSD_USER=''
: >"$events"
# the daemon reopens its log on SIGHUP, after dropping to EGRESSD_USER
[ -z "$EGRESSD_USER" ] || chown "$EGRESSD_USER" "$events"
setsid "$bin" -c "$conf" </dev/null >>"$state/egressd.out" 2>&1 &
echo $! >"$state/egressd.pid"
deadline=$((SECONDS + timeout))
until grep -q '"event":"ready"' "$events" 2>/dev/null; do
	kill -0 "$(cat "$state/egressd.pid")" 2>/dev/null || { cat "$state/egressd.out" >&2; die "egressd exited before it was ready"; }
	[ $SECONDS -lt $deadline ] || die "egressd not ready after ${timeout}s"
	sleep 0.2
done
say "ready (pid $(cat "$state/egressd.pid"), events in $events)"
