package lab

import (
	"fmt"
	"sort"
	"strings"
)

// imageProfile is what goes into an image.
type imageProfile struct {
	// Packages are installed (with their dependencies, not their
	// recommendations) on top of mmdebstrap's minbase variant.
	Packages []string
	// Disable are units that must not start at boot: lab startup files
	// start them (`systemctl start frr`, `/etc/init.d/named start`).
	Disable []string
	// DisableInit are their System V init scripts, whose rc?.d links
	// `systemctl disable` leaves when the unit has another name
	// (nfs-server.service is nfs-kernel-server's).
	DisableInit []string
}

// profiles: one profile with everything the OSPF, Kathará and HA labs use.
// The package list follows what labs expect of a Netkit or Kathará guest
// (kathara/base's Dockerfile lists network tools, bind and apache;
// kathara/frr adds FRR) plus the HA lab's cluster stack; compilers, python
// pip modules and the ssh server of kathara/base are left out.
var profiles = map[string]imageProfile{
	DefaultProfile: {
		Packages: []string{
			// init and base system
			"systemd", "systemd-sysv", "udev", "kmod", "procps", "psmisc",
			"hostname", "netbase", "less", "nano", "vim-tiny", "ca-certificates",
			// network tools
			"iproute2", "iputils-ping", "iputils-tracepath", "arping", "net-tools",
			"ifupdown", "tcpdump", "traceroute", "iptables", "ethtool",
			"bridge-utils", "netcat-openbsd", "telnet", "curl", "wget", "iperf3",
			"hping3", "ndisc6",
			// DNS
			"bind9", "bind9-utils", "bind9-host", "dnsutils",
			// routing (Debian 12: FRR 8.4)
			"frr", "frr-pythontools", "radvd",
			// web (kathara/base, kathara/apache)
			"apache2",
			// the HA lab
			"heartbeat", "nfs-kernel-server", "rpcbind",
		},
		Disable: []string{
			"frr.service", "named.service", "radvd.service",
			"apache2.service", "apache-htcacheclean.service",
			"heartbeat.service", "logd.service",
			"nfs-server.service", "nfs-blkmap.service", "rpcbind.service", "rpcbind.socket",
			// A guest has no route to a Debian mirror.
			"apt-daily.timer", "apt-daily-upgrade.timer",
		},
		DisableInit: []string{
			"frr", "named", "radvd", "apache2", "apache-htcacheclean",
			"heartbeat", "logd", "nfs-kernel-server", "rpcbind",
		},
	},
}

// ProfileNames lists the image profiles Build accepts.
func ProfileNames() []string {
	var names []string
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// customizeScript is run by mmdebstrap's customize hook with the new root
// as $1 (the chroot has /proc, /sys and /dev mounted then). It removes
// everything that would tie the image to one machine, disables the lab
// daemons, and checks its own work.
func customizeScript(p imageProfile) string {
	var b strings.Builder
	b.WriteString(`set -eu
root=$1
echo "I: umlab: customizing the image"
# Per-machine identity: an empty machine-id makes systemd take one from the
# kernel command line (systemd.machine_id=) or make a transient one.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/etc/hostname" "$root/etc/mailname"
rm -f "$root"/etc/ssh/ssh_host_*
# mmdebstrap copies the build host's resolver and hosts files in.
: > "$root/etc/resolv.conf"
cat > "$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
# Root logs in on the console without a password, as on Netkit's image.
chroot "$root" passwd -d root >/dev/null
# As Kathara's frr image: per-daemon configuration files work, and no
# frr.conf of Debian's shadows the ones labs bring.
if [ -f "$root/etc/frr/vtysh.conf" ]; then
	sed -i -e 's/^service integrated-vtysh-config/no service integrated-vtysh-config/' "$root/etc/frr/vtysh.conf"
	rm -f "$root/etc/frr/frr.conf"
fi
# Kathara's images call bind's init script by its old name too.
if [ -e "$root/etc/init.d/named" ] && [ ! -e "$root/etc/init.d/bind" ]; then
	ln -s named "$root/etc/init.d/bind"
fi
`)
	if len(p.Disable) > 0 {
		fmt.Fprintf(&b, "for u in %s; do\n", strings.Join(p.Disable, " "))
		b.WriteString(`	chroot "$root" systemctl disable --quiet "$u" 2>/dev/null || true
	st=$(chroot "$root" systemctl is-enabled "$u" 2>/dev/null || true)
	case "$st" in
	enabled*) echo "E: umlab: $u is still $st at boot" >&2; exit 1 ;;
	esac
done
`)
	}
	if len(p.DisableInit) > 0 {
		fmt.Fprintf(&b, "for s in %s; do\n", strings.Join(p.DisableInit, " "))
		b.WriteString(`	[ -e "$root/etc/init.d/$s" ] || continue
	chroot "$root" update-rc.d "$s" disable >/dev/null 2>&1 || true
	if ls "$root"/etc/rc[2345].d/S??"$s" >/dev/null 2>&1; then
		echo "E: umlab: /etc/init.d/$s still starts at boot" >&2; exit 1
	fi
done
`)
	}
	b.WriteString(`test ! -s "$root/etc/machine-id"
test -L "$root/bin" && test -L "$root/lib" && test -L "$root/sbin"
echo "I: umlab: customized"
`)
	return b.String()
}
