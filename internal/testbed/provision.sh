#!/usr/bin/env bash
# Provision the real-kernel test bed (docs/testbed.md §2):
#   - Debian 12 packages: UML 6.1 kernel, the C uml-utilities (reference peers),
#     QEMU and tools the guests and tests use;
#   - a modern UML 7.x kernel from Debian unstable, unpacked privately with its
#     own libc (never installed into the system);
#   - Debian 12's cloud kernel for QEMU guests: its vmlinuz and the virtio
#     network modules, unpacked into the cache (never installed).
# The umlab root image itself is built by the e2e tests on first use
# (internal/testbed/labimage), into $cache/images.
# Idempotent: a second run with everything present does almost nothing.
# Prints the directory holding the private kernel on its last line.
#
# provision.sh --lab installs only what running labs needs (make demo): the
# UML 6.1 kernel and the image builder's packages, no test peers, no QEMU,
# no kernel from unstable.
set -euo pipefail

lab_only=0
[ "${1:-}" = --lab ] && lab_only=1

cache=${UMLUTILS_TESTBED:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/umlutils/testbed}
mkdir -p "$cache"

pkgs=(user-mode-linux uml-utilities iputils-ping tcpdump e2fsprogs busybox-static
      iproute2 patchelf gcc libc6-dev qemu-system-x86 telnetd telnet vde2 qemu-utils
      procps util-linux coreutils file rpm cpio man-db
      # umlab's root image (lab/image_build.go): mmdebstrap builds the tree
      # (gpg: its signed-by check), mkfs.ext4 -d and debugfs from e2fsprogs
      # make and read the image, uidmap lets non-root users build it.
      mmdebstrap gpg uidmap debian-archive-keyring)

if [ $lab_only = 1 ]; then
	pkgs=(user-mode-linux e2fsprogs iproute2 mmdebstrap gpg uidmap debian-archive-keyring)
	# umlab builds UML 6.1's XSAVE fix with the C compiler on CPUs with AMX.
	grep -q ' amx' /proc/cpuinfo && pkgs+=(gcc libc6-dev)
fi
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

if [ $lab_only = 1 ]; then
	echo "$cache"
	exit 0
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

# The QEMU guests' kernel: Debian 12's cloud kernel, whose virtio drivers are
# modules. qemu/ holds vmlinuz, modules/NAME.ko (uncompressed: busybox insmod
# may lack xz) and modules/order (load order, dependencies first).
qemu="$cache/qemu"
if [ ! -s "$qemu/vmlinuz" ] || [ ! -s "$qemu/modules/order" ]; then
	meta=linux-image-cloud-amd64
	pkg=$(apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -1)
	if [ -z "$pkg" ]; then
		echo "provision: $meta changed shape: no Depends on a versioned linux-image-*-cloud-amd64 (apt-cache depends $meta)" >&2
		apt-cache depends "$meta" >&2 || true
		exit 1
	fi
	echo "provision: fetching $pkg for QEMU guests" >&2
	qwork=$(mktemp -d "$cache/qemu.XXXXXX")
	trap 'rm -rf "$qwork"' EXIT
	mkdir -p "$qwork/root" "$qwork/new/modules"
	# The cache may sit where apt's _apt user cannot write: download as root.
	(cd "$qwork" && apt-get -o APT::Sandbox::User=root download "$pkg" >&2)
	deb=$(ls "$qwork"/*.deb 2>/dev/null | head -1 || true)
	[ -n "$deb" ] || { echo "provision: apt-get download $pkg left no .deb" >&2; exit 1; }
	dpkg-deb -x "$deb" "$qwork/root"
	vmlinuz=$(ls "$qwork"/root/boot/vmlinuz-* 2>/dev/null | head -1 || true)
	moddir=$(ls -d "$qwork"/root/lib/modules/*/ "$qwork"/root/usr/lib/modules/*/ 2>/dev/null | head -1 || true)
	if [ -z "$vmlinuz" ] || [ -z "$moddir" ]; then
		echo "provision: $pkg changed shape: want boot/vmlinuz-* and lib/modules/VERSION/, found:" >&2
		(cd "$qwork/root" && find . -maxdepth 3) | head -30 >&2
		exit 1
	fi
	# modinfo_depends FILE: the module's depends= (its .modinfo strings);
	# works on plain .ko files without kmod installed.
	modinfo_depends() { tr '\0' '\n' < "$1" | sed -n 's/^depends=//p' | head -1; }
	declare -A seen=()
	order=()
	# add NAME: load NAME after what it depends on (depth first); a module
	# built into the kernel needs nothing.
	add() {
		local name=$1 f plain d
		[ -z "${seen[$name]:-}" ] || return 0
		seen[$name]=1
		if grep -Eq "/${name}\.ko\$" "$moddir/modules.builtin" 2>/dev/null; then return 0; fi
		f=$(find "$moddir/kernel" \( -name "$name.ko" -o -name "$name.ko.xz" -o -name "$name.ko.zst" -o -name "$name.ko.gz" \) | head -1)
		if [ -z "$f" ]; then
			# Module files may spell - as _ .
			f=$(find "$moddir/kernel" \( -name "${name//_/-}.ko" -o -name "${name//_/-}.ko.*" \) | head -1)
		fi
		[ -n "$f" ] || { echo "provision: $pkg changed shape: no module $name in $moddir" >&2; exit 1; }
		plain="$qwork/new/modules/$name.ko"
		case "$f" in
		*.ko) cp "$f" "$plain" ;;
		*.xz) xz -dc "$f" > "$plain" ;;
		*.zst) zstd -qdc "$f" > "$plain" ;;
		*.gz) gzip -dc "$f" > "$plain" ;;
		esac
		for d in $(modinfo_depends "$plain" | tr ',' ' '); do add "${d//-/_}"; done
		order+=("$name")
	}
	for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
		failover net_failover virtio_net; do
		add "$m"
	done
	cp "$vmlinuz" "$qwork/new/vmlinuz"
	printf '%s\n' "${order[@]}" > "$qwork/new/modules/order"
	echo "$pkg $(dpkg-deb -f "$deb" Version)" > "$qwork/new/VERSION"
	rm -rf "$qemu"; mv "$qwork/new" "$qemu"
	rm -rf "$qwork"; trap - EXIT
fi

# The ptrace shim UML 6.1 needs on hosts with large XSAVE areas (docs/testbed.md §3),
# for the demo and bench scripts; the Go test bed rebuilds it when it is
# older than its source.
src=$(cd "$(dirname "$0")/../../lab/shim" && pwd)/ptracefix.c
if [ ! -e "$cache/ptracefix.so" ] || [ "$src" -nt "$cache/ptracefix.so" ]; then
	gcc -shared -fPIC -O2 -o "$cache/ptracefix.so.$$" "$src" -ldl
	mv "$cache/ptracefix.so.$$" "$cache/ptracefix.so"
fi
echo "$cache"
