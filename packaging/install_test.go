package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// makeVar returns the words of a simple `NAME := ...` assignment in the
// Makefile.
func makeVar(t *testing.T, makefile, name string) []string {
	t.Helper()
	for _, l := range strings.Split(makefile, "\n") {
		if v, ok := strings.CutPrefix(l, name+" := "); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("the Makefile has no `%s := ...`", name)
	return nil
}

// TestMakefileLists keeps the Makefile's lists, which `make install` and
// `make rpm`/`make deb` use, equal to the manifest's (packaging/stage's
// defaults, used by the spec through the same Makefile).
func TestMakefileLists(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(projectRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	if got := makeVar(t, mk, "LIBEXEC_CMDS"); !reflect.DeepEqual(got, DefaultLibexec) {
		t.Errorf("Makefile LIBEXEC_CMDS %v, packaging.DefaultLibexec %v", got, DefaultLibexec)
	}
	if got := makeVar(t, mk, "UMLAB_ALIASES"); !reflect.DeepEqual(got, UmlabAliases) {
		t.Errorf("Makefile UMLAB_ALIASES %v, packaging.UmlabAliases %v", got, UmlabAliases)
	}
}

// TestUmlabAliases runs the real umlab under each name the packages link
// to it: each must act as the umlab command it stands for (lstart as
// `umlab start`, ...), which shows in how it rejects an unknown option,
// before it looks for a lab. umlab's usage and man page name them all.
func TestUmlabAliases(t *testing.T) {
	root := projectRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "umlab")); err != nil {
		t.Skip("cmd/umlab is not in the tree")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "umlab")
	if msg, err := runBounded(3*time.Minute, root, nil, "go", "build", "-o", bin, "./cmd/umlab"); err != nil {
		t.Fatalf("go build ./cmd/umlab: %v\n%s", err, msg)
	}
	usage, err := usageOf(bin)
	if err != nil {
		t.Fatalf("%v\n%s", err, usage)
	}
	page, err := os.ReadFile(filepath.Join(root, "man", "umlab.1"))
	if err != nil {
		t.Fatal(err)
	}
	text := manText(string(page))
	for _, a := range UmlabAliases {
		cmd := strings.TrimPrefix(a, "l")
		link := filepath.Join(dir, a)
		if err := os.Symlink("umlab", link); err != nil {
			t.Fatal(err)
		}
		out, err := usageOf(link)
		if err != nil {
			t.Errorf("%s: %v\n%s", a, err, out)
			continue
		}
		if want := "umlab " + cmd + ": unknown option " + badOption; !strings.Contains(out, want) {
			t.Errorf("%s %s printed %q, want %q (the %s command)", a, badOption, out, want, cmd)
		}
		if !mentions(usage, a) {
			t.Errorf("umlab's usage does not name %s", a)
		}
		if !mentions(text, a) {
			t.Errorf("man/umlab.1 does not name %s", a)
		}
	}
}

// TestMakeInstall runs `make install` into a scratch root, from a copy of
// the tree, and checks umlab's part of the layout: the guest side beside
// port-helper, the Netkit names and their pages as links.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every command")
	}
	for _, c := range []string{"make", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is needed: %v", c, err)
		}
	}
	src := t.TempDir()
	copyTree(t, projectRoot(t), src)
	if _, err := os.Stat(filepath.Join(src, "cmd", "umlab")); err != nil {
		t.Skip("cmd/umlab is not in the tree")
	}
	dest := t.TempDir()
	if out, err := runBounded(5*time.Minute, src, nil, "make", "install", "DESTDIR="+dest, "PREFIX=/usr"); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	files := map[string]os.FileMode{
		"/usr/bin/umlab":           0o755,
		"/usr/lib/uml/umlab-guest": 0o755,
		"/usr/lib/uml/port-helper": 0o755,
	}
	pages, err := ManPages(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, pg := range pages {
		files["/usr/share/man/man"+pg.Section+"/"+pg.Name+"."+pg.Section] = 0o644
	}
	for _, pg := range []string{"/usr/share/man/man1/umlab.1", "/usr/share/man/man8/umlab-guest.8"} {
		if _, ok := files[pg]; !ok {
			t.Errorf("%s is not in the tree's man/", pg)
		}
	}
	for p, mode := range files {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want a file of mode %04o", p, fi, err, mode)
		}
	}
	for _, p := range []string{"/usr/bin/umlab-guest", "/usr/bin/port-helper"} {
		if _, err := os.Lstat(filepath.Join(dest, p)); err == nil {
			t.Errorf("%s installed on PATH", p)
		}
	}
	for _, a := range UmlabAliases {
		for link, target := range map[string]string{"/usr/bin/" + a: "umlab", "/usr/share/man/man1/" + a + ".1": "umlab.1"} {
			p := filepath.Join(dest, link)
			if l, err := os.Readlink(p); err != nil || l != target {
				t.Errorf("%s -> %q (%v), want a link to %s", link, l, err, target)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s dangles: %v", link, err)
			}
		}
	}
	// Installing again over the first install must work (ln -sfn).
	if out, err := runBounded(5*time.Minute, src, nil, "make", "install", "DESTDIR="+dest, "PREFIX=/usr"); err != nil {
		t.Fatalf("make install, again: %v\n%s", err, out)
	}
	if err := checkStatic(filepath.Join(dest, "/usr/lib/uml/umlab-guest")); err != nil {
		t.Errorf("installed guest side: %v", err)
	}
}
