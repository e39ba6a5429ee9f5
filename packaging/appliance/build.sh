#!/bin/bash
# Build the egressd gateway appliance root filesystem:
#   packaging/appliance/build.sh ROOTFS_DIR [DEB]
#
# Debian 12 (mmdebstrap, minbase) from this machine's apt sources
# (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list), plus the
# egressd .deb (default: built with packaging/build-deb.sh). The result:
#   - egressd in gateway mode, inside interface eth1 (198.51.100.1/24, DHCP
#     server for the clients), outside eth0 (DHCP client), NAT on the way out;
#     egressd.service and egressd-rules.service enabled;
#   - systemd-networkd and systemd-resolved (egressd's upstream resolver);
#   - IPv4/IPv6 forwarding on (sysctl.d);
#   - no SSH server (install and enable openssh-server to have one);
#   - reproducible: SOURCE_DATE_EPOCH (default: the date of the last entry in
#     packaging/debian/changelog) fixes timestamps; with a snapshot mirror in
#     the sources the same inputs give the same tree.
# Boot it with a kernel and bootloader of your image tool (or as a container
# with systemd-nspawn -b). Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
rootfs=${1:?usage: build.sh ROOTFS_DIR [DEB]}
deb=${2:-}

[ "$(id -u)" -eq 0 ] || { echo "build.sh: needs root" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Timestamp)}

if [ -z "$deb" ]; then
	out=$(mktemp -d /tmp/egressd-appliance-deb.XXXXXX)
	DEB_BUILD_OPTIONS=nocheck "$src/packaging/build-deb.sh" "$out" >&2
	deb=$(ls "$out"/egressd_*_*.deb | head -n1)
fi
deb=$(realpath "$deb")

# This machine's Debian sources (deb822 or one-line format).
if [ -e /etc/apt/sources.list.d/debian.sources ]; then
	sources=/etc/apt/sources.list.d/debian.sources
elif [ -s /etc/apt/sources.list ]; then
	sources=/etc/apt/sources.list
else
	echo "build.sh: no Debian apt sources found" >&2
	exit 1
fi

if [ -e "$rootfs" ] && [ -n "$(ls -A "$rootfs" 2>/dev/null)" ]; then
	echo "build.sh: $rootfs exists and is not empty" >&2
	exit 1
fi
mkdir -p "$rootfs"

mmdebstrap --mode=root --variant=minbase --format=directory \
	--include=systemd,systemd-sysv,systemd-resolved,udev,dbus,iproute2,nftables,procps,less,ca-certificates \
	--aptopt='Acquire::Retries "3"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--include="$deb" --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
	--customize-hook="sync-in '$here/files' /" \
	--customize-hook='ln -sf /dev/null "$1/etc/systemd/network/99-default.link"' \
	--customize-hook='ln -sf /run/systemd/resolve/resolv.conf "$1/etc/resolv.conf"' \
	--customize-hook='chroot "$1" systemctl enable systemd-networkd.service systemd-resolved.service egressd.service' \
	--customize-hook='chroot "$1" systemctl disable ssh.service 2>/dev/null || true' \
	--customize-hook='echo egressd-gateway > "$1/etc/hostname"' \
	--customize-hook=': > "$1/etc/machine-id"' \
	--customize-hook='rm -f "$1"/var/log/*.log "$1"/var/cache/ldconfig/aux-cache "$1"/var/lib/dbus/machine-id' \
	bookworm "$rootfs" "$sources"

echo "$rootfs"
