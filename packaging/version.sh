#!/bin/sh
# Prints the package version. In a git checkout: from `git describe` on the
# last v* tag (v1.2.0-3-gabc1234 -> 1.2.0+git3.gabc1234, v1.3.0-rc1 ->
# 1.3.0~rc1) or, before the first tag, VERSION with a snapshot suffix
# (0.1.0~git20261127.abc1234, which sorts before 0.1.0). Elsewhere, e.g. in a
# `make dist` tarball, whose VERSION holds the full version: VERSION as is.
# Both dpkg and rpm order ~ before and + after the version it follows.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd -P)
if [ ! -r "$root/VERSION" ]; then
	echo "version.sh: $root/VERSION: missing" >&2
	exit 1
fi
base=$(tr -d ' \n' <"$root/VERSION")
top=$(git -C "$root" rev-parse --show-toplevel 2>/dev/null || true)
if [ -z "$top" ] || [ "$(cd "$top" && pwd -P)" != "$root" ]; then
	echo "$base"
	exit 0
fi
dirty=
git -C "$root" diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
if d=$(git -C "$root" describe --tags --match 'v[0-9]*' 2>/dev/null); then
	echo "${d#v}$dirty" | sed -E 's/-([0-9]+)-g([0-9a-f]+)(\.dirty)?$/+git\1.g\2\3/; s/-/~/g'
else
	echo "$base~git$(git -C "$root" log -1 --date=format:%Y%m%d --format=%cd.%h)$dirty"
fi
