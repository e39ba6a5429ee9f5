#!/bin/bash
# Inspect an appliance rootfs built by build.sh: check.sh ROOTFS_DIR
# Prints "ok - ..." / "not ok - ..." per check; exits 1 if any failed.
# The ruleset is rendered inside a throwaway network namespace (egressd may
# probe the kernel's netfilter features), never in this machine's own.
set -uo pipefail

rootfs=${1:?usage: check.sh ROOTFS_DIR}
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else nok "$what"; fi; }
enabled() { [ "$(systemctl --root="$rootfs" is-enabled "$1" 2>/dev/null)" = enabled ]; }
not_enabled() { ! enabled "$1"; }

check "appliance: egressd installed" test -x "$rootfs/usr/sbin/egressd"
check "appliance: egressd.service enabled" enabled egressd.service
check "appliance: egressd-rules.service enabled (fail closed at boot)" enabled egressd-rules.service
check "appliance: systemd-networkd enabled" enabled systemd-networkd.service
check "appliance: systemd-resolved enabled" enabled systemd-resolved.service
check "appliance: no SSH server enabled" not_enabled ssh.service
check "appliance: config in place" test -s "$rootfs/etc/egressd/egressd.conf"
check "appliance: config is gateway mode on eth1" \
	grep -Eq '^inside *= *eth1' "$rootfs/etc/egressd/egressd.conf"
check "appliance: config mode = gateway" grep -Eq '^mode *= *gateway' "$rootfs/etc/egressd/egressd.conf"
check "appliance: allow.d exists" test -d "$rootfs/etc/egressd/allow.d"
check "appliance: presets installed" test -s "$rootfs/usr/share/egressd/presets/debian.list"
check "appliance: outside network file does DHCP" \
	grep -Eq '^DHCP=(yes|ipv4)' "$rootfs/etc/systemd/network/10-outside.network"
check "appliance: inside network file has the gateway address" \
	grep -q '^Address=198.51.100.1/24' "$rootfs/etc/systemd/network/20-inside.network"
check "appliance: sysctl IPv4 forwarding on" \
	grep -Eq '^net.ipv4.ip_forward *= *1' "$rootfs/etc/sysctl.d/90-egressd-gateway.conf"
check "appliance: sysctl IPv6 forwarding on" \
	grep -Eq '^net.ipv6.conf.all.forwarding *= *1' "$rootfs/etc/sysctl.d/90-egressd-gateway.conf"
check "appliance: egressd system user" chroot "$rootfs" getent passwd egressd
check "appliance: egressd check accepts the config" \
	chroot "$rootfs" /usr/sbin/egressd check -c /etc/egressd/egressd.conf

ns=egx-appl-$$
if ip netns add "$ns"; then
	out=$(ip netns exec "$ns" chroot "$rootfs" /usr/sbin/egressd rules -c /etc/egressd/egressd.conf 2>&1)
	rc=$?
	ip netns del "$ns"
	if [ $rc -eq 0 ] && grep -q 'table inet egressd' <<<"$out" && grep -q 'hook forward' <<<"$out" &&
	   grep -q '"eth1"' <<<"$out" && grep -q '198.51.100.1' <<<"$out"; then
		ok "appliance: egressd rules prints the gateway ruleset (forward hook, eth1, DNS to 198.51.100.1)"
	else
		nok "appliance: egressd rules prints the gateway ruleset"
		printf '%s\n' "$out" | sed 's/^/# /' | head -40
	fi
else
	nok "appliance: cannot create network namespace $ns"
fi

echo "appliance: $pass passed, $fail failed"
[ $fail -eq 0 ]
