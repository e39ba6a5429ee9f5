#!/bin/bash
# Packaging tests (root): tests/pkg/run.sh [--no-appliance]
#
#  1. builds the .deb (packaging/build-deb.sh) and runs lintian on it;
#  2. installs it into this machine with dpkg -i (no service is started:
#     the package must not enable or start anything) and checks files, user,
#     units, the unit's security exposure;
#  3. runs the sidecar entrypoint and the CI script in network namespaces
#     acting as a job's: an allowed flow works, a denied one fails and is
#     logged, a job process without CAP_NET_ADMIN/CAP_NET_RAW cannot remove
#     the ruleset, and after the daemon stops the filter stays closed;
#  4. runs the daemon under the unit's capability bounding set and
#     NoNewPrivileges and checks what it holds after the drop, and the netns
#     lab's flow and DNS-guard tests against the installed binary;
#  5. purges the package (inside a namespace holding the ruleset) and checks
#     that everything it added is gone, the ruleset included;
#  6. builds the appliance rootfs (mmdebstrap) and runs its check script.
#
# Every check prints "ok - ..." or "not ok - ..."; the last line is
# "N passed, M failed"; exit status 1 if any failed. Only documentation
# addresses are used, only inside namespaces created here (egx-pkg*), which
# are deleted on exit, failure included.
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
appliance=yes
[ "${1:-}" = "--no-appliance" ] && appliance=no

pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else nok "$what"; fi; }
finish() {
	echo "$pass passed, $fail failed"
	[ $fail -eq 0 ]
	exit
}

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/pkg/run.sh: must run as root" >&2
	exit 1
fi

# ---- tools this script needs beyond the build dependencies ------------------
need=(debhelper lintian fakeroot mmdebstrap libcap2-bin util-linux curl python3 nftables iproute2)
missing=()
for p in "${need[@]}"; do
	[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "# installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		{ nok "install test tools: ${missing[*]}"; finish; }
fi

work=$(mktemp -d /tmp/egressd-pkgtest.XXXXXX)
chmod 0755 "$work" # the daemon reads its files after dropping to user egressd
pids=()
namespaces=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	if [ -n "${installed:-}" ] && dpkg-query -W egressd >/dev/null 2>&1; then
		dpkg --purge egressd >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until "$@" succeeds, at most $1 seconds (polls every 0.1 s).
wait_for() {
	local t=$1; shift
	local deadline=$((SECONDS + t))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

start=$SECONDS

# ---- 1. build and lintian ---------------------------------------------------
if DEB_BUILD_OPTIONS=nocheck "$src/packaging/build-deb.sh" "$work/deb" >"$work/build.log" 2>&1; then
	ok "deb: dpkg-buildpackage -us -uc builds (packaging/build-deb.sh)"
else
	nok "deb: dpkg-buildpackage -us -uc builds"
	tail -n 30 "$work/build.log" | sed 's/^/# /'
	finish
fi
deb=$(ls "$work"/deb/egressd_*_*.deb | head -n1)
lintian --pedantic --fail-on error,warning "$work"/deb/egressd_*.changes >"$work/lintian.log" 2>&1
lrc=$?
if [ $lrc -eq 0 ] && ! grep -q '^[EW]:' "$work/lintian.log"; then
	ok "deb: lintian --pedantic reports no error or warning"
else
	nok "deb: lintian clean"
	sed 's/^/# /' "$work/lintian.log" | head -n 30
fi
grep -q '^[IPX]:' "$work/lintian.log" && sed -n 's/^\([IPX]:.*\)/# lintian: \1/p' "$work/lintian.log"

contents=$(dpkg-deb -c "$deb")
for f in ./usr/sbin/egressd ./usr/share/man/man8/egressd.8.gz ./usr/share/man/man5/egressd.conf.5.gz \
	./etc/egressd/egressd.conf ./etc/egressd/allow.d/ ./usr/share/egressd/presets/debian.list \
	./usr/share/egressd/multitenant.list \
	./lib/systemd/system/egressd.service ./lib/systemd/system/egressd-rules.service; do
	check "deb: contains ${f#.}" grep -q " $f\$" <<<"$contents"
done
check "deb: /etc/egressd/egressd.conf is a conffile" \
	sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/egressd/egressd.conf"
dpkg-deb -e "$deb" "$work/ctl"
check "deb: maintainer scripts never start the service" sh -c "! grep -q 'deb-systemd-invoke start' '$work/ctl/postinst'"
check "deb: upgrade only try-restarts a running service (no stop in preinst)" \
	sh -c "grep -q 'try-restart' '$work/ctl/postinst' && ! grep -q 'stop' '$work/ctl/preinst' 2>/dev/null"
check "deb: postrm purge deletes table inet egressd, guarded by nft list table" \
	sh -c "grep -q 'nft list table inet egressd' '$work/ctl/postrm' && grep -q 'nft delete table inet egressd' '$work/ctl/postrm'"

# ---- 2. install into this machine --------------------------------------------
if dpkg-query -W egressd >/dev/null 2>&1; then
	dpkg --purge egressd >/dev/null 2>&1 || true
fi
if dpkg -i "$deb" >"$work/install.log" 2>&1; then
	installed=1
	ok "install: dpkg -i succeeds"
else
	nok "install: dpkg -i"
	sed 's/^/# /' "$work/install.log" | tail -n 20
	finish
fi
check "install: system user egressd (no home, no login)" \
	sh -c "getent passwd egressd | grep -q ':/nonexistent:/usr/sbin/nologin$'"
check "install: group egressd" getent group egressd
check "install: binary runs (--version)" /usr/sbin/egressd --version
check "install: shipped config passes egressd check" /usr/sbin/egressd check -c /etc/egressd/egressd.conf
check "install: allow.d exists and is empty" sh -c '[ -d /etc/egressd/allow.d ] && [ -z "$(ls -A /etc/egressd/allow.d)" ]'
check "install: man egressd(8) and egressd.conf(5) render" \
	sh -c 'man -l /usr/share/man/man8/egressd.8.gz >/dev/null && man -l /usr/share/man/man5/egressd.conf.5.gz >/dev/null'
# `systemctl is-enabled` reads the unit files (no running systemd needed): the
# answer must be exactly "disabled" (installed, not enabled); no systemctl, an
# unknown unit or any other state fails.
check "install: egressd.service installed and disabled" \
	sh -c '[ "$(systemctl is-enabled egressd.service 2>&1)" = disabled ]'
check "install: egressd-rules.service installed and disabled" \
	sh -c '[ "$(systemctl is-enabled egressd-rules.service 2>&1)" = disabled ]'
check "install: no egressd process was started" sh -c '! pgrep -f "^/usr/sbin/egressd( |$)"'
check "install: no enablement symlinks" sh -c '! ls /etc/systemd/system/*.wants/egressd*.service'
check "unit: systemd-analyze verify is silent" sh -c \
	'[ -z "$(systemd-analyze verify --man=no /lib/systemd/system/egressd.service /lib/systemd/system/egressd-rules.service 2>&1)" ]'
unit=/lib/systemd/system/egressd.service
for kv in Type=notify 'ExecStartPre=+/usr/sbin/egressd rules' Environment=EGRESSD_USER=egressd \
	'ExecReload=/bin/kill -HUP $MAINPID' NoNewPrivileges=yes ProtectSystem=strict \
	'RestrictAddressFamilies=AF_NETLINK AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
	LogsDirectory=egressd Restart=on-failure; do
	check "unit: $kv" grep -qF "$kv" "$unit"
done
check "unit: no ExecStop/ExecStopPost (the ruleset stays while the daemon restarts)" \
	sh -c "! grep -Eq '^ExecStop(Post)?=' '$unit'"
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for egressd.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 3.0) }'; then
	ok "unit: systemd-analyze security exposure $exposure (<= 3.0)"
else
	nok "unit: systemd-analyze security exposure '${exposure}'"
fi

# ---- lab: a job namespace and a fake internet ------------------------------
# egx-pkgnet: 192.0.2.1 on the veth, and the servers 203.0.113.10 (allowed)
# and 198.51.100.20 (denied), each with an HTTP server on port 80.
lab_up() { # $1 = job namespace name
	local job=$1 net=${1}n
	ip netns add "$job" && namespaces+=("$job") || return 1
	ip netns add "$net" && namespaces+=("$net") || return 1
	ip -n "$job" link set lo up
	ip -n "$net" link set lo up
	ip link add "${job}a" netns "$job" type veth peer name "${job}b" netns "$net" || return 1
	ip -n "$job" addr add 192.0.2.2/24 dev "${job}a"
	ip -n "$net" addr add 192.0.2.1/24 dev "${job}b"
	ip -n "$job" link set "${job}a" up
	ip -n "$net" link set "${job}b" up
	ip -n "$job" route add default via 192.0.2.1
	ip -n "$net" addr add 203.0.113.10/32 dev lo
	ip -n "$net" addr add 198.51.100.20/32 dev lo
	mkdir -p "$work/www"
	echo "hello from the fake internet" >"$work/www/index.html"
	ip netns exec "$net" /usr/bin/python3 -m http.server 80 --bind 0.0.0.0 --directory "$work/www" \
		>"$work/http-$net.log" 2>&1 &
	pids+=($!)
	wait_for 10 ip netns exec "$job" curl -sf -m 2 -o /dev/null http://203.0.113.10/
}
fetch() { # $1 = namespace, $2 = URL
	ip netns exec "$1" curl -sf -m 4 -o /dev/null "$2"
}
# A process of the job without CAP_NET_ADMIN and CAP_NET_RAW (bounding set
# too, so nothing can regain them) tries to remove the filter.
cannot_remove_rules() { # $1 = namespace
	! ip netns exec "$1" capsh --drop=cap_net_admin,cap_net_raw -- -c \
		'nft delete table inet egressd' >/dev/null 2>&1 &&
	! ip netns exec "$1" capsh --drop=cap_net_admin,cap_net_raw -- -c \
		'nft flush ruleset' >/dev/null 2>&1 &&
	ip netns exec "$1" nft list table inet egressd >/dev/null 2>&1
}
daemon_pid_in() { # $1 = namespace: the egressd daemon's pid there
	local p
	for p in $(ip netns pids "$1"); do
		[ "$(cat /proc/$p/comm 2>/dev/null)" = egressd ] && { echo "$p"; return 0; }
	done
	return 1
}

# ---- 3a. the sidecar entrypoint ----------------------------------------------
if lab_up egx-pkgs; then
	ok "lab: namespaces and fake internet up (sidecar)"
	side=$work/side
	mkdir -p "$side"
	ip netns exec egx-pkgs env EGRESSD_BIN=/usr/sbin/egressd EGRESSD_CONF_DIR="$side/etc" \
		EGRESSD_READY_FILE="$side/ready" EGRESSD_ALLOW="203.0.113.10/32:80" \
		EGRESSD_PRESETS="debian" EGRESSD_UPSTREAM=192.0.2.1 EGRESSD_READY_TIMEOUT=20 \
		"$src/packaging/container/entrypoint.sh" >"$side/events.json" 2>"$side/stderr" &
	side_pid=$!
	pids+=($side_pid)
	if wait_for 25 test -e "$side/ready"; then
		ok "sidecar: entrypoint writes the config, applies the rules, touches the ready file"
	else
		nok "sidecar: ready file"
		sed 's/^/# /' "$side/stderr" | tail -n 20
	fi
	check "sidecar: generated config is host mode with the allowlist and preset" \
		sh -c "grep -q '^mode = host' '$side/etc/egressd.conf' && grep -q 'preset:debian' '$side/etc/egressd.conf' &&
		       grep -qx '203.0.113.10/32:80' '$side/etc/allow.d/sidecar.list'"
	check "sidecar: ready event on stdout" grep -q '"event":"ready"' "$side/events.json"
	check "sidecar: allowed endpoint reachable (203.0.113.10:80)" fetch egx-pkgs http://203.0.113.10/
	check "sidecar: denied endpoint unreachable (198.51.100.20:80)" sh -c '! ip netns exec egx-pkgs curl -sf -m 4 -o /dev/null http://198.51.100.20/'
	check "sidecar: denial logged as a JSON line (dst 198.51.100.20)" \
		wait_for 5 grep -q '"event":"deny".*"dst":"198.51.100.20"' "$side/events.json"
	check "sidecar: a job process without NET_ADMIN/NET_RAW cannot remove the rules" cannot_remove_rules egx-pkgs
	dpid=$(daemon_pid_in egx-pkgs || true)
	egid=$(id -u egressd)
	check "sidecar: daemon dropped to user egressd" sh -c "[ -n '$dpid' ] && grep -Eq '^Uid:\s+$egid\s' /proc/$dpid/status"
	check "sidecar: daemon keeps only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE" \
		sh -c "[ -n '$dpid' ] && grep -Eq '^CapEff:\s+0+1400$' /proc/$dpid/status"
	kill -TERM "$side_pid" 2>/dev/null
	check "sidecar: SIGTERM stops the sidecar" wait_for 10 sh -c "! kill -0 $side_pid"
	check "sidecar: ruleset stays after the daemon stopped (fail closed)" \
		ip netns exec egx-pkgs nft list table inet egressd
	check "sidecar: with egressd stopped, even the allowed endpoint is unreachable" \
		sh -c '! ip netns exec egx-pkgs curl -sf -m 3 -o /dev/null http://203.0.113.10/'
	check "sidecar: ready file removed on exit" sh -c "[ ! -e '$side/ready' ]"
else
	nok "lab: namespaces and fake internet up (sidecar)"
fi

# ---- 3b. the CI script ---------------------------------------------------------
if lab_up egx-pkgc; then
	ok "lab: namespaces and fake internet up (CI)"
	ci=$work/ci
	mkdir -p "$ci"
	if ip netns exec egx-pkgc env EGRESSD_NO_SYSTEMD=1 EGRESSD_BIN=/usr/sbin/egressd \
		EGRESSD_CONF_DIR="$ci/etc" EGRESSD_STATE_DIR="$ci/state" EGRESSD_READY_TIMEOUT=20 \
		"$src/packaging/github-action/egressd-ci.sh" --allow "203.0.113.10/32:80" --preset debian \
		--no-runner >"$ci/out" 2>&1; then
		ok "ci: egressd-ci.sh returns once egressd is ready"
	else
		nok "ci: egressd-ci.sh start"
		sed 's/^/# /' "$ci/out" | tail -n 20
	fi
	[ -e "$ci/state/egressd.pid" ] && pids+=("$(cat "$ci/state/egressd.pid")")
	check "ci: allowed endpoint reachable" fetch egx-pkgc http://203.0.113.10/
	check "ci: denied endpoint unreachable" sh -c '! ip netns exec egx-pkgc curl -sf -m 4 -o /dev/null http://198.51.100.20/'
	ip netns exec egx-pkgc env EGRESSD_NO_SYSTEMD=1 EGRESSD_CONF_DIR="$ci/etc" EGRESSD_STATE_DIR="$ci/state" \
		"$src/packaging/github-action/egressd-ci.sh" --report >"$ci/report" 2>&1
	check "ci: --report lists the denied flow" grep -q '"dst":"198.51.100.20"' "$ci/report"
	check "ci: a job process without NET_ADMIN/NET_RAW cannot remove the rules" cannot_remove_rules egx-pkgc
	check "ci: --stop stops egressd and removes the ruleset" sh -c "
		ip netns exec egx-pkgc env EGRESSD_NO_SYSTEMD=1 EGRESSD_CONF_DIR='$ci/etc' EGRESSD_STATE_DIR='$ci/state' \
			'$src/packaging/github-action/egressd-ci.sh' --stop &&
		! ip netns exec egx-pkgc nft list table inet egressd"
	check "ci: after --stop the namespace is open again" fetch egx-pkgc http://198.51.100.20/
	# audit: nothing denied, the would-be denial logged
	if ip netns exec egx-pkgc env EGRESSD_NO_SYSTEMD=1 EGRESSD_BIN=/usr/sbin/egressd \
		EGRESSD_CONF_DIR="$ci/etc" EGRESSD_STATE_DIR="$ci/state" EGRESSD_READY_TIMEOUT=20 \
		"$src/packaging/github-action/egressd-ci.sh" --allow "203.0.113.10/32:80" --audit --no-runner \
		>"$ci/out2" 2>&1; then
		[ -e "$ci/state/egressd.pid" ] && pids+=("$(cat "$ci/state/egressd.pid")")
		check "ci: --audit lets the not-allowed endpoint through" fetch egx-pkgc http://198.51.100.20/
		check "ci: --audit logs it with enforced false" \
			wait_for 5 grep -q '"dst":"198.51.100.20".*"enforced":false\|"enforced":false.*"dst":"198.51.100.20"' "$ci/state/events.json"
	else
		nok "ci: egressd-ci.sh --audit start"
		sed 's/^/# /' "$ci/out2" | tail -n 20
	fi
	ip netns exec egx-pkgc env EGRESSD_NO_SYSTEMD=1 EGRESSD_CONF_DIR="$ci/etc" EGRESSD_STATE_DIR="$ci/state" \
		"$src/packaging/github-action/egressd-ci.sh" --stop >/dev/null 2>&1
else
	nok "lab: namespaces and fake internet up (CI)"
fi

# ---- 4. the daemon under the unit's capability set -------------------------
# What systemd gives ExecStart= (root, CapabilityBoundingSet=, NoNewPrivileges=)
# emulated with setpriv; the daemon must drop to egressd and become ready.
ns=egx-pkgu
if ip netns add $ns; then
	namespaces+=($ns)
	ip -n $ns link set lo up
	mkdir -p "$work/unit/allow.d" "$work/unit/log"
	echo "203.0.113.0/24:443" >"$work/unit/allow.d/a.list"
	printf '[egressd]\nmode = host\nallow = %s/unit/allow.d/*.list\n[dns]\nupstream = 192.0.2.1\n[log]\nfile = %s/unit/log/events.json\n' \
		"$work" "$work" >"$work/unit/egressd.conf"
	# as LogsDirectory=egressd with Group=egressd and LogsDirectoryMode=0770 make it
	chown root:egressd "$work/unit/log"
	chmod 0770 "$work/unit/log"
	umask_unit=$(sed -n 's/^UMask=//p' "$unit")
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/ /,+/g')
	if ip netns exec $ns /usr/sbin/egressd rules -c "$work/unit/egressd.conf" --apply >/dev/null 2>&1; then
		ip netns exec $ns env EGRESSD_USER=egressd sh -c "umask $umask_unit && exec setpriv \
			--bounding-set=-all,+$caps --no-new-privs --regid=egressd --clear-groups \
			/usr/sbin/egressd -c '$work/unit/egressd.conf'" >"$work/unit/out" 2>&1 &
		pids+=($!)
		if wait_for 15 grep -q '"event":"ready"' "$work/unit/log/events.json"; then
			ok "unit caps: daemon becomes ready under the unit's bounding set + no_new_privs"
		else
			nok "unit caps: daemon ready under the unit's bounding set"
			sed 's/^/# /' "$work/unit/out" | tail -n 10
		fi
		upid=$(daemon_pid_in $ns || true)
		check "unit caps: runs as egressd with CAP_NET_ADMIN+CAP_NET_BIND_SERVICE only" \
			sh -c "[ -n '$upid' ] && grep -Eq '^Uid:\s+$(id -u egressd)\s' /proc/$upid/status &&
			       grep -Eq '^CapEff:\s+0+1400$' /proc/$upid/status"
		if [ -n "$upid" ]; then
			mv "$work/unit/log/events.json" "$work/unit/log/events.json.1"
			kill -HUP "$upid"
		fi
		check "unit caps: SIGHUP after rotation re-creates the log (reload event) as user egressd" \
			wait_for 10 grep -q '"event":"reload"' "$work/unit/log/events.json"
		[ -n "$upid" ] && kill -TERM "$upid"
		check "unit caps: SIGTERM exits, ruleset stays" sh -c \
			"[ -n '$upid' ] && wait_pid() { for i in \$(seq 1 50); do kill -0 '$upid'  2>/dev/null || return 0; sleep 0.1; done; return 1; }; wait_pid &&
			 ip netns exec $ns nft list table inet egressd"
	else
		nok "unit caps: egressd rules --apply in $ns"
	fi
else
	nok "unit caps: cannot create namespace"
fi

# ---- 4b. the netns lab against the installed binary ---------------------------
# The same flows and DNS-guard tests as the lab suite, run by /usr/sbin/egressd.
if EGRESSD_BIN=/usr/sbin/egressd timeout 600 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	"$src/tests/netns/test_flows.py" "$src/tests/netns/test_dns.py" >"$work/lab.log" 2>&1; then
	ok "lab against /usr/sbin/egressd: $(tail -n 1 "$work/lab.log" | tr -d '=')"
else
	nok "lab against /usr/sbin/egressd"
	grep -E '^(FAILED|ERROR)' "$work/lab.log" | sed 's/^/# /' | head -n 20
fi

# ---- 5. purge ------------------------------------------------------------------
# postrm runs nft in the namespace dpkg runs in: give it one holding the ruleset.
ns=egx-pkgp
if ip netns add $ns; then
	namespaces+=($ns)
	ip netns exec $ns /usr/sbin/egressd rules -c /etc/egressd/egressd.conf --apply >/dev/null 2>&1 ||
		ip netns exec $ns /usr/sbin/egressd rules -c "$work/unit/egressd.conf" --apply >/dev/null 2>&1
	check "purge: ruleset present before purge" ip netns exec $ns nft list table inet egressd
	mkdir -p /var/log/egressd
	if ip netns exec $ns dpkg --purge egressd >"$work/purge.log" 2>&1; then
		ok "purge: dpkg --purge succeeds"
	else
		nok "purge: dpkg --purge"
		sed 's/^/# /' "$work/purge.log" | tail
	fi
	check "purge: ruleset deleted" sh -c "! ip netns exec $ns nft list table inet egressd"
	check "purge: user and group removed" sh -c '! getent passwd egressd && ! getent group egressd'
	check "purge: binary, config, units, presets, logs removed" sh -c \
		'[ ! -e /usr/sbin/egressd ] && [ ! -e /etc/egressd ] && [ ! -e /lib/systemd/system/egressd.service ] &&
		 [ ! -e /usr/share/egressd ] && [ ! -e /var/log/egressd ]'
else
	nok "purge: cannot create namespace"
fi

# ---- 6. appliance ----------------------------------------------------------------
if [ $appliance = yes ]; then
	rootfs=$work/rootfs
	t0=$SECONDS
	if "$src/packaging/appliance/build.sh" "$rootfs" "$deb" >"$work/appliance.log" 2>&1; then
		ok "appliance: mmdebstrap rootfs built ($((SECONDS - t0)) s)"
		"$src/packaging/appliance/check.sh" "$rootfs" >"$work/appliance-check.log" 2>&1
		crc=$? seen=0 bad=0
		while IFS= read -r line; do
			case "$line" in
			"ok - "*) ok "${line#ok - }"; seen=$((seen + 1)) ;;
			"not ok - "*) nok "${line#not ok - }"; seen=$((seen + 1)); bad=$((bad + 1)) ;;
			"#"*) echo "$line" ;;
			*) echo "# $line" ;;
			esac
		done <"$work/appliance-check.log"
		# check.sh exits 1 iff a check failed: any other outcome (killed, a
		# shell error, no checks at all) is a failure of its own.
		if (((crc != 0 && bad == 0) || (crc == 0 && bad != 0) || seen == 0)); then
			nok "appliance: check.sh exited $crc after $seen checks ($bad failed)"
		fi
	else
		nok "appliance: mmdebstrap rootfs built"
		tail -n 20 "$work/appliance.log" | sed 's/^/# /'
	fi
fi

echo "# runtime $((SECONDS - start)) s"
finish
