#!/bin/bash
# Build the egressd .deb: packaging/build-deb.sh [OUTDIR]
#
# dpkg-buildpackage wants ./debian at the top of the source tree; the project
# keeps it in packaging/debian. This copies the working tree (without .git and
# build directories) to a temporary directory, puts packaging/debian at its
# top, runs "dpkg-buildpackage -us -uc" there (source and binary) and moves the results to
# OUTDIR (default: ./deb-out). Extra options for dpkg-buildpackage can be
# given in DPKG_BUILDPACKAGE_OPTS; DEB_BUILD_OPTIONS is passed through.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$PWD/deb-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d /tmp/egressd-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n1)
if [ "$version" != "$meson_version" ]; then
	echo "build-deb.sh: debian/changelog says $version, meson.build says $meson_version" >&2
	exit 1
fi

tree="$work/egressd-$version"
mkdir -p "$tree"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./deb-out \
	--exclude=./packaging/debian/.debhelper -cf - . | tar -C "$tree" -xf -
cp -a "$src/packaging/debian" "$tree/debian"

(cd "$tree" && dpkg-buildpackage -us -uc ${DPKG_BUILDPACKAGE_OPTS:-})

shopt -s nullglob
files=("$work"/egressd_"$version"* "$work"/egressd-dbgsym_"$version"_*)
if [ ${#files[@]} -eq 0 ]; then
	echo "build-deb.sh: no package produced" >&2
	exit 1
fi
mv -f "${files[@]}" "$out"/
for f in "${files[@]}"; do echo "$out/${f##*/}"; done
