package testbed

import (
	"bytes"
	"crypto/rand"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// QEMU guests: Debian 12's qemu-system-x86_64 under TCG (a KVM boot hung on
// this machine), Debian 12's cloud kernel as provisioned into Cache/qemu by
// provision.sh, and an initramfs built here around busybox-static whose init
// loads the virtio network modules and runs the test's script
// (docs/testbed.md §5).

// QEMUConfig describes one QEMU guest.
type QEMUConfig struct {
	// Name names the guest (console messages, Guest.UMID); empty picks a
	// unique one.
	Name string
	// Script is the body of the guest's init (busybox sh, PATH holding every
	// busybox applet: ip, ping, ...). proc, sysfs, devtmpfs and a tmpfs on
	// /tmp are mounted, lo is up, and eth0 is present (down, no address)
	// when the guest has a network device. The guest powers off after it.
	// Its output is the console, which starts with firmware noise.
	Script string
	// Env is exported to Script.
	Env map[string]string
	// StreamSocket connects the guest's eth0 (virtio-net-pci) to a Unix
	// stream listener at this path: QEMU's `-netdev stream,server=off`,
	// every frame preceded by its length as 4 bytes big-endian. The
	// listener must exist before BootQEMU: QEMU 7.2 connects once and
	// never reconnects, not even after the listener closes the
	// connection (the guest then runs on, unplugged). Empty: no network
	// device.
	StreamSocket string
	// MAC is eth0's address; empty picks a random 52:54:00:xx:xx:xx one.
	MAC string
	// Mem is the guest's memory, "128M" if empty (the cloud kernel does not
	// boot in 64M).
	Mem string
	// Args are extra QEMU arguments, e.g. another -netdev/-device pair.
	Args []string
	// Prefix runs QEMU under another command (e.g. {"ip", "netns", "exec",
	// ns}); it must exec QEMU in the same process group.
	Prefix []string
	// Timeout bounds the guest's whole life; 120 s if zero (TCG is slow on a
	// busy machine).
	Timeout time.Duration
}

// QEMUBinary is the emulator BootQEMU runs (Debian package qemu-system-x86).
const QEMUBinary = "qemu-system-x86_64"

var (
	qemuBaseOnce sync.Once
	qemuBase     []byte
	qemuBaseErr  error
)

// BootQEMU starts a QEMU guest. Like Boot's guests it runs in its own process
// group, which is killed when the test ends or cfg.Timeout passes; its
// console is the serial port, so WaitFor("TESTBED-BOOTED", ...) and
// WaitFor("TESTBED-DONE", ...) work as for UML guests.
func (b *Bed) BootQEMU(t testing.TB, cfg QEMUConfig) *Guest {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = UniqueName("uq")
	}
	if !guestName.MatchString(cfg.Name) {
		t.Fatalf("QEMU guest name %q: want letters, digits, '.', '_' or '-' (it goes on the kernel command line)", cfg.Name)
	}
	if cfg.Mem == "" {
		cfg.Mem = "128M"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 120 * time.Second
	}
	if cfg.MAC == "" {
		cfg.MAC = RandomMAC()
	}
	kernel := filepath.Join(b.Cache, "qemu", "vmlinuz")
	if _, err := os.Stat(kernel); err != nil {
		t.Fatalf("QEMU guest kernel missing: %v (provision.sh unpacks Debian 12's linux-image-*-cloud-amd64 there; run `make e2e`)", err)
	}
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Fatalf("%s not found (Debian package qemu-system-x86): %v", QEMUBinary, err)
	}
	if cfg.StreamSocket != "" {
		// QEMU 7.2 connects once, in the background: with no listener
		// it boots with the cable unplugged, says nothing and never
		// retries (it has no reconnect= for stream yet).
		fi, err := os.Stat(cfg.StreamSocket)
		if err == nil && fi.Mode()&os.ModeSocket == 0 {
			err = fmt.Errorf("%s is a %v, not a socket", cfg.StreamSocket, fi.Mode().Type())
		}
		if err != nil {
			t.Fatalf("QEMU guest %s needs a listener at its stream socket (QEMU would boot unconnected and never retry): %v", cfg.Name, err)
		}
	}
	qemuBaseOnce.Do(func() { qemuBase, qemuBaseErr = qemuBaseInitramfs(b.Cache) })
	if qemuBaseErr != nil {
		t.Fatalf("building the QEMU guests' initramfs: %v", qemuBaseErr)
	}
	init, err := qemuInit(cfg.Name, cfg.Script, cfg.Env, cfg.StreamSocket != "")
	if err != nil {
		t.Fatal(err)
	}

	g := newGuest(t, cfg.Name)
	// The base archive (busybox, modules) is shared; the guest's own /init
	// follows as a second archive, which the kernel unpacks over the first.
	// Its inode numbers must not collide with the base's.
	own := cpioWriter{ino: 1 << 20}
	own.file("init", 0o755, []byte(init))
	own.trailer()
	initrd := filepath.Join(g.Dir, "initrd.cpio")
	if err := os.WriteFile(initrd, append(append([]byte{}, qemuBase...), own.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, cfg.Prefix...), QEMUBinary,
		"-accel", "tcg", "-nographic", "-no-reboot", "-m", cfg.Mem,
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet testbed_guest="+cfg.Name,
		// No default NIC: it would be user-mode networking out of the host.
		"-nic", "none")
	if cfg.StreamSocket != "" {
		argv = append(argv,
			"-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path="+cfg.StreamSocket,
			"-device", "virtio-net-pci,netdev=n0,romfile=,mac="+cfg.MAC)
	}
	argv = append(argv, cfg.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = g.Dir
	g.start(t, cmd, cfg.Timeout, "booting QEMU guest "+cfg.Name)
	return g
}

// RandomMAC returns a random address in QEMU's locally administered
// 52:54:00 range.
func RandomMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// qemuMarker is a file only the guests' initramfs has: its init checks for it
// before doing anything.
const qemuMarker = "testbed-qemu-initramfs"

var (
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	guestName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// qemuInit is the guest's /init. It exists only inside the initramfs, and it
// is guarded as well: only PID 1 of a root holding qemuMarker, under a kernel
// whose command line carries this guest's testbed_guest= word, gets past its
// first lines (or to the power-off at its end).
func qemuInit(name, body string, env map[string]string, nic bool) (string, error) {
	var exports strings.Builder
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envName.MatchString(k) {
			return "", fmt.Errorf("QEMU guest %s: Env name %q is not a shell variable name", name, k)
		}
		fmt.Fprintf(&exports, "export %s='%s'\n", k, strings.ReplaceAll(env[k], "'", `'\''`))
	}
	waitEth := ""
	if nic {
		// virtio_net registers eth0 asynchronously after the PCI probe.
		waitEth = `i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || echo "testbed: no eth0 after loading the virtio modules"
`
	}
	return `#!/bin/busybox sh
# Nothing here may run anywhere but as PID 1 of this guest's initramfs.
[ $$ = 1 ] && [ -e /` + qemuMarker + ` ] || { echo "testbed: not the init of a QEMU guest's initramfs, refusing to run"; exit 1; }
/bin/busybox mount -t proc proc /proc
/bin/busybox grep -q "testbed_guest=` + name + `" /proc/cmdline || { echo "testbed: not inside QEMU guest ` + name + `, refusing to run"; exit 1; }
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
in_guest() { [ $$ = 1 ] && [ -e /` + qemuMarker + ` ] && grep -q "testbed_guest=` + name + `" /proc/cmdline; }
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m.ko || echo "testbed: insmod $m failed"
done
` + waitEth + `ip link set lo up
` + exports.String() + `echo "TESTBED-BOOTED $(uname -r)"
(
` + body + `
)
echo "TESTBED-DONE rc=$?"
in_guest && poweroff -f
sleep 5
`, nil
}

// qemuBaseInitramfs returns the archive every QEMU guest's initramfs starts
// with: busybox-static, the provisioned modules and their load order, and the
// device nodes the kernel needs before init mounts devtmpfs (/dev/console:
// without it init has no stdout). Built once per test process (a few
// milliseconds: it is 2.5 MB of copying), so it always matches what is
// provisioned; no on-disk cache to go stale.
func qemuBaseInitramfs(cache string) ([]byte, error) {
	const busybox = "/bin/busybox"
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package busybox-static)", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(bb)); err != nil {
		return nil, fmt.Errorf("%s: %w", busybox, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return nil, fmt.Errorf("%s is dynamically linked: the initramfs needs Debian's busybox-static", busybox)
			}
		}
	}
	moddir := filepath.Join(cache, "qemu", "modules")
	order, err := os.ReadFile(filepath.Join(moddir, "order"))
	if err != nil {
		return nil, fmt.Errorf("%w (provision.sh writes the module load order there)", err)
	}
	var w cpioWriter
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "root", "lib", "lib/modules"} {
		w.dir(d)
	}
	w.file(qemuMarker, 0o644, nil)
	w.charDev("dev/console", 5, 1)
	w.charDev("dev/null", 1, 3)
	w.file("bin/busybox", 0o755, bb)
	w.file("lib/modules/order", 0o644, order)
	for _, m := range strings.Fields(string(order)) {
		ko, err := os.ReadFile(filepath.Join(moddir, m+".ko"))
		if err != nil {
			return nil, err
		}
		w.file("lib/modules/"+m+".ko", 0o644, ko)
	}
	w.trailer()
	return w.Bytes(), nil
}

// cpioWriter writes the "newc" cpio format the kernel's initramfs unpacker
// reads (as `cpio -o -H newc` does): per entry a 110-byte ASCII header of
// "070701" and 13 eight-digit hex fields, the NUL-terminated name padded to
// a multiple of 4, then the data padded likewise; "TRAILER!!!" ends it.
// Written here rather than with cpio(1) so that device nodes need no mknod
// (root) and the bytes are reproducible.
type cpioWriter struct {
	bytes.Buffer
	ino int
}

const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

func (w *cpioWriter) entry(name string, mode, rdevMajor, rdevMinor int, data []byte) {
	w.ino++
	nlink := 1
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	w.WriteString(name)
	w.WriteByte(0)
	w.pad()
	w.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.Len()%4 != 0 {
		w.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string) { w.entry(name, cpioDir|0o755, 0, 0, nil) }

func (w *cpioWriter) file(name string, perm int, data []byte) {
	w.entry(name, cpioReg|perm, 0, 0, data)
}

func (w *cpioWriter) charDev(name string, major, minor int) {
	w.entry(name, cpioChar|0o600, major, minor, nil)
}

func (w *cpioWriter) trailer() { w.entry("TRAILER!!!", 0, 0, 0, nil) }
