package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeBuilder writes a stand-in for mmdebstrap: it logs its arguments,
// counts its runs, fills the target directory (its last-but-one argument
// before the sources, i.e. the argument after the suite) and then behaves
// as body says.
func fakeBuilder(t *testing.T, body string) (path, runs string) {
	t.Helper()
	dir := t.TempDir()
	runs = filepath.Join(dir, "runs")
	path = filepath.Join(dir, "mmdebstrap")
	script := `#!/bin/sh
echo "$$" >> ` + shellQuote(runs) + `
root=
prev=
for a in "$@"; do
	if [ "$prev" = bookworm ]; then root=$a; fi
	prev=$a
done
echo "fake: args $*"
echo "I: running apt-get update..."
echo "0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded."
echo "I: installing remaining packages inside the chroot..."
echo "Setting up a (1) ..."
echo "Setting up b (1) ..."
mkdir -p "$root/etc" && echo tree > "$root/etc/fake"
` + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, runs
}

// fakeMkfs stands in for mkfs.ext4: it checks -d names a tree and marks
// the image's first bytes.
func fakeMkfs(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mkfs.ext4")
	script := `#!/bin/sh
tree= img=
while [ $# -gt 0 ]; do
	case "$1" in
	-d) tree=$2; shift ;;
	*) img=$1 ;;
	esac
	shift
done
[ -f "$tree/etc/fake" ] || { echo "fake mkfs: no tree at $tree" >&2; exit 1; }
printf FAKEEXT4 | dd of="$img" conv=notrunc status=none
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func fakeStore(t *testing.T, body string) (*Images, string) {
	t.Helper()
	b, runs := fakeBuilder(t, body)
	return &Images{
		Dir:        filepath.Join(t.TempDir(), "images"),
		Mmdebstrap: b,
		Mkfs:       fakeMkfs(t),
		Mode:       "root",
		Sources:    []string{"http://mirror.invalid/debian"},
		Size:       64 << 20,
	}, runs
}

func countRuns(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(b)))
}

// storeNames lists the store's entries other than the lock file.
func storeNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != lockName {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestImageBuildNamesListResolve(t *testing.T) {
	s, runs := fakeStore(t, "")
	ctx := context.Background()
	first, err := s.Build(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Build(ctx, "kathara/frr") // an alias builds its profile
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("two builds gave one name %s", first)
	}
	if n := countRuns(t, runs); n != 2 {
		t.Fatalf("builder ran %d times, want 2", n)
	}
	for _, p := range []string{first, second} {
		if !filepath.IsAbs(p) || !imageName.MatchString(filepath.Base(p)) {
			t.Errorf("image path %s: not absolute or not debian12-PROFILE-STAMP.img", p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %v, want read-only 0444", p, fi.Mode().Perm())
		}
		if fi.Size() != s.Size {
			t.Errorf("%s: size %d, want %d", p, fi.Size(), s.Size)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Blocks*512 >= s.Size {
			t.Errorf("%s: %d bytes on disk: not sparse", p, st.Blocks*512)
		}
		b := make([]byte, 8)
		f, _ := os.Open(p)
		_, _ = f.Read(b)
		f.Close()
		if string(b) != "FAKEEXT4" {
			t.Errorf("%s: mkfs did not write it: %q", p, b)
		}
		if _, err := os.Stat(p + ".json"); err != nil {
			t.Errorf("no build record beside %s: %v", p, err)
		}
	}
	// The same second: the later one carries a sequence number.
	if !strings.HasPrefix(filepath.Base(second), "debian12-default-") {
		t.Errorf("second image %s", second)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Path != second || !list[0].Newest || list[1].Newest || list[1].Path != first {
		t.Fatalf("List = %+v, want %s (newest) then %s", list, second, first)
	}
	if list[0].Profile != "default" || list[0].Created.IsZero() || list[0].Size != s.Size || list[0].DiskUsage <= 0 {
		t.Errorf("List()[0] = %+v", list[0])
	}
	for _, name := range []string{"", "default", "debian", "kathara/base", "kathara/frr", "kathara/frr:latest", "docker.io/kathara/bind:9.18", "KATHARA/FRR"} {
		got, err := s.Resolve(name)
		if err != nil || got != second {
			t.Errorf("Resolve(%q) = %q, %v; want %s", name, got, err, second)
		}
	}
	// An older image by its file name.
	if got, err := s.Resolve(filepath.Base(first)); err != nil || got != first {
		t.Errorf("Resolve(%q) = %q, %v", filepath.Base(first), got, err)
	}
	if got, err := s.Ensure(ctx, "kathara/frr"); err != nil || got != second || countRuns(t, runs) != 2 {
		t.Errorf("Ensure with an image built = %q, %v, %d builds", got, err, countRuns(t, runs))
	}
	if names := storeNames(t, s.Dir); len(names) != 4 {
		t.Errorf("store holds %v, want two images and their records", names)
	}
}

func TestImageNewestAcrossSeconds(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{
		"debian12-default-20250101T000000Z.img",
		"debian12-default-20250101T000000Z-2.img",
		"debian12-default-20240101T235959Z.img",
		"debian12-other-20990101T000000Z.img",
		"debian12-default-20990101T000000Z.img.json", // a record, not an image
		"notes.txt",
	} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	s := &Images{Dir: dir}
	got, err := s.Resolve("kathara/frr")
	if want := filepath.Join(dir, "debian12-default-20250101T000000Z-2.img"); err != nil || got != want {
		t.Fatalf("Resolve = %q, %v; want %s", got, err, want)
	}
	list, _ := s.List()
	if len(list) != 4 || list[3].Profile != "other" || !list[3].Newest {
		t.Fatalf("List = %+v", list)
	}
}

func TestImageResolveNotBuilt(t *testing.T) {
	s := &Images{Dir: filepath.Join(t.TempDir(), "none")}
	for _, name := range []string{"", "default", "kathara/frr:8"} {
		_, err := s.Resolve(name)
		var nb *NotBuiltError
		if !errors.As(err, &nb) || nb.Profile != "default" || nb.Name != name {
			t.Errorf("Resolve(%q) on an empty store: %v, want *NotBuiltError", name, err)
		}
	}
}

func TestImageResolveUnknown(t *testing.T) {
	s, _ := fakeStore(t, "")
	built, err := s.Build(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kathara/quagga", "kathara/p4", "fs.img", "debian11", "nope/../x"} {
		_, err := s.Resolve(name)
		var ue *UnknownImageError
		if !errors.As(err, &ue) || ue.Name != name {
			t.Errorf("Resolve(%q): %v, want *UnknownImageError", name, err)
			continue
		}
		msg := err.Error()
		for _, want := range []string{strconv.Quote(name), "kathara/frr", "default", filepath.Base(built), "path"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Resolve(%q) error %q does not mention %q", name, msg, want)
			}
		}
	}
}

func TestImageResolvePath(t *testing.T) {
	s := &Images{Dir: t.TempDir()}
	rel := "./testdata/image/tiny.img"
	abs, _ := filepath.Abs(rel)
	for _, name := range []string{rel, abs} {
		got, err := s.Resolve(name)
		if err != nil || got != abs {
			t.Errorf("Resolve(%q) = %q, %v; want %s", name, got, err, abs)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.img")
	var pe *ImagePathError
	if _, err := s.Resolve(missing); !errors.As(err, &pe) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Resolve(missing) = %v", err)
	}
	if _, err := s.Resolve("./testdata/image"); !errors.As(err, &pe) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Resolve(directory) = %v", err)
	}
	if os.Geteuid() != 0 {
		unreadable := filepath.Join(t.TempDir(), "secret.img")
		if err := os.WriteFile(unreadable, []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Resolve(unreadable); !errors.As(err, &pe) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("Resolve(unreadable) = %v", err)
		}
	}
}

func TestImageBuildFailureLeavesNothing(t *testing.T) {
	s, _ := fakeStore(t, `for i in $(seq 1 40); do echo "noise line $i"; done
echo "E: Unable to locate package frr-nonexistent" >&2
exit 1`)
	_, err := s.Build(context.Background(), "default")
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("Build = %v, want *BuildError", err)
	}
	if be.Step != "mmdebstrap" || !strings.Contains(be.Tail, "Unable to locate package") || strings.Contains(be.Tail, "noise line 1\n") {
		t.Errorf("BuildError step %q tail %q", be.Step, be.Tail)
	}
	msg := err.Error()
	if !strings.Contains(msg, "mmdebstrap") || !strings.Contains(msg, "Unable to locate package") || !strings.Contains(msg, failedLog) {
		t.Errorf("error message %q", msg)
	}
	names := storeNames(t, s.Dir)
	if len(names) != 1 || names[0] != failedLog {
		t.Errorf("failed build left %v, want only %s", names, failedLog)
	}
	if _, err := s.Resolve(""); !errors.As(err, new(*NotBuiltError)) {
		t.Errorf("after a failed build Resolve = %v", err)
	}
}

func TestImageMkfsFailure(t *testing.T) {
	s, _ := fakeStore(t, "")
	s.Mkfs = filepath.Join(t.TempDir(), "mkfs.ext4")
	if err := os.WriteFile(s.Mkfs, []byte("#!/bin/sh\necho 'mkfs.ext4: Could not allocate block' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := s.Build(context.Background(), "default")
	var be *BuildError
	if !errors.As(err, &be) || be.Step != "mkfs.ext4" || !strings.Contains(be.Tail, "Could not allocate") {
		t.Fatalf("Build = %v, want a mkfs.ext4 BuildError", err)
	}
	if names := storeNames(t, s.Dir); len(names) != 1 {
		t.Errorf("failed build left %v", names)
	}
}

func TestImageBuildUnknownProfile(t *testing.T) {
	s, runs := fakeStore(t, "")
	_, err := s.Build(context.Background(), "kitchen-sink")
	var ue *UnknownProfileError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "default") {
		t.Fatalf("Build(kitchen-sink) = %v", err)
	}
	if countRuns(t, runs) != 0 {
		t.Error("builder ran for an unknown profile")
	}
}

func TestImageBuildCancelKillsBuilder(t *testing.T) {
	s, runs := fakeStore(t, `sleep 60 & echo $! > "$(dirname "$0")/child"; wait`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := s.Build(ctx, "default"); done <- err }()
	waitFor(t, func() bool { return countRuns(t, runs) == 1 })
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Build did not return after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build after cancel = %v", err)
	}
	if time.Since(start) > 6*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	for _, f := range []string{runs, filepath.Join(filepath.Dir(runs), "child")} {
		pid, _ := strconv.Atoi(strings.TrimSpace(readFile(t, f)))
		for i := 0; i < 100 && pid > 0 && alive(pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if pid > 0 && alive(pid) {
			t.Errorf("builder process %d (%s) still running after cancel", pid, filepath.Base(f))
		}
	}
	if names := storeNames(t, s.Dir); len(names) > 1 {
		t.Errorf("cancelled build left %v", names)
	}
}

func TestImageStaleTempCleaned(t *testing.T) {
	s, _ := fakeStore(t, "")
	stale := filepath.Join(s.Dir, tmpPrefix+"12345")
	if err := os.MkdirAll(filepath.Join(stale, "root", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(s.Dir, "debian12-default-20200101T000000Z.img.json")
	if err := os.WriteFile(orphan, []byte("{}"), 0o444); err != nil {
		t.Fatal(err)
	}
	p, err := s.Build(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	names := storeNames(t, s.Dir)
	if len(names) != 2 || names[0] != filepath.Base(p) {
		t.Errorf("store after build: %v, want only %s and its record", names, filepath.Base(p))
	}
}

// A build killed outright (its process SIGKILLed) leaves no image under a
// final name; the next build cleans up after it.
func TestImageKilledBuild(t *testing.T) {
	if os.Getenv("UMLAB_IMAGE_HELPER") != "" {
		return
	}
	s, runs := fakeStore(t, `sleep 60`)
	cmd := exec.Command(os.Args[0], "-test.run=^TestImageHelperBuild$", "-test.v")
	cmd.Env = append(os.Environ(), "UMLAB_IMAGE_HELPER="+s.Dir, "UMLAB_IMAGE_FAKE="+s.Mmdebstrap, "UMLAB_IMAGE_MKFS="+s.Mkfs)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return countRuns(t, runs) == 1 })
	time.Sleep(200 * time.Millisecond)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	for _, n := range storeNames(t, s.Dir) {
		if imageName.MatchString(n) {
			t.Fatalf("killed build left an image %s", n)
		}
	}
	if _, err := s.Resolve(""); !errors.As(err, new(*NotBuiltError)) {
		t.Fatalf("after a killed build Resolve = %v", err)
	}
	// The next build (which must not wait for a dead lock holder) cleans up.
	s2, _ := fakeStore(t, "")
	s2.Dir = s.Dir
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := s2.Build(ctx, "default")
	if err != nil {
		t.Fatalf("build after a killed one: %v\nhelper output:\n%s", err, out.String())
	}
	if names := storeNames(t, s.Dir); len(names) != 2 {
		t.Errorf("store after a killed and a good build: %v (want %s and its record)", names, filepath.Base(p))
	}
}

// TestImageHelperBuild is TestImageKilledBuild's child process.
func TestImageHelperBuild(t *testing.T) {
	dir := os.Getenv("UMLAB_IMAGE_HELPER")
	if dir == "" {
		t.Skip("helper process for TestImageKilledBuild")
	}
	s := &Images{Dir: dir, Mmdebstrap: os.Getenv("UMLAB_IMAGE_FAKE"), Mkfs: os.Getenv("UMLAB_IMAGE_MKFS"),
		Mode: "root", Sources: []string{"http://mirror.invalid/debian"}, Size: 1 << 20}
	_, err := s.Build(context.Background(), "default")
	t.Fatalf("helper build returned: %v", err)
}

func TestImageEnsureConcurrentBuildsOnce(t *testing.T) {
	s, runs := fakeStore(t, "sleep 1")
	var wg sync.WaitGroup
	paths := make([]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Separate values, as separate processes would have.
			c := *s
			paths[i], errs[i] = c.Ensure(context.Background(), "kathara/frr")
		}(i)
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("Ensure %d = %q, %v; first %q", i, paths[i], errs[i], paths[0])
		}
	}
	if n := countRuns(t, runs); n != 1 {
		t.Fatalf("builder ran %d times for three concurrent Ensures", n)
	}
}

func TestImageLockWaitCancelled(t *testing.T) {
	s, _ := fakeStore(t, "")
	unlock, err := s.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var prog bytes.Buffer
	c := *s
	c.Progress = &prog
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Build(ctx, "default")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("Build while locked = %v", err)
	}
	if !strings.Contains(prog.String(), "waiting for another image build") {
		t.Errorf("no waiting message: %q", prog.String())
	}
}

func TestImageProgressPipe(t *testing.T) {
	s, _ := fakeStore(t, "")
	var prog bytes.Buffer
	s.Progress = &prog
	p, err := s.Build(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(prog.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "building root image") || !strings.Contains(lines[1], p) {
		t.Fatalf("progress in a pipe: %q", prog.String())
	}
	if strings.Contains(prog.String(), "\r") {
		t.Errorf("carriage returns in a pipe: %q", prog.String())
	}
}

func TestImageProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(nil, true, "default")
	p.w = &out // no ticker: render by hand
	fmt.Fprint(p, "I: downloading packages with apt...\n0 upgraded, 4 newly installed, 0 to remove\nGet:1 http://x a\nGet:2 http://x b\n")
	p.mu.Lock()
	p.render()
	p.mu.Unlock()
	fmt.Fprint(p, "I: installing remaining packages inside the chroot...\nSetting up a (1) ...\nSetting up b (1) ...\nSetting up c (1) ...\n")
	p.mu.Lock()
	p.render()
	p.mu.Unlock()
	p.done("/x/debian12-default.img", 93*time.Second)
	s := out.String()
	for _, want := range []string{"downloading 2/4 packages", "installing 3/4 packages", "\r", "built root image /x/debian12-default.img in 1m33s\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal progress %q lacks %q", s, want)
		}
	}
}

func TestHostDebianSources(t *testing.T) {
	got := hostDebianSources("testdata/image/apt")
	want := readFile(t, "testdata/image/apt.want")
	if got != want {
		t.Errorf("hostDebianSources:\n%s\nwant:\n%s", got, want)
	}
	if hostDebianSources(t.TempDir()) != "" {
		t.Error("sources from an empty apt directory")
	}
}

func TestCustomizeScript(t *testing.T) {
	script := customizeScript(profiles[DefaultProfile])
	for _, want := range []string{"frr.service", "heartbeat.service", "nfs-server.service", "rpcbind.socket", "named.service", `: > "$root/etc/machine-id"`, "passwd -d root"} {
		if !strings.Contains(script, want) {
			t.Errorf("customize script lacks %q", want)
		}
	}
	cmd := exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("customize script does not parse: %v: %s", err, out)
	}
	args := mmdebstrapArgs("unshare", profiles[DefaultProfile], "/d ir/hook.sh", "/d/root", []string{`Acquire::http::Proxy "http://p:3142"`})
	joined := strings.Join(args, " ")
	for _, want := range []string{"--mode=unshare", "--variant=minbase", "--include=systemd,systemd-sysv,", "frr", "heartbeat",
		`--customize-hook=sh '/d ir/hook.sh' "$1"`, `--aptopt=Acquire::http::Proxy "http://p:3142"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("mmdebstrap args %q lack %q", joined, want)
		}
	}
	if args[len(args)-2] != "bookworm" || args[len(args)-1] != "/d/root" {
		t.Errorf("args end %q", args[len(args)-2:])
	}
}

func TestHasSubIDs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	if err := os.WriteFile(f, []byte("alice:100000:65536\n1001:200000:65536\nbob:300000:10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		uid  int
		want bool
	}{{"alice", 1000, true}, {"carol", 1001, true}, {"bob", 1002, false}, {"dave", 1003, false}} {
		if got := hasSubIDs(f, c.name, c.uid); got != c.want {
			t.Errorf("hasSubIDs(%s, %d) = %v", c.name, c.uid, got)
		}
	}
	if hasSubIDs(filepath.Join(t.TempDir(), "none"), "alice", 1) {
		t.Error("ids from a missing file")
	}
}

func TestDetectMode(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ranges := write("subuid", "alice:100000:65536\n")
	none := write("empty", "")
	on, off := write("userns-on", "1\n"), write("userns-off", "0\n")
	found := func(string) (string, error) { return "/usr/bin/newuidmap", nil }
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	for _, c := range []struct {
		what string
		h    hostIDs
		want string // mode, or a part of the error
	}{
		{"root", hostIDs{euid: 0, lookPath: missing}, "unshare"},
		{"user with ranges", hostIDs{euid: 1000, uid: 1000, name: "alice", subuid: ranges, subgid: ranges, userns: on, lookPath: found}, "unshare"},
		{"no uidmap", hostIDs{euid: 1000, uid: 1000, name: "alice", subuid: ranges, subgid: ranges, userns: on, lookPath: missing}, "uidmap"},
		{"no subuid", hostIDs{euid: 1000, uid: 1000, name: "alice", subuid: none, subgid: ranges, userns: on, lookPath: found}, "no subordinate id range for alice in " + none},
		{"userns off", hostIDs{euid: 1000, uid: 1000, name: "alice", subuid: ranges, subgid: ranges, userns: off, lookPath: found}, "unprivileged user namespaces are disabled"},
	} {
		mode, err := detectMode(c.h)
		if err != nil {
			var pe *PrivilegeError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "as root") {
				t.Errorf("%s: %v, want a PrivilegeError about %q", c.what, err, c.want)
			}
			continue
		}
		if mode != c.want {
			t.Errorf("%s: mode %q, want %q", c.what, mode, c.want)
		}
	}
}

func TestMountsBelowUnescapes(t *testing.T) {
	if got := unescapeMount(`/a\040b/c`); got != "/a b/c" {
		t.Errorf("unescapeMount = %q", got)
	}
	if m := mountsBelow(t.TempDir()); len(m) != 0 {
		t.Errorf("mounts below a fresh directory: %v", m)
	}
}

func TestDefaultImageDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if got := DefaultImageDir(); got != "/x/cache/umlutils/images" {
		t.Errorf("DefaultImageDir = %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultImageDir(); got != "/home/u/.cache/umlutils/images" {
		t.Errorf("DefaultImageDir = %s", got)
	}
}

// alive: the process exists and is not a zombie (an orphan waits for
// init to reap it).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
