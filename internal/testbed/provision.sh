#!/usr/bin/env bash
# Provision the real-kernel test bed (see ../shared/docs/TESTBED.md):
#   - Debian 12 packages: UML 6.1 kernel, the C uml-utilities (reference peers),
#     QEMU and tools the guests and tests use;
#   - a modern UML 7.x kernel from Debian unstable, unpacked privately with its
#     own libc (never installed into the system).
# Idempotent: a second run with everything present does almost nothing.
# Prints the directory holding the private kernel on its last line.
set -euo pipefail

cache=${UMLUTILS_TESTBED:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/umlutils/testbed}
mkdir -p "$cache"

pkgs=(user-mode-linux uml-utilities iputils-ping tcpdump e2fsprogs busybox-static
      iproute2 patchelf gcc libc6-dev qemu-system-x86 telnetd telnet vde2 qemu-utils
      procps util-linux coreutils file rpm cpio man-db)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "provision: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "provision: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The modern kernel: Debian unstable's user-mode-linux with unstable's libc.
sid="$cache/sid"
if [ ! -x "$sid/linux" ]; then
	echo "provision: fetching UML from Debian unstable" >&2
	work=$(mktemp -d "$cache/sid.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work/sources" "$work/lists/partial" "$work/debs" "$work/root"
	cat > "$work/sources/sid.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	aptopts=(-o Dir::Etc::SourceParts="$work/sources" -o Dir::Etc::SourceList=/dev/null
		-o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	mkdir -p "$work/cache/archives/partial"
	apt-get "${aptopts[@]}" update -qq >&2
	(cd "$work/debs" && apt-get "${aptopts[@]}" download user-mode-linux libc6 >&2)
	for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/root"; done
	kernel=$(ls "$work"/root/usr/bin/linux.uml 2>/dev/null || true)
	if [ -z "$kernel" ]; then
		echo "provision: unstable's user-mode-linux changed shape: no usr/bin/linux.uml in it" >&2
		ls -R "$work/root" | head -50 >&2
		exit 1
	fi
	kernel=$(readlink -f "$kernel")
	libdir="$work/root/usr/lib/x86_64-linux-gnu"
	[ -d "$libdir" ] || libdir="$work/root/lib/x86_64-linux-gnu"
	interp="$libdir/ld-linux-x86-64.so.2"
	[ -e "$interp" ] || { echo "provision: unstable's libc6 changed shape: no ld-linux-x86-64.so.2" >&2; exit 1; }
	rm -rf "$sid.new"; mkdir -p "$sid.new"
	cp -a "$libdir" "$sid.new/lib"
	cp "$kernel" "$sid.new/linux"
	for d in "$work"/debs/user-mode-linux*.deb; do dpkg-deb -f "$d" Version > "$sid.new/VERSION"; done
	# Patch for the final location: the directory is renamed into place below.
	patchelf --set-interpreter "$sid/lib/ld-linux-x86-64.so.2" --set-rpath "$sid/lib" "$sid.new/linux"
	rm -rf "$sid"; mv "$sid.new" "$sid"
fi
echo "$cache"
