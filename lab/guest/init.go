// Package guest is the part of umlab that runs inside a lab guest: the
// first process the kernel starts, the agent that answers the host over
// serial lines, and the runner of the lab's startup and shutdown files.
//
// The guest boots from a small read-only disk umlab builds on the host
// (the "side disk": this program as /init and the running kernel's
// modules), not from its root image. Init mounts the machine's own disk,
// moves into it, prepares it the way Netkit and Kathará guests expect
// (the lab directory at /hostlab, shared/ and MACHINE/ copied over / on the
// first boot, hostname, modules, runtime units), then hands over to the
// image's systemd. So nothing in the image is tied to one umlab version or
// one kernel build, and a new umlab or kernel needs no image rebuild.
//
// The package imports no networking code: the program links statically
// and runs before any libc is reachable. docs/lab.md describes the boot.
package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/umlutils/umlutils/lab/agent"
	"golang.org/x/sys/unix"
)

// Paths inside the guest.
const (
	SideDir    = "/run/umlab/side" // the side disk, seen from the machine's root
	Self       = SideDir + "/init" // this program
	HostLab    = "/hostlab"        // the lab directory (hostfs)
	StateDir   = "/run/umlab"      // status files
	LogDir     = "/var/log/umlab"
	copiedMark = "/var/lib/umlab/copied" // shared/ and MACHINE/ were copied
	newRoot    = "/newroot"
	unitDir    = "/run/systemd/system"
)

// Kernel command-line words read by Init.
const (
	ParamConfig = "umlab.config" // the config disk's device, default /dev/ubdg
)

// DefaultConfigDevice is where the host attaches the config disk (ubd6).
const DefaultConfigDevice = "/dev/ubdg"

// Init is PID 1's work. It returns only on failure; the caller then
// reports the error and powers the guest off, so the host sees the
// kernel exit with the reason in its console log.
func Init() error {
	// The kernel starts init without PATH; the programs run below (ip)
	// and systemd's children look there.
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	cfg, err := readConfig()
	if err != nil {
		return err
	}
	if err := unix.Mount(cfg.Root, newRoot, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount the machine's disk %s: %w", cfg.Root, err)
	}
	run := newRoot + "/run"
	if err := os.MkdirAll(run, 0o755); err != nil {
		return err
	}
	// systemd keeps an already mounted /run, so the units written below
	// survive its start-up.
	if err := unix.Mount("tmpfs", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=20%,nr_inodes=800k"); err != nil {
		return fmt.Errorf("mount /run: %w", err)
	}
	if err := os.MkdirAll(newRoot+SideDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("/", newRoot+SideDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the side disk: %w", err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if err := os.MkdirAll(newRoot+d, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(d, newRoot+d, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", d, err)
		}
	}
	if err := switchRoot(newRoot); err != nil {
		return err
	}
	if err := prepare(cfg); err != nil {
		return err
	}
	argv := append([]string{"/sbin/init"}, os.Args[1:]...)
	return fmt.Errorf("exec /sbin/init: %w", unix.Exec("/sbin/init", argv, os.Environ()))
}

func readConfig() (*agent.Config, error) {
	dev := DefaultConfigDevice
	if v, ok := cmdlineParam(ParamConfig); ok {
		dev = v
	}
	b := make([]byte, 64<<10)
	f, err := os.Open(dev)
	if err != nil {
		return nil, fmt.Errorf("config disk: %w", err)
	}
	defer f.Close()
	n, err := f.Read(b)
	if err != nil {
		return nil, fmt.Errorf("config disk %s: %w", dev, err)
	}
	return agent.UnmarshalConfig(b[:n])
}

// LoadConfig reads the config the init stage saved for the later stages.
func LoadConfig() (*agent.Config, error) {
	b, err := os.ReadFile(StateDir + "/config.json")
	if err != nil {
		return nil, err
	}
	return agent.UnmarshalConfig(b)
}

func cmdlineParam(name string) (string, bool) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", false
	}
	for _, w := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// switchRoot makes dir the root, as switch_root(8) does: the old root
// (the side disk) stays mounted underneath, reachable at SideDir.
func switchRoot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the new root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir("/")
}

// prepare readies the machine's root for systemd; it runs in that root.
func prepare(cfg *agent.Config) error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return err
	}
	raw, _ := agent.MarshalConfig(cfg)
	if err := os.WriteFile(StateDir+"/config.json", raw, 0o644); err != nil {
		return err
	}
	if cfg.Vector {
		// A vector kernel's interfaces are vecN; labs name them ethN.
		for _, name := range cfg.Interfaces {
			vec := "vec" + strings.TrimPrefix(name, "eth")
			if out, err := exec.Command("ip", "link", "set", "dev", vec, "name", name).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "umlab: renaming %s to %s: %v %s\n", vec, name, err, out)
			}
		}
	}
	if err := os.MkdirAll(HostLab, 0o755); err != nil {
		return err
	}
	// The host's hostfs= prefix confines this mount to the lab directory.
	if err := unix.Mount("none", HostLab, "hostfs", 0, ""); err != nil {
		return fmt.Errorf("mount %s: %w", HostLab, err)
	}
	if _, err := os.Stat(copiedMark); err != nil {
		var srcs []string
		if cfg.CopyShared {
			srcs = append(srcs, HostLab+"/shared")
		}
		srcs = append(srcs, HostLab+"/"+cfg.Machine)
		for _, src := range srcs {
			if err := CopyTree(src, "/"); err != nil {
				fmt.Fprintf(os.Stderr, "umlab: copying %s over /: %v\n", src, err)
			}
		}
		os.MkdirAll(filepath.Dir(copiedMark), 0o755)
		os.WriteFile(copiedMark, nil, 0o644)
	}
	if cfg.MountShared {
		if st, err := os.Stat(HostLab + "/shared"); err == nil && st.IsDir() {
			os.MkdirAll("/shared", 0o755)
			if err := unix.Mount(HostLab+"/shared", "/shared", "", unix.MS_BIND, ""); err != nil {
				fmt.Fprintf(os.Stderr, "umlab: binding /shared: %v\n", err)
			}
		}
	}
	if err := setHostname(cfg.Machine); err != nil {
		fmt.Fprintf(os.Stderr, "umlab: hostname: %v\n", err)
	}
	bindModules()
	return writeUnits(cfg)
}

// labFile reports whether the lab gives the machine the file rel (relative
// to /) through shared/ or MACHINE/.
func labFile(cfg *agent.Config, rel string) bool {
	for _, dir := range []string{"shared", cfg.Machine} {
		if dir == "shared" && !cfg.CopyShared {
			continue
		}
		if _, err := os.Stat(filepath.Join(HostLab, dir, rel)); err == nil {
			return true
		}
	}
	return false
}

func setHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return err
	}
	if b, err := os.ReadFile("/etc/hostname"); err != nil || strings.TrimSpace(string(b)) != name {
		if err := os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644); err != nil {
			return err
		}
	}
	hosts, _ := os.ReadFile("/etc/hosts")
	for _, line := range strings.Split(string(hosts), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		for _, n := range f[min(1, len(f)):] {
			if n == name {
				return nil
			}
		}
	}
	f, err := os.OpenFile("/etc/hosts", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "127.0.1.1\t%s\n", name)
	return err
}

// bindModules makes the running kernel's modules, shipped on the side
// disk, appear at /lib/modules/VERSION.
func bindModules() {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return
	}
	ver := unix.ByteSliceToString(u.Release[:])
	src := SideDir + "/modules/" + ver
	if _, err := os.Stat(src); err != nil {
		return
	}
	dst := "/lib/modules/" + ver
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	unix.Mount(src, dst, "", unix.MS_BIND, "")
}

// Units are written to /run, so they last one boot and the machine's disk
// keeps nothing of this umlab version.
var units = map[string]string{
	"umlab-agent.service": `[Unit]
Description=umlab agent (exec and status over serial lines)
DefaultDependencies=no
After=systemd-tmpfiles-setup-dev.service

[Service]
ExecStart=` + Self + ` agent
Restart=always
RestartSec=1
KillMode=process
`,
	// At the end of the boot, as Netkit ran them. Without default
	// dependencies: multi-user.target would otherwise be ordered after
	// the unit it wants, a cycle with After=multi-user.target.
	"umlab-startup.service": `[Unit]
Description=umlab lab startup files
DefaultDependencies=no
Requires=sysinit.target
After=sysinit.target basic.target network.target multi-user.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + Self + ` startup
KillMode=process
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console
`,
	"umlab-shutdown.service": `[Unit]
Description=umlab lab shutdown files
After=network.target remote-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=` + Self + ` shutdown
TimeoutStopSec=90
StandardOutput=journal+console
StandardError=journal+console
`,
}

var wants = map[string]string{
	"umlab-agent.service":    "sysinit.target",
	"umlab-startup.service":  "multi-user.target",
	"umlab-shutdown.service": "multi-user.target",
}

// Masked are units a lab guest has no use for and whose start costs boot
// time or CPU (measured with UML 6.1 at mem=128M); they are masked for the
// boot (links to /dev/null in /run/systemd/system), never in the image:
//   - systemd-udev-trigger: coldplug of every device took 15 s and held up
//     networking.service and with it network.target; device nodes come
//     from devtmpfs, interfaces keep their kernel names (ethN), and udevd
//     still handles hot-plugged devices;
//   - e2scrub_reap (18 s at boot) and the e2scrub_all, fstrim, logrotate,
//     dpkg-db-backup and apt timers: maintenance of a throw-away disk;
//   - gettys and console-getty: UML consoles that go nowhere (con=null);
//     umlab connect gives a shell through the agent instead;
//   - modprobe@ units and systemd-pstore: modules load on demand, UML has
//     no pstore, and each modprobe costs seconds under ptrace;
//   - systemd-timesyncd: a guest's clock is the host's;
//   - utmp records and the journal's flush to disk: nobody logs in, and the
//     journal stays in memory (a COW disk should hold the lab's changes).
var Masked = []string{
	"systemd-udev-trigger.service",
	"e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer",
	"logrotate.timer", "dpkg-db-backup.timer", "apt-daily.timer",
	"apt-daily-upgrade.timer", "man-db.timer",
	"getty@tty1.service", "getty-static.service", "console-getty.service",
	"serial-getty@ttyS0.service",
	"modprobe@loop.service", "modprobe@fuse.service", "modprobe@configfs.service",
	"modprobe@dm_mod.service", "modprobe@efi_pstore.service", "modprobe@drm.service",
	"systemd-pstore.service", "systemd-timesyncd.service", "systemd-fsck-root.service",
	"systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
	"systemd-journal-flush.service",
}

func writeUnits(cfg *agent.Config) error {
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		return err
	}
	var errs []error
	for name, text := range units {
		errs = append(errs, os.WriteFile(filepath.Join(unitDir, name), []byte(text), 0o644))
		w := filepath.Join(unitDir, wants[name]+".wants")
		os.MkdirAll(w, 0o755)
		errs = append(errs, os.Symlink("../"+name, filepath.Join(w, name)))
	}
	masks := Masked
	// networking.service runs ifup -a: only worth its seconds when the
	// lab brought an /etc/network/interfaces of its own (Netkit-JH labs do).
	if !labFile(cfg, "etc/network/interfaces") {
		masks = append(masks, "networking.service")
	}
	for _, name := range masks {
		errs = append(errs, os.Symlink("/dev/null", filepath.Join(unitDir, name)))
	}
	// The journal stays in memory: a lab guest's disk is a COW file that
	// should hold the lab's changes, not logs.
	os.MkdirAll("/run/systemd/journald.conf.d", 0o755)
	errs = append(errs, os.WriteFile("/run/systemd/journald.conf.d/umlab.conf", []byte("[Journal]\nStorage=volatile\n"), 0o644))
	// The host halts a guest with ctrl-alt-del (mconsole cad): power off,
	// never reboot.
	errs = append(errs, os.Symlink("/lib/systemd/system/poweroff.target", filepath.Join(unitDir, "ctrl-alt-del.target")))
	return errors.Join(errs...)
}
