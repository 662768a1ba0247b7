package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildError is a failed image build: the step that failed, the error, and
// the tail of the builder's output.
type BuildError struct {
	Profile string
	Step    string // "mmdebstrap", "mkfs.ext4", "lock", ...
	Err     error
	Tail    string // last lines of the step's output
	Log     string // the full log, kept after a failed build ("" if none)
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "building image (profile %s): %s: %v", e.Profile, e.Step, e.Err)
	if e.Tail != "" {
		fmt.Fprintf(&b, "\n--- last lines of %s output ---\n%s", e.Step, strings.TrimRight(e.Tail, "\n"))
	}
	if e.Log != "" {
		fmt.Fprintf(&b, "\n(full log: %s)", e.Log)
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return e.Err }

// PrivilegeError says this user cannot build an image here: mmdebstrap
// needs root or, without root, user namespaces with subordinate id ranges.
type PrivilegeError struct {
	User   string
	Reason string
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("cannot build a root image as %s: %s; build it as root once "+
		"(e.g. `sudo umlab image build`, the image is then shared read-only), or give %s "+
		"subordinate id ranges (`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`) "+
		"and install uidmap", e.User, e.Reason, e.User, e.User)
}

// UnknownProfileError is Build's error for a profile it does not know.
type UnknownProfileError struct {
	Profile   string
	Available []string
}

func (e *UnknownProfileError) Error() string {
	return fmt.Sprintf("unknown image profile %q: available are %s", e.Profile, strings.Join(e.Available, ", "))
}

const (
	tmpPrefix  = ".tmp-build-"
	lockName   = ".lock"
	failedLog  = "build-failed.log"
	suite      = "bookworm"
	tailLines  = 25
	lockPoll   = 100 * time.Millisecond
	debKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
)

// Build makes a new image of profile (a profile name, or a name Resolve
// knows such as "kathara/frr") and returns its absolute path. It never
// touches an existing image: the new one gets a new name and becomes the
// newest of its profile. Builds of one store are serialized by a lock file.
func (s *Images) Build(ctx context.Context, profile string) (string, error) {
	p, ok := profileFor(profile)
	if !ok {
		if _, ok := profiles[profile]; !ok {
			return "", &UnknownProfileError{Profile: profile, Available: ProfileNames()}
		}
		p = profile
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	return s.buildLocked(ctx, p)
}

// lock takes the store's build lock (flock on Dir/.lock), waiting for
// another build to finish; the lock dies with its process.
func (s *Images) lock(ctx context.Context) (func(), error) {
	dir := s.dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("image store lock %s: %w", path, err)
		}
		if !waited && s.Progress != nil {
			fmt.Fprintf(s.Progress, "waiting for another image build in %s to finish...\n", dir)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the image store lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (s *Images) buildLocked(ctx context.Context, profile string) (path string, err error) {
	prof := profiles[profile]
	dir, err := filepath.Abs(s.dir())
	if err != nil {
		return "", err
	}
	fail := func(step string, err error, tail, log string) (string, error) {
		return "", &BuildError{Profile: profile, Step: step, Err: err, Tail: tail, Log: log}
	}
	mode, err := s.mode()
	if err != nil {
		return "", err
	}
	helper := s.needsHelper(mode)
	// Only a build holds the lock, so every temporary directory left now
	// is from a build that was killed.
	if err := s.cleanStale(dir, helper); err != nil {
		return fail("cleaning up an earlier build", err, "", "")
	}
	tmp, err := os.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return fail("temporary directory", err, "", "")
	}
	defer func() { _ = s.removeTree(tmp, helper) }()

	start := time.Now()
	prog := newProgress(s.Progress, s.Terminal, profile)
	defer prog.stop()

	hook := filepath.Join(tmp, "customize.sh")
	if err := os.WriteFile(hook, []byte(customizeScript(prof)), 0o644); err != nil {
		return fail("customize hook", err, "", "")
	}
	sources, err := s.sources(tmp)
	if err != nil {
		return fail("apt sources", err, "", "")
	}
	root := filepath.Join(tmp, "root")
	argv := append([]string{s.mmdebstrap()}, mmdebstrapArgs(mode, prof, hook, root, s.aptOptions())...)
	argv = append(argv, sources...)
	logPath := filepath.Join(tmp, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fail("build log", err, "", "")
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s\n", shellJoin(argv))

	tail := &tailBuffer{max: tailLines}
	keepLog := func() string {
		_ = logf.Sync()
		dst := filepath.Join(dir, failedLog)
		_ = os.Remove(dst)
		if os.Rename(logPath, dst) == nil {
			return dst
		}
		return ""
	}
	prog.phase("starting mmdebstrap")
	env := append(os.Environ(), "TMPDIR="+tmp, "LC_ALL=C.UTF-8")
	if err := runStep(ctx, argv, env, io.MultiWriter(logf, tail, prog)); err != nil {
		return fail("mmdebstrap", err, tail.String(), keepLog())
	}

	prog.phase("formatting ext4")
	img := filepath.Join(tmp, "image.img")
	size := s.Size
	if size == 0 {
		size = DefaultImageSize
	}
	if err := makeSparse(img, size); err != nil {
		return fail("image file", err, "", "")
	}
	mkfs := s.mkfsArgs(root, img)
	if helper {
		mkfs = append([]string{s.mmdebstrap(), "--unshare-helper"}, mkfs...)
	}
	fmt.Fprintf(logf, "$ %s\n", shellJoin(mkfs))
	tail.reset()
	if err := runStep(ctx, mkfs, os.Environ(), io.MultiWriter(logf, tail)); err != nil {
		return fail(filepath.Base(s.mkfs()), err, tail.String(), keepLog())
	}

	prog.phase("finishing")
	// Read-only from here on: COW files pin the image's mtime and size.
	if err := os.Chmod(img, 0o444); err != nil {
		return fail("finishing", err, "", "")
	}
	if err := syncFile(img); err != nil {
		return fail("finishing", err, "", "")
	}
	final, created, err := freeName(dir, profile)
	if err != nil {
		return fail("finishing", err, "", "")
	}
	info := buildInfo{
		Profile:      profile,
		Created:      created,
		BuildSeconds: time.Since(start).Seconds(),
		Mode:         mode,
		Command:      argv,
		Packages:     prof.Packages,
	}
	meta := filepath.Join(tmp, "image.json")
	if err := writeJSON(meta, info, 0o444); err != nil {
		return fail("finishing", err, "", "")
	}
	// The sidecar first: an image under its final name is always complete,
	// and a sidecar without its image is removed by the next build.
	if err := os.Rename(meta, final+".json"); err != nil {
		return fail("finishing", err, "", "")
	}
	if err := os.Rename(img, final); err != nil {
		_ = os.Remove(final + ".json")
		return fail("finishing", err, "", "")
	}
	_ = syncDir(dir)
	_ = os.Remove(filepath.Join(dir, failedLog))
	prog.done(final, time.Since(start))
	return final, nil
}

func (s *Images) mmdebstrap() string {
	if s.Mmdebstrap != "" {
		return s.Mmdebstrap
	}
	return "mmdebstrap"
}

func (s *Images) mkfs() string {
	if s.Mkfs != "" {
		return s.Mkfs
	}
	return "mkfs.ext4"
}

// mmdebstrapArgs is the builder's command line, less the sources.
func mmdebstrapArgs(mode string, p imageProfile, hook, root string, aptopts []string) []string {
	args := []string{
		"--mode=" + mode,
		"--variant=minbase",
		"--format=directory",
		"--verbose",
		"--include=" + strings.Join(p.Packages, ","),
		"--customize-hook=sh " + shellQuote(hook) + ` "$1"`,
	}
	for _, o := range aptopts {
		args = append(args, "--aptopt="+o)
	}
	return append(args, suite, root)
}

// mkfsArgs formats the sparse image with the tree as its contents. Inode
// tables and the journal are written now (lazy_*_init=0): otherwise every
// guest's kernel would zero them through its own COW file on first mount.
// A 16 MiB journal (mke2fs picks 64 MiB for 4 GiB, all of it on disk) is
// plenty for a lab guest; no blocks are reserved: everything runs as root.
func (s *Images) mkfsArgs(root, img string) []string {
	return []string{s.mkfs(), "-F", "-q", "-L", "umlab-root", "-J", "size=16", "-m", "0",
		"-E", "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0",
		"-d", root, img}
}

// mode picks mmdebstrap's mode. As root "unshare" too: mmdebstrap then
// mounts /proc, /sys and /dev for the chroot in a mount namespace of its
// own, so a killed build leaves no mounts inside the store (root mode would
// mount them on the host, and removing the leftover tree would recurse
// into the host's /dev).
func (s *Images) mode() (string, error) {
	if s.Mode != "" {
		return s.Mode, nil
	}
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return detectMode(hostIDs{
		euid: os.Geteuid(), uid: os.Getuid(), name: name,
		subuid: "/etc/subuid", subgid: "/etc/subgid",
		userns:   "/proc/sys/kernel/unprivileged_userns_clone",
		lookPath: exec.LookPath,
	})
}

// hostIDs is what detectMode looks at, replaceable in tests.
type hostIDs struct {
	euid, uid              int
	name                   string
	subuid, subgid, userns string
	lookPath               func(string) (string, error)
}

func detectMode(h hostIDs) (string, error) {
	if h.euid == 0 {
		return "unshare", nil
	}
	if _, err := h.lookPath("newuidmap"); err != nil {
		return "", &PrivilegeError{User: h.name, Reason: "newuidmap is not installed (Debian package uidmap)"}
	}
	for _, f := range []string{h.subuid, h.subgid} {
		if !hasSubIDs(f, h.name, h.uid) {
			return "", &PrivilegeError{User: h.name, Reason: "no subordinate id range for " + h.name + " in " + f}
		}
	}
	if b, err := os.ReadFile(h.userns); err == nil && strings.TrimSpace(string(b)) == "0" {
		return "", &PrivilegeError{User: h.name, Reason: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)"}
	}
	return "unshare", nil
}

func hasSubIDs(file, name string, uid int) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 3 && (f[0] == name || f[0] == strconv.Itoa(uid)) {
			if n, err := strconv.Atoi(f[2]); err == nil && n >= 65536 {
				return true
			}
		}
	}
	return false
}

// needsHelper: in unshare mode without root the tree's files belong to
// subordinate ids, so mkfs and rm run inside mmdebstrap's user namespace.
func (s *Images) needsHelper(mode string) bool {
	return mode == "unshare" && os.Geteuid() != 0
}

// sources returns the MIRROR arguments: s.Sources, else a file with the
// host's Debian bookworm entries, else none (mmdebstrap's default mirror
// with updates and security).
func (s *Images) sources(tmp string) ([]string, error) {
	if len(s.Sources) > 0 {
		return s.Sources, nil
	}
	text := hostDebianSources("/etc/apt")
	if text == "" {
		return nil, nil
	}
	f := filepath.Join(tmp, "host.sources")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return []string{f}, nil
}

// aptOptions carries the host's apt proxy settings over: mmdebstrap runs
// apt with a configuration of its own, which does not read the host's
// apt.conf.d.
func (s *Images) aptOptions() []string {
	out, err := exec.Command("apt-config", "dump", "Acquire").Output()
	if err != nil {
		return nil
	}
	var opts []string
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "acquire::http::proxy", "acquire::https::proxy", "acquire::ftp::proxy":
			opts = append(opts, k+" "+strings.TrimSuffix(v, ";"))
		}
	}
	return opts
}

// cleanStale removes what killed builds left: temporary directories and
// sidecar files without their image.
func (s *Images) cleanStale(dir string, helper bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := s.removeTree(filepath.Join(dir, name), helper); err != nil {
				return err
			}
		case strings.HasSuffix(name, ".img.json") && !have[strings.TrimSuffix(name, ".json")]:
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	return nil
}

// removeTree removes a build directory. It refuses while anything is
// mounted below it: removing would reach into the mounted filesystem.
func (s *Images) removeTree(path string, helper bool) error {
	if m := mountsBelow(path); len(m) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted there", path, strings.Join(m, ", "))
	}
	err := os.RemoveAll(path)
	if err != nil && helper {
		// Files owned by subordinate ids: remove them as their owner.
		cmd := exec.Command(s.mmdebstrap(), "--unshare-helper", "rm", "-rf", path)
		if out, herr := cmd.CombinedOutput(); herr != nil {
			return fmt.Errorf("removing %s: %v (%v: %s)", path, err, herr, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return err
}

func mountsBelow(path string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	abs, _ := filepath.Abs(path)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(unescapeMount(f[4]), abs+"/") {
			out = append(out, unescapeMount(f[4]))
		}
	}
	sort.Strings(out)
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// freeName is the image's final name: profile and UTC time, with a
// sequence number when that name is taken (two builds in one second).
func freeName(dir, profile string) (string, time.Time, error) {
	now := time.Now().UTC().Truncate(time.Second)
	base := fmt.Sprintf("debian12-%s-%s", profile, now.Format(stampLayout))
	for i := 1; i < 1000; i++ {
		name := base + ".img"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.img", base, i)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, now, nil
		}
	}
	return "", now, fmt.Errorf("no free image name for %s in %s", base, dir)
}

func makeSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(path string) error { return syncFile(path) }

// runStep runs argv in its own process group, its output to out; a
// cancelled ctx kills the whole group (mmdebstrap runs apt and dpkg).
func runStep(ctx context.Context, argv, env []string, out io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a builder whose umlab was killed stops too (the next
	// build removes its directory). The signal follows the thread that
	// started the child, so that thread is kept until the child is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return ctx.Err()
	}
}

// tailBuffer keeps the last max lines written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.partial + string(p)
	parts := strings.Split(s, "\n")
	t.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		t.lines = append(t.lines, strings.TrimRight(l, "\r"))
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := strings.Join(t.lines, "\n")
	if t.partial != "" {
		out += "\n" + t.partial
	}
	return out
}

func (t *tailBuffer) reset() {
	t.mu.Lock()
	t.lines, t.partial = nil, ""
	t.mu.Unlock()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// hostDebianSources returns the host's apt entries for Debian bookworm as
// deb822 text ("" if none): entries of type deb for suites bookworm,
// bookworm-updates, bookworm-security, ... that use no keyring or Debian's
// archive keyring. Third-party repositories stay out: their keys are not in
// the image and a lab guest has no use for them.
func hostDebianSources(etcApt string) string {
	var entries []aptEntry
	if b, err := os.ReadFile(filepath.Join(etcApt, "sources.list")); err == nil {
		entries = append(entries, parseOneLine(string(b))...)
	}
	parts, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", "*"))
	sort.Strings(parts)
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(p, ".list"):
			entries = append(entries, parseOneLine(string(b))...)
		case strings.HasSuffix(p, ".sources"):
			entries = append(entries, parseDeb822(string(b))...)
		}
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, e := range entries {
		if !e.enabled || !slices.Contains(e.types, "deb") {
			continue
		}
		if e.signedBy != "" && !strings.HasPrefix(e.signedBy, "/usr/share/keyrings/debian-archive-") {
			continue
		}
		var suites []string
		for _, s := range e.suites {
			if s == suite || strings.HasPrefix(s, suite+"-") || strings.HasPrefix(s, suite+"/") {
				suites = append(suites, s)
			}
		}
		if len(suites) == 0 || len(e.uris) == 0 {
			continue
		}
		comps := e.components
		if len(comps) == 0 {
			comps = []string{"main"}
		}
		text := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: %s\n",
			strings.Join(e.uris, " "), strings.Join(suites, " "), strings.Join(comps, " "), debKeyring)
		if seen[text] {
			continue
		}
		seen[text] = true
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(text)
	}
	return b.String()
}

type aptEntry struct {
	enabled                         bool
	types, uris, suites, components []string
	signedBy                        string
}

// parseOneLine reads sources.list's one-line format:
// deb [opt=val ...] URI SUITE [COMPONENT...].
func parseOneLine(text string) []aptEntry {
	var out []aptEntry
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		e := aptEntry{enabled: true, types: []string{f[0]}}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			var opts []string
			for len(rest) > 0 {
				o := rest[0]
				rest = rest[1:]
				opts = append(opts, strings.Trim(o, "[]"))
				if strings.HasSuffix(o, "]") {
					break
				}
			}
			for _, o := range opts {
				if k, v, ok := strings.Cut(o, "="); ok && strings.EqualFold(k, "signed-by") {
					e.signedBy = v
				}
			}
		}
		if len(rest) < 2 {
			continue
		}
		e.uris = []string{rest[0]}
		e.suites = []string{rest[1]}
		e.components = rest[2:]
		out = append(out, e)
	}
	return out
}

// parseDeb822 reads the deb822 .sources format: stanzas separated by blank
// lines, "Field: value" with continuation lines starting with a space.
func parseDeb822(text string) []aptEntry {
	var out []aptEntry
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		last := ""
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if len(fields) == 0 {
			continue
		}
		e := aptEntry{
			enabled:    !strings.EqualFold(fields["enabled"], "no"),
			types:      strings.Fields(fields["types"]),
			uris:       strings.Fields(fields["uris"]),
			suites:     strings.Fields(fields["suites"]),
			components: strings.Fields(fields["components"]),
		}
		if sb := fields["signed-by"]; sb != "" && !strings.Contains(sb, "\n") {
			e.signedBy = sb // an embedded key block is not Debian's keyring file
		} else if sb != "" {
			e.signedBy = "(embedded key)"
		}
		out = append(out, e)
	}
	return out
}
