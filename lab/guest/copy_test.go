package guest

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyTree enters a destination directory through a link (merged /usr:
// lib -> usr/lib) instead of replacing the link, replaces files and links,
// and keeps modes.
func TestCopyTreeMergedUsr(t *testing.T) {
	root := t.TempDir()
	dst := filepath.Join(root, "dst")
	os.MkdirAll(filepath.Join(dst, "usr/lib/systemd/system"), 0o755)
	os.Symlink("usr/lib", filepath.Join(dst, "lib"))
	os.MkdirAll(filepath.Join(dst, "etc"), 0o700)
	os.Symlink("/run/elsewhere", filepath.Join(dst, "etc/resolv.conf"))

	src := filepath.Join(root, "src")
	os.MkdirAll(filepath.Join(src, "lib/systemd/system"), 0o755)
	os.WriteFile(filepath.Join(src, "lib/systemd/system/x.service"), []byte("[Unit]\n"), 0o644)
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/resolv.conf"), []byte("nameserver 10.0.0.1\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("run.sh", filepath.Join(src, "etc/link"))

	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "lib")); err != nil || l != "usr/lib" {
		t.Errorf("lib is no longer the link: %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "usr/lib/systemd/system/x.service")); err != nil {
		t.Errorf("the unit did not land under usr/lib: %v", err)
	}
	if st, err := os.Lstat(filepath.Join(dst, "etc/resolv.conf")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("resolv.conf link not replaced by the file: %v", err)
	}
	if st, _ := os.Stat(filepath.Join(dst, "etc/run.sh")); st == nil || st.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode: %v", st)
	}
	if st, _ := os.Stat(filepath.Join(dst, "etc")); st == nil || st.Mode().Perm() != 0o700 {
		t.Errorf("an existing directory's mode changed: %v", st)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "etc/link")); l != "run.sh" {
		t.Errorf("link: %q", l)
	}
	if err := CopyTree(filepath.Join(root, "missing"), dst); err != nil {
		t.Errorf("a missing source: %v", err)
	}
}
