#!/bin/sh
# Render the pair's configurations for one box.
#   render.sh gateway-a.env DESTDIR
# writes DESTDIR/keepalived.conf and DESTDIR/conntrackd.conf: every placeholder
# of the *.in files replaced by NAME's value in the env file. TRACK_PROCESS=no
# drops the vrrp_track_process blocks (a box inside a network namespace).
# Copy the results to /etc/keepalived/ and /etc/conntrackd/, the scripts to
# LIBDIR (README.md). tests/netns/ha/halab.py renders the same way.
set -eu
env=$1
dest=$2
here=$(dirname "$0")
mkdir -p "$dest"
sedargs=
while IFS='=' read -r k v; do
	case "$k" in '' | \#*) continue ;; esac
	sedargs="$sedargs -e s|@$k@|$v|g"
	[ "$k" = TRACK_PROCESS ] && tp=$v
done <"$env"
if [ "${tp:-yes}" = yes ]; then
	tpsed='-e /@TRACK_PROCESS_\(BEGIN\|END\)@/d'
else
	tpsed='-e /@TRACK_PROCESS_BEGIN@/,/@TRACK_PROCESS_END@/d'
fi
for f in keepalived conntrackd; do
	# shellcheck disable=SC2086
	sed "$tpsed" $sedargs "$here/$f.conf.in" >"$dest/$f.conf"
	if grep -n '@[A-Z_]*@' "$dest/$f.conf"; then
		echo "render.sh: $dest/$f.conf: unreplaced names above" >&2
		exit 1
	fi
done
