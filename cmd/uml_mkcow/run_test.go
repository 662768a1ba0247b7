package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mkcow(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"uml_mkcow"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	const usage = "uml_mkcow usage: \n\tuml_mkcow [-f] <COW file> <backing file>\n\t-f forces overwrite of an existing COW file\n"
	for _, args := range [][]string{{}, {"-f"}, {"a"}, {"-f", "a"}, {"a", "b", "c"}, {"-x", "b"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, out, errs := mkcow(args...); code != 2 || out != "" || errs != usage {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		})
	}
}

func TestCreateAndRefuse(t *testing.T) {
	dir := t.TempDir()
	back := filepath.Join(dir, "root_fs")
	if err := os.WriteFile(back, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "a.cow")
	if code, _, errs := mkcow(c, back); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	first, _ := os.ReadFile(c)
	if code, _, errs := mkcow(c, back); code != 1 || errs != "open COW file: "+c+": File exists\n" {
		t.Fatalf("existing: exit %d, %q", code, errs)
	}
	if code, _, errs := mkcow("-f", c, back); code != 0 {
		t.Fatalf("-f: exit %d: %s", code, errs)
	}
	if again, _ := os.ReadFile(c); !bytes.Equal(first, again) {
		t.Fatal("-f wrote different bytes")
	}
	missing := filepath.Join(dir, "missing")
	if code, _, errs := mkcow(filepath.Join(dir, "b.cow"), missing); code != 1 ||
		errs != "write_cow_header: backing file '"+missing+"': No such file or directory\n" {
		t.Fatalf("missing backing: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.cow")); err == nil {
		t.Fatal("failed run left a COW file")
	}
	for _, args := range [][]string{{"", back}, {"-f", "", back}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, errs := mkcow(args...); code != 1 || errs != "open COW file: : No such file or directory\n" {
				t.Errorf("%q: exit %d, %q", args, code, errs)
			}
		})
	}
}

// -f through a symbolic link rewrites the file it names, as the C tool's
// open(O_TRUNC) does, and keeps the link; a link to the backing file is
// refused with a message about the COW file.
func TestForceThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	back := filepath.Join(dir, "root_fs")
	if err := os.WriteFile(back, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	target, link := filepath.Join(dir, "target.cow"), filepath.Join(dir, "link.cow")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.cow", link); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := mkcow("-f", link, back); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if st, _ := os.Stat(target); st.Size() <= 3 || st.Mode().Perm() != 0o600 {
		t.Fatalf("target: size %d mode %v, want a COW file with mode 0600", st.Size(), st.Mode())
	}
	blink := filepath.Join(dir, "back.link")
	if err := os.Symlink("root_fs", blink); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := mkcow("-f", blink, back); code != 1 || !strings.Contains(errs, "COW file "+blink+" is the backing file itself") {
		t.Fatalf("-f onto the backing file by a link: exit %d, %q", code, errs)
	}
}
