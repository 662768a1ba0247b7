//go:build e2e

package cow_test

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umlutils/umlutils/cow/cowtest"
	"github.com/umlutils/umlutils/internal/testbed"
)

// tool runs a command, failing the test unless it exits with want.
func tool(t *testing.T, want int, dir string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still running after 2 minutes", argv)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	if code != want {
		t.Fatalf("%v: exit %d, want %d; output:\n%s", argv, code, want, out.String())
	}
	return out.String()
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	if out, err := exec.Command("cmp", a, b).CombinedOutput(); err != nil {
		t.Fatalf("%s and %s differ: %s", a, b, out)
	}
}

func copyKeepMtime(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "--sparse=always", "--preserve=timestamps", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v: %s", from, to, err, out)
	}
}

// Our uml_mkcow writes the C tool's bytes for every way of naming the
// backing file: relative, with directories, absolute, through a symlinked
// directory (resolved) to a symlinked file (kept).
func TestE2EMkcowByteIdenticalToC(t *testing.T) {
	b := testbed.Get(t)
	ours, theirs := b.Tool(t, "uml_mkcow"), testbed.Original(t, "uml_mkcow")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "images", "sub"), 0o755)
	img := filepath.Join(dir, "images", "sub", "root_fs")
	makeBacking(t, img, 5<<20+512, rand.New(rand.NewSource(1)))
	os.Symlink(filepath.Join(dir, "images"), filepath.Join(dir, "imglink"))
	os.Symlink("root_fs", filepath.Join(dir, "images", "sub", "fslink"))
	for i, backing := range []string{
		"images/sub/root_fs", "./images/../images/sub/root_fs", img, "imglink/sub/fslink",
	} {
		c, g := filepath.Join(dir, "c.cow"), filepath.Join(dir, "g.cow")
		os.Remove(c)
		os.Remove(g)
		tool(t, 0, dir, theirs, c, backing)
		tool(t, 0, dir, ours, g, backing)
		sameFiles(t, c, g)
		if i == 0 {
			// -f over an existing file also gives the same bytes.
			tool(t, 1, dir, ours, g, backing)
			tool(t, 0, dir, ours, "-f", g, backing)
			sameFiles(t, c, g)
		}
	}
	// In the backing file's own directory too.
	tool(t, 0, filepath.Join(dir, "images", "sub"), theirs, filepath.Join(dir, "c2.cow"), "root_fs")
	tool(t, 0, filepath.Join(dir, "images", "sub"), ours, filepath.Join(dir, "g2.cow"), "root_fs")
	sameFiles(t, filepath.Join(dir, "c2.cow"), filepath.Join(dir, "g2.cow"))
}

// COW files of all four header versions, built here, merge to the same
// bytes as with the C uml_moo, as a new image and in place.
func TestE2EHeaderVersionsMergeLikeC(t *testing.T) {
	b := testbed.Get(t)
	ours, theirs := b.Tool(t, "uml_moo"), testbed.Original(t, "uml_moo")
	for _, v := range []struct {
		name    string
		version int
	}{{"v1", 1}, {"v2", 2}, {"v3", 3}, {"broken 64-bit v3", 4}} {
		t.Run(v.name, func(t *testing.T) {
			fx := newFixture(t, v.version, 12<<20, 0.05, int64(10+v.version))
			c, g := filepath.Join(fx.dir, "c.img"), filepath.Join(fx.dir, "g.img")
			outC := tool(t, 0, fx.dir, theirs, fx.cow, c)
			outG := tool(t, 0, fx.dir, ours, fx.cow, g)
			if outC != outG {
				t.Errorf("output differs: C %q, ours %q", outC, outG)
			}
			sameFiles(t, c, g)
			if n := allocatedZeroBlocks(t, g); n != 0 {
				t.Errorf("our image has %d all-zero blocks allocated", n)
			}
			dc, dg := filepath.Join(fx.dir, "dc.img"), filepath.Join(fx.dir, "dg.img")
			copyKeepMtime(t, fx.backing, dc)
			copyKeepMtime(t, fx.backing, dg)
			tool(t, 0, fx.dir, theirs, "-d", "-b", dc, fx.cow)
			tool(t, 0, fx.dir, ours, "-b", dg, "-d", fx.cow)
			sameFiles(t, dc, dg)
			sameFiles(t, dg, g)
		})
	}
}

// Inputs the C uml_moo trusts: it dies of SIGFPE on a zero sector size or
// alignment, and leaves a partial output file on a cut bitmap. Ours exits
// 1 with no output file.
func TestE2EBadHeadersCToolCrashesOursRefuses(t *testing.T) {
	b := testbed.Get(t)
	ours, theirs := b.Tool(t, "uml_moo"), testbed.Original(t, "uml_moo")
	for _, tc := range []struct {
		name     string
		off      int64
		data     []byte
		truncate int64
	}{
		{"sectorsize 0", 20, []byte{0, 0, 0, 0}, 0},
		{"alignment 0", 24, []byte{0, 0, 0, 0}, 0},
		{"bitmap cut", 0, nil, 8192 + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, 3, 1<<20, 0.05, 20)
			f, _ := os.OpenFile(fx.cow, os.O_RDWR, 0)
			f.WriteAt(tc.data, tc.off)
			if tc.truncate > 0 {
				f.Truncate(tc.truncate)
			}
			f.Close()
			cmd := exec.Command(theirs, fx.cow, filepath.Join(fx.dir, "c.img"))
			err := cmd.Run()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Logf("C uml_moo: killed by %v", ws.Signal())
			} else {
				t.Logf("C uml_moo: %v", err)
			}
			if _, err := os.Stat(filepath.Join(fx.dir, "c.img")); err == nil {
				t.Logf("C uml_moo: left an output file behind")
			}
			out := tool(t, 1, fx.dir, ours, fx.cow, filepath.Join(fx.dir, "g.img"))
			if !strings.Contains(out, fx.cow) || !strings.Contains(out, strings.Fields(tc.name)[0]) {
				t.Errorf("message %q does not name the file and the field", out)
			}
			if _, err := os.Stat(filepath.Join(fx.dir, "g.img")); err == nil {
				t.Error("ours left an output file")
			}
		})
	}
}

// guestMount mounts the guest's second disk (ubdb, block major 98 minor
// 16, made on a guest-only tmpfs) on $MNT, runs body there, and unmounts.
const guestMount = `mkdir -p "$DEVS" "$MNT"
mount -t tmpfs none "$DEVS" && mknod "$DEVS/ubdb" b 98 16 || exit 1
mount -t ext2 "$DEVS/ubdb" "$MNT" || { echo MOUNT-FAILED; exit 1; }
cd "$MNT"
`

// A UML 6.1 guest writes files through ubd1=COW,BACKING onto an ext2
// image. Our merge equals the C tool's byte for byte, and debugfs reads
// the guest's files back from it; the same with -b after the backing file
// moved, and in place with -d. Then a live guest holds a second COW file
// on the same backing file: merging that COW file is refused, in both
// modes; the finished first COW file still merges as a new image (sharing
// the backing file blocks nothing) but not in place (the live guest would
// see its disk change).
func TestE2EGuestWritesMergeLikeC(t *testing.T) {
	b := testbed.Get(t)
	ours, theirs := b.Tool(t, "uml_moo"), testbed.Original(t, "uml_moo")
	mkcow := b.Tool(t, "uml_mkcow")
	for _, tool := range []string{"mkfs.ext2", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian package e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	backing := filepath.Join(dir, "root_fs")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	if out, err := exec.Command("mkfs.ext2", "-F", "-q", backing).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext2: %v: %s", err, out)
	}
	cowA := filepath.Join(dir, "a.cow")
	tool(t, 0, dir, mkcow, cowA, backing)

	g := b.Boot(t, testbed.GuestConfig{
		Args: []string{"ubd1=" + cowA + "," + backing},
		Env:  map[string]string{"MNT": filepath.Join(dir, "mnt"), "DEVS": filepath.Join(dir, "devs")},
		Script: guestMount + `dd if=/dev/urandom of=random.bin bs=1k count=3000 2>/dev/null
echo hello from the guest > hello.txt
mkdir -p dir && seq 1 20000 > dir/seq.txt
dd if=/dev/zero of=zeros.bin bs=1k count=512 2>/dev/null
sha256sum random.bin hello.txt dir/seq.txt zeros.bin
cd / && umount "$MNT" && echo UMOUNTED`,
	})
	console := g.WaitFor("TESTBED-DONE", 60*time.Second)
	if !strings.Contains(console, "UMOUNTED") {
		t.Fatalf("guest did not write and unmount:\n%s", console)
	}
	g.Wait(30 * time.Second)
	sums := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([0-9a-f]{64})  (\S+)\r?$`).FindAllStringSubmatch(console, -1) {
		sums[m[2]] = m[1]
	}
	if len(sums) != 4 {
		t.Fatalf("guest printed %d checksums:\n%s", len(sums), console)
	}
	checkFiles := func(img string) {
		t.Helper()
		for name, sum := range sums {
			cmd := exec.Command("sh", "-c", `debugfs -R "cat /$0" "$1" 2>/dev/null | sha256sum`, name, img)
			out, err := cmd.Output()
			if err != nil || !strings.HasPrefix(string(out), sum) {
				t.Errorf("debugfs: /%s in %s has checksum %q, the guest wrote %s (%v)", name, filepath.Base(img), out, sum, err)
			}
		}
	}

	newC, newG := filepath.Join(dir, "new_c"), filepath.Join(dir, "new_g")
	tool(t, 0, dir, theirs, cowA, newC)
	tool(t, 0, dir, ours, cowA, newG)
	sameFiles(t, newC, newG)
	checkFiles(newG)

	// The backing file moves; -b names its new place.
	moved := filepath.Join(dir, "moved_fs")
	if err := os.Rename(backing, moved); err != nil {
		t.Fatal(err)
	}
	bC, bG := filepath.Join(dir, "b_c"), filepath.Join(dir, "b_g")
	tool(t, 0, dir, theirs, "-b", moved, cowA, bC)
	tool(t, 0, dir, ours, "-b", moved, cowA, bG)
	sameFiles(t, bC, bG)
	sameFiles(t, bG, newG)

	// In place, into copies of the backing file.
	dC, dG := filepath.Join(dir, "d_c"), filepath.Join(dir, "d_g")
	copyKeepMtime(t, moved, dC)
	copyKeepMtime(t, moved, dG)
	tool(t, 0, dir, theirs, "-d", "-b", dC, cowA)
	tool(t, 0, dir, ours, "-d", "-b", dG, cowA)
	sameFiles(t, dC, dG)
	sameFiles(t, dG, newG)
	checkFiles(dG)

	// A live guest on a second COW file over the same backing file.
	cowB := filepath.Join(dir, "b.cow")
	tool(t, 0, dir, mkcow, cowB, moved)
	live := b.Boot(t, testbed.GuestConfig{
		Args: []string{"ubd1=" + cowB + "," + moved},
		Env:  map[string]string{"MNT": filepath.Join(dir, "mnt2"), "DEVS": filepath.Join(dir, "devs2")},
		Script: guestMount + `echo live > live.txt && sync && echo HOLDING
sleep 60`,
	})
	live.WaitFor("HOLDING", 60*time.Second)
	backSum := fileSum(t, moved)

	out := tool(t, 1, dir, ours, cowB, filepath.Join(dir, "live_new"))
	if !strings.Contains(out, "COW file "+cowB+" is in use") {
		t.Errorf("plain merge of the live COW file: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "live_new")); err == nil {
		t.Error("refused merge left an output file")
	}
	out = tool(t, 1, dir, ours, "-d", cowB)
	if !strings.Contains(out, "is in use") {
		t.Errorf("-d of the live COW file: %q", out)
	}
	shared := filepath.Join(dir, "shared_new")
	tool(t, 0, dir, ours, "-b", moved, cowA, shared)
	sameFiles(t, shared, newG)
	out = tool(t, 1, dir, ours, "-d", "-b", moved, cowA)
	if !strings.Contains(out, "backing file "+moved+" is in use") {
		t.Errorf("-d into the live guest's backing file: %q", out)
	}
	if fileSum(t, moved) != backSum {
		t.Fatal("the shared backing file changed under the live guest")
	}
	// --force merges the live COW file anyway, saying so.
	out = tool(t, 0, dir, ours, "--force", cowB, filepath.Join(dir, "forced_new"))
	if !strings.Contains(out, "WARNING: --force: COW file "+cowB+" is in use") {
		t.Errorf("--force merge of the live COW file: %q", out)
	}
	live.Kill()
	// With the guest gone its COW file merges.
	tool(t, 0, dir, ours, cowB, filepath.Join(dir, "live_new"))
}

// A block device as the new image is written in place, zeros included
// (the C tool skips zero sectors there, leaving the device's old bytes).
func TestE2EMergeOntoBlockDevice(t *testing.T) {
	b := testbed.Get(t)
	ours, theirs := b.Tool(t, "uml_moo"), testbed.Original(t, "uml_moo")
	fx := newFixture(t, 3, 8<<20, 0.05, 30)
	want := filepath.Join(fx.dir, "c.img")
	tool(t, 0, fx.dir, theirs, fx.cow, want)

	disk := filepath.Join(fx.dir, "disk")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xaa}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup (util-linux, root): %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	tool(t, 0, fx.dir, ours, fx.cow, dev)
	if err := exec.Command("losetup", "-d", dev).Run(); err != nil {
		t.Fatalf("losetup -d %s: %v", dev, err)
	}
	sameFiles(t, disk, want)
}

// A full disk (a small tmpfs in a private mount namespace): a new image
// leaves nothing behind, not even its temporary file, and the message
// names NEW; an in-place merge stops with the backing file's mtime kept,
// so the COW file over it still shows the same disk.
func TestE2EDiskFull(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_moo")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare is missing (Debian package util-linux)")
	}
	dir := t.TempDir()
	// A backing file of zeros (a hole), so that a copy of it on the tmpfs
	// takes no room; a COW file with its first MiB dirty.
	backing := filepath.Join(dir, "root_fs")
	if err := os.WriteFile(backing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(backing, 2<<20)
	when := time.Unix(1_700_000_000, 0)
	os.Chtimes(backing, when, when)
	h, err := cowtest.HeaderFor(3, backing)
	if err != nil {
		t.Fatal(err)
	}
	cowPath := filepath.Join(dir, "guest.cow")
	r := rand.New(rand.NewSource(30))
	sectors := map[int64][]byte{}
	for i := int64(0); i < 2048; i++ {
		d := make([]byte, 512)
		r.Read(d)
		sectors[i] = d
	}
	if _, err := cowtest.Write(cowPath, h, sectors); err != nil {
		t.Fatal(err)
	}
	want := reference(t, backing, sectors, 512)
	mnt, after := filepath.Join(dir, "mnt"), filepath.Join(dir, "after.img")
	os.Mkdir(mnt, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", `
mount -t tmpfs -o size=512k tmpfs "$MNT" || exit 9
"$MOO" "$COW" "$MNT/new.img"; echo "new-exit=$?"
echo "left=[$(ls -A "$MNT")]"
umount "$MNT" && mount -t tmpfs -o size=1200k tmpfs "$MNT" || exit 9
cp --sparse=always --preserve=timestamps "$COW" "$BACK" "$MNT/" || exit 9
"$MOO" -d -b "$MNT/root_fs" "$MNT/guest.cow"; echo "d-exit=$?"
echo "mtime=$(stat -c %Y "$MNT/root_fs")"
"$MOO" -b "$MNT/root_fs" "$MNT/guest.cow" "$AFTER"; echo "after-exit=$?"`)
	cmd.Env = append(os.Environ(), "MNT="+mnt, "MOO="+ours, "COW="+cowPath, "BACK="+backing, "AFTER="+after)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v: %s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "new-exit=1") || !strings.Contains(s, "left=[]") ||
		!strings.Contains(s, mnt+"/new.img: No space left on device") {
		t.Errorf("new image on a full disk:\n%s", s)
	}
	if !strings.Contains(s, "d-exit=1") || !strings.Contains(s, "mtime=1700000000") ||
		!strings.Contains(s, "partly merged") || !strings.Contains(s, "after-exit=0") {
		t.Fatalf("in-place merge on a full disk:\n%s", s)
	}
	if got, _ := os.ReadFile(after); !bytes.Equal(got, want) {
		t.Error("the COW file over the partly merged backing file shows another disk")
	}
}

// As an unprivileged user (nobody, via setpriv): a write-protected NEW is
// refused as the C tool's open(O_TRUNC) refuses it, though our rename
// would only need the directory's permission; and uml_mkcow makes a COW
// file over a backing file that user cannot read, as the C tool does.
func TestE2EUnprivilegedUser(t *testing.T) {
	b := testbed.Get(t)
	ours, mkcow := b.Tool(t, "uml_moo"), b.Tool(t, "uml_mkcow")
	theirsMk := testbed.Original(t, "uml_mkcow")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv is missing (Debian package util-linux)")
	}
	fx := newFixture(t, 3, 1<<20, 0.05, 40)
	for _, p := range []string{filepath.Dir(fx.dir), fx.dir} {
		os.Chmod(p, 0o777)
	}
	for _, p := range []string{ours, mkcow, filepath.Dir(ours)} {
		if st, err := os.Stat(p); err == nil {
			os.Chmod(p, st.Mode().Perm()|0o555)
		}
	}
	asNobody := func(argv ...string) (int, string) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}, argv...)...)
		cmd.Dir = fx.dir
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		return 0, string(out)
	}
	newImg := filepath.Join(fx.dir, "protected.img")
	if err := os.WriteFile(newImg, []byte("keep me"), 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chown(newImg, 65534, 65534)
	if code, out := asNobody(ours, fx.cow, newImg); code != 1 || !strings.Contains(out, "Output file open: "+newImg+": Permission denied") {
		t.Errorf("write-protected NEW: exit %d, %q", code, out)
	}
	if got, _ := os.ReadFile(newImg); string(got) != "keep me" {
		t.Error("the write-protected NEW was replaced")
	}
	os.Chmod(fx.backing, 0o600)
	c, g := filepath.Join(fx.dir, "c.cow"), filepath.Join(fx.dir, "g.cow")
	if code, out := asNobody(theirsMk, c, fx.backing); code != 0 {
		t.Fatalf("C uml_mkcow over an unreadable backing file: exit %d, %q", code, out)
	}
	if code, out := asNobody(mkcow, g, fx.backing); code != 0 {
		t.Fatalf("our uml_mkcow over an unreadable backing file: exit %d, %q", code, out)
	}
	sameFiles(t, c, g)
}
