package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vswitch "github.com/umlutils/umlutils/switch"
)

func TestSwitchctl(t *testing.T) {
	dir := t.TempDir()
	mgmt := filepath.Join(dir, "mgmt")
	sw := vswitch.New(vswitch.Config{})
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: filepath.Join(dir, "ctl"), Group: -1}); err != nil {
		t.Fatal(err)
	}
	if err := sw.ListenManagement(vswitch.SocketConfig{Path: mgmt, Group: -1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("switch did not stop")
		}
	}()
	call := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{mgmt}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := call("stats", "json"); code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("stats json: %d %q", code, out)
	}
	if code, out, _ := call("hub", "on"); code != 0 || out != "" {
		t.Fatalf("hub on: %d %q", code, out)
	}
	if code, _, errOut := call("port", "12345", "down"); code != 1 || !strings.Contains(errOut, "no such port") {
		t.Fatalf("port 12345 down: %d %q", code, errOut)
	}
	if code, _, errOut := call("bogus"); code != 1 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("bogus: %d %q", code, errOut)
	}
	if code, _, _ := call(); code != 2 {
		t.Fatalf("no command: %d", code)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{filepath.Join(dir, "nope"), "stats"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "nope") {
		t.Fatalf("missing socket: %d %q", code, errOut.String())
	}
}

// Each way of giving a bad path gets its own message, naming the path.
func TestSwitchctlBadPaths(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "nope"), "no such file"},
		{regular, "not a socket"},
		{stale, "no switch is listening"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{c.path, "stats"}, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), c.path+": "+c.want) || out.Len() != 0 {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want 2 and %q", c.path, code, errOut.String(), out.String(), c.want)
		}
	}
}
