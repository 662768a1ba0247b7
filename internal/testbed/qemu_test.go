package testbed

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The newc writer's output is what cpio(1) reads: names, types, device
// numbers and contents survive.
func TestCPIOWriterReadByCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatalf("cpio(1) is needed to check the initramfs writer (Debian package cpio): %v", err)
	}
	var w cpioWriter
	w.dir("bin")
	w.file("bin/hello", 0o755, []byte("odd length!"))
	w.charDev("dev/console", 5, 1)
	w.file("empty", 0o644, nil)
	w.trailer()
	if w.Len()%4 != 0 {
		t.Fatalf("archive of %d bytes is not padded to 4", w.Len())
	}
	path := filepath.Join(t.TempDir(), "a.cpio")
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("sh", "-c", `cpio -itv --quiet < "$1"`, "sh", path).CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v: %s", err, list)
	}
	lines := strings.Split(strings.TrimSpace(string(list)), "\n")
	want := []struct{ prefix, name string }{
		{"drwxr-xr-x", "bin"}, {"-rwxr-xr-x", "bin/hello"}, {"crw-------", "dev/console"}, {"-rw-r--r--", "empty"},
	}
	if len(lines) != len(want) {
		t.Fatalf("cpio lists %d entries, want %d:\n%s", len(lines), len(want), list)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i].prefix) || !strings.HasSuffix(l, " "+want[i].name) {
			t.Errorf("entry %d: %q, want %s ... %s", i, l, want[i].prefix, want[i].name)
		}
	}
	if !strings.Contains(lines[2], "5,") || !strings.Contains(lines[2], "1") {
		t.Errorf("dev/console is not 5,1: %q", lines[2])
	}
	out, err := exec.Command("sh", "-c", `cpio -i --quiet --to-stdout bin/hello < "$1"`, "sh", path).CombinedOutput()
	if err != nil || string(out) != "odd length!" {
		t.Errorf("bin/hello extracts as %q (%v)", out, err)
	}
}

// The guest's init must do nothing on the host: it checks that it is PID 1
// of the initramfs before touching anything.
func TestQEMUInitRefusesOutsideTheGuest(t *testing.T) {
	init, err := qemuInit("uqtest", "echo SHOULD-NOT-RUN", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(path, []byte(init), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to run") || strings.Contains(string(out), "SHOULD-NOT-RUN") {
		t.Fatalf("init on the host: %v: %s", err, out)
	}
}

func TestQEMUInitEnv(t *testing.T) {
	init, err := qemuInit("uqtest", "", map[string]string{"B": `it's "$HOME" \n`, "A": ""}, false)
	if err != nil {
		t.Fatal(err)
	}
	var exports []string
	for _, l := range strings.Split(init, "\n") {
		if strings.HasPrefix(l, "export A=") || strings.HasPrefix(l, "export B=") {
			exports = append(exports, l)
		}
	}
	if len(exports) != 2 || !strings.HasPrefix(exports[0], "export A=") {
		t.Fatalf("exports %q, want A then B", exports)
	}
	out, err := exec.Command("/bin/sh", "-c", strings.Join(exports, "\n")+"\nprintf '%s|%s' \"$A\" \"$B\"").CombinedOutput()
	if err != nil || string(out) != `|it's "$HOME" \n` {
		t.Fatalf("exports give %q (%v)", out, err)
	}
	if _, err := qemuInit("uqtest", "", map[string]string{"A;rm": "x"}, false); err == nil {
		t.Fatal("a variable name with ';' was accepted")
	}
}
