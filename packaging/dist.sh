#!/bin/sh
# make dist: writes dist/umlutils-VERSION.tar.gz (the tracked sources plus
# the vendored Go modules, so that building from it needs no network) and
# dist/umlutils.spec (packaging/umlutils.spec with that version), for
# `rpmbuild -bb dist/umlutils.spec --define "_sourcedir $PWD/dist"`.
# Vendoring happens in the tarball's tree only, never in the checkout.
# Usage: packaging/dist.sh GO VERSION
set -eu
go=$1
version=$2
name=umlutils-$version
work=dist/.dist
rm -rf "$work"
mkdir -p "$work/$name"
trap 'rm -rf "$work"' EXIT

if git rev-parse --show-toplevel >/dev/null 2>&1 && [ "$(git rev-parse --show-prefix)" = "" ]; then
	# Tracked files, as they are in the work tree.
	git ls-files -z | xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] || continue; dir=$(dirname "$f"); mkdir -p "$0/$dir"; cp -P "$f" "$0/$f"; done' "$work/$name"
else
	# Not a git checkout (an unpacked tarball): everything but build output.
	tar -cf - --exclude=./dist --exclude=./bin --exclude=./vendor --exclude=./.git . | tar -xf - -C "$work/$name"
fi
echo "$version" >"$work/$name/VERSION"
sed "s/^Version:.*/Version:        $version/" packaging/umlutils.spec >"$work/$name/packaging/umlutils.spec"
(cd "$work/$name" && GOFLAGS=-mod=mod "$go" mod vendor)

mtime=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
	-C "$work" -cf - "$name" | gzip -9n >"dist/$name.tar.gz.tmp"
mv "dist/$name.tar.gz.tmp" "dist/$name.tar.gz"
cp "$work/$name/packaging/umlutils.spec" dist/umlutils.spec
echo "dist/$name.tar.gz"
