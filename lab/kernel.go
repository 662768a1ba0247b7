package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultKernel is the UML kernel labs boot unless a machine's [kernel]
// option or UMLAB_KERNEL names another: Debian's user-mode-linux package.
const DefaultKernel = "/usr/bin/linux.uml"

// Kernel is a UML kernel binary and what umlab needs to know of it.
type Kernel struct {
	Path    string
	Version string // as `linux --version` prints it: 6.1.176
	Major   int
	Minor   int
	// Modules is the directory of the kernel's modules on the host
	// (Debian: /usr/lib/uml/modules/VERSION), "" if there are none.
	Modules string
}

// Vector reports whether the kernel has only the vector network
// transports: the legacy ones (daemon) were removed in Linux 6.16. Such a
// guest attaches to the switch's bess socket.
func (k *Kernel) Vector() bool { return k.Major > 6 || (k.Major == 6 && k.Minor >= 16) }

var (
	kernelMu    sync.Mutex
	kernelCache = map[string]*Kernel{}
)

// ProbeKernel runs `path --version` to learn the kernel's version.
func ProbeKernel(ctx context.Context, path string) (*Kernel, error) {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if k, ok := kernelCache[path]; ok {
		return k, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", path, err)
	}
	v := strings.TrimSpace(string(out))
	if i := strings.IndexByte(v, '\n'); i >= 0 {
		v = v[:i]
	}
	k := &Kernel{Path: path, Version: v}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return nil, fmt.Errorf("kernel %s: unexpected --version output %q", path, v)
	}
	k.Major, _ = strconv.Atoi(parts[0])
	k.Minor, _ = strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	for _, dir := range []string{
		filepath.Join(filepath.Dir(path), "modules", v),
		filepath.Join("/usr/lib/uml/modules", v),
	} {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			k.Modules = dir
			break
		}
	}
	kernelCache[path] = k
	return k, nil
}

//go:embed shim/ptracefix.c
var shimSource []byte

// needsXSAVEFix reports whether k is a kernel that dies at init on this
// CPU: UML before 7.x passes ptrace its compiled-in XSAVE buffer, which
// hosts with AMX state refuse as too small (EFAULT, "ptrace set fp regs
// failed"). See docs/testbed.md.
func needsXSAVEFix(k *Kernel) bool {
	if k.Major >= 7 {
		return false
	}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "amx") {
					return true
				}
			}
			return false
		}
	}
	return false
}

// xsaveFix returns an LD_PRELOAD library that fixes the XSAVE trap, built
// once from the embedded source with the host's C compiler and cached.
// UMLAB_PRELOAD names a ready one instead.
func xsaveFix(cacheDir string) (string, error) {
	if p := os.Getenv("UMLAB_PRELOAD"); p != "" {
		return p, nil
	}
	h := sha256.Sum256(shimSource)
	out := filepath.Join(cacheDir, "ptracefix-"+hex.EncodeToString(h[:6])+".so")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cc := "cc"
	if _, err := exec.LookPath(cc); err != nil {
		return "", errors.New("this CPU needs a fix for UML 6.x kernels (its XSAVE area is larger than they expect); umlab builds it with a C compiler, and none (cc) is installed: install gcc, or set UMLAB_PRELOAD to a built ptracefix.so")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	src := out + ".c"
	if err := os.WriteFile(src, shimSource, 0o644); err != nil {
		return "", err
	}
	defer os.Remove(src)
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	if msg, err := exec.Command(cc, "-shared", "-fPIC", "-O2", "-o", tmp, src, "-ldl").CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building the XSAVE fix for UML 6.x: %v: %s", err, msg)
	}
	return out, os.Rename(tmp, out)
}

// CacheDir is umlab's per-user cache: $XDG_CACHE_HOME/umlutils or
// ~/.cache/umlutils.
func CacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "umlutils")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "umlutils")
}

// GuestProgram finds umlab-guest, the program every guest boots (see
// package guest): UMLAB_GUEST, or beside the running umlab, or where the
// packages install it.
func GuestProgram() (string, error) {
	var tried []string
	cands := []string{os.Getenv("UMLAB_GUEST")}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		cands = append(cands, filepath.Join(d, "umlab-guest"), filepath.Join(d, "..", "lib", "uml", "umlab-guest"))
	}
	cands = append(cands, "/usr/lib/uml/umlab-guest", "/usr/local/lib/uml/umlab-guest")
	for _, c := range cands {
		if c == "" {
			continue
		}
		tried = append(tried, c)
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			if err := checkStatic(c); err != nil {
				return "", err
			}
			return c, nil
		}
	}
	return "", fmt.Errorf("umlab-guest (the guest side of umlab) not found; tried %s", strings.Join(tried, ", "))
}

// checkStatic refuses a dynamically linked guest program: it runs as the
// guest's first process, before any libc is mounted.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked; the guest side must be a static binary (build with CGO_ENABLED=0)", path)
		}
	}
	return nil
}

func sbin(name string) string {
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// SideDisk returns the read-only disk every guest of kernel k boots from:
// the guest program as /init and the kernel's modules, as ext4 made with
// mkfs.ext4 -d (no root needed). It is cached by content, so a new umlab
// or kernel gets a new disk and running labs keep theirs.
func SideDisk(ctx context.Context, k *Kernel) (string, error) {
	prog, err := GuestProgram()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	pf, err := os.Open(prog)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(h, pf)
	pf.Close()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "\x00%s\x00%s", k.Version, k.Modules)
	if k.Modules != "" {
		if st, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); err == nil {
			fmt.Fprintf(h, "\x00%d", st.ModTime().UnixNano())
		}
	}
	dir := filepath.Join(CacheDir(), "guest")
	out := filepath.Join(dir, "side-"+hex.EncodeToString(h.Sum(nil)[:8])+".img")
	if fileExists(out) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tree, err := os.MkdirTemp(dir, "tree-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tree)
	for _, d := range []string{"dev", "proc", "sys", "newroot", "modules"} {
		if err := os.Mkdir(filepath.Join(tree, d), 0o755); err != nil {
			return "", err
		}
	}
	if msg, err := exec.CommandContext(ctx, "cp", prog, filepath.Join(tree, "init")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("side disk: copying %s: %v: %s", prog, err, msg)
	}
	if k.Modules != "" {
		if msg, err := exec.CommandContext(ctx, "cp", "-a", k.Modules, filepath.Join(tree, "modules", k.Version)).CombinedOutput(); err != nil {
			return "", fmt.Errorf("side disk: copying modules %s: %v: %s", k.Modules, err, msg)
		}
	}
	du, err := exec.CommandContext(ctx, "du", "-sk", tree).Output()
	if err != nil {
		return "", fmt.Errorf("side disk: du: %w", err)
	}
	kb, _ := strconv.ParseInt(string(bytes.Fields(du)[0]), 10, 64)
	size := (kb*5/4 + 16<<10) << 10
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmp)
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(tmp, size); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, sbin("mkfs.ext4"), "-q", "-F", "-O", "^has_journal", "-L", "umlab-side", "-d", tree, tmp)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("side disk: mkfs.ext4: %v: %s", err, msg)
	}
	os.Chmod(tmp, 0o444)
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}
