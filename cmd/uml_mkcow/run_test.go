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
		if code, out, errs := mkcow(args...); code != 2 || out != "" || errs != usage {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
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
}
