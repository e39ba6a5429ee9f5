#!/bin/bash
# Install every Debian package that egressd's build and its tests need.
# Idempotent and quiet: when everything is already installed, apt is not run.
set -euo pipefail

PKGS=(
	# build
	gcc pkg-config meson ninja-build
	libnetfilter-queue-dev libmnl-dev libnftables-dev libnftnl-dev
	libevent-dev libinih-dev libcmocka-dev libc-ares-dev libpsl-dev
	libidn2-dev libsystemd-dev libssl-dev libcap-ng-dev libjson-c-dev
	# bounded fuzzing (libFuzzer) in CI
	clang libclang-rt-14-dev
	# sanitizer runtimes for the build-asan tree
	libasan8 libubsan1
	# the netns lab
	iproute2 procps nftables iptables nginx-light dnsmasq-base
	bind9-dnsutils curl openssl ca-certificates
	python3 python3-pytest python3-scapy python3-cryptography conntrack chromium
	# the failover pair lab (tests/netns/ha)
	keepalived conntrackd
	# packaging tests (tests/pkg/run.sh): .deb, lintian, appliance rootfs
	dpkg-dev debhelper lintian fakeroot mmdebstrap libcap2-bin util-linux
	# egressd status under a terminal (tests/netns/test_status.py)
	tmux
)

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/deps.sh: must run as root (apt-get)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "tests/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "tests/deps.sh: apt-get failed" >&2
	exit 1
fi
