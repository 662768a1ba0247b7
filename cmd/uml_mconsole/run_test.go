package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/mconsole"
	"github.com/umlutils/umlutils/mconsole/mconsoletest"
)

func fakeGuest(t *testing.T) *mconsoletest.Guest {
	t.Helper()
	return mconsoletest.Start(t, t.TempDir(), func(cmd string) mconsoletest.Answer {
		switch {
		case cmd == "remove ubd9":
			return mconsoletest.Fail(uint32(0xffffffed), "Device doesn't exist")
		case cmd == "help":
			return mconsoletest.Text("Commands: \n    version - Get kernel version \n")
		case cmd == "freeze":
			return mconsoletest.Answer{Drop: true}
		case strings.HasPrefix(cmd, "config "):
			return mconsoletest.Text("")
		}
		return mconsoletest.Kernelish(cmd)
	})
}

func runIn(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	rc := run(args, strings.NewReader(stdin), &out, &errb)
	return rc, out.String(), errb.String()
}

func TestOneShot(t *testing.T) {
	g := fakeGuest(t)
	for _, c := range []struct {
		args []string
		rc   int
		out  string
	}{
		{[]string{"version"}, 0, "OK Linux (none) 6.1.0 #1 x86_64\n"},
		{[]string{"foo", "bar"}, 1, "ERR Unknown command\n"},
		{[]string{"remove", "ubd9"}, 237, "ERR Device doesn't exist\n"},
		{[]string{"log", "hello"}, 0, "OK \nOK \n"},
		{[]string{"mconsole-version"}, 0, "uml_mconsole client version 2\n"},
		{[]string{"help"}, 0, "OK Commands: \n    version - Get kernel version \n\n" + localHelp},
		{[]string{"quit"}, 0, ""},
	} {
		rc, out, errs := runIn("", append([]string{g.Socket}, c.args...)...)
		if rc != c.rc || out != c.out || errs != "" {
			t.Errorf("%v: rc %d out %q err %q; want rc %d out %q", c.args, rc, out, errs, c.rc, c.out)
		}
	}
	got := g.Commands()
	want := []string{"version", "foo bar", "remove ubd9", "log hello", "log \n", "help"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("guest got %q, want %q", got, want)
	}
}

func TestLogChunks(t *testing.T) {
	g := fakeGuest(t)
	text := strings.Repeat("a", 1000) + "\n"
	f := filepath.Join(t.TempDir(), "log.txt")
	os.WriteFile(f, []byte(text), 0o644)
	if rc, out, _ := runIn("", g.Socket, "log", "-f", f); rc != 0 || out != "OK \nOK \n" {
		t.Fatalf("log -f: rc %d out %q", rc, out)
	}
	cmds := g.Commands()
	if len(cmds) != 2 || len(cmds[0]) != 4+506 || cmds[1] != "log "+text[506:] {
		t.Fatalf("chunks %q", cmds)
	}
	if rc, _, errs := runIn("", g.Socket, "log", "-f", "/nonexistent/file"); rc != 1 || !strings.Contains(errs, "/nonexistent/file") {
		t.Fatalf("missing file: rc %d err %q", rc, errs)
	}
	dir := t.TempDir()
	if rc, out, errs := runIn("", g.Socket, "log", "-f", dir); rc != 1 || out != "" || !strings.Contains(errs, dir+": is a directory") {
		t.Fatalf("directory: rc %d out %q err %q", rc, out, errs)
	}
}

func TestPipedNoPromptNoEcho(t *testing.T) {
	g := fakeGuest(t)
	rc, out, errs := runIn("version\n\nfoo\nmconsole-version\nquit\nversion\n", g.Socket)
	// The blank line is sent, as the C client sends it.
	want := "OK Linux (none) 6.1.0 #1 x86_64\nERR Unknown command\nERR Unknown command\numl_mconsole client version 2\n"
	if rc != 0 || out != want || errs != "" {
		t.Fatalf("rc %d out %q err %q", rc, out, errs)
	}
}

// Every command prints one JSON object with --json, also when it got no
// answer or failed on this side, and stdout holds nothing else.
func TestJSONLocalFailures(t *testing.T) {
	g := fakeGuest(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: stale, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	for _, c := range []struct {
		args []string
		err  int32
		msg  string
	}{
		{[]string{"-t", "0.2", g.Socket, "freeze"}, -110, "no reply within"},
		{[]string{stale, "version"}, -111, "nobody listens"},
		{[]string{filepath.Join(dir, "none"), "version"}, -2, "no such umid"},
		{[]string{plain, "version"}, -88, "not an mconsole socket"},
		{[]string{g.Socket, "log", "-f", filepath.Join(dir, "none")}, -2, "log -f"},
		{[]string{g.Socket, "switch", "nosuch-umid"}, -2, "switch"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			rc, out, errs := runIn("", append([]string{"--json"}, c.args...)...)
			var r result
			dec := json.NewDecoder(strings.NewReader(out))
			if err := dec.Decode(&r); err != nil || dec.More() {
				t.Errorf("%v: stdout %q is not one JSON object: %v", c.args, out, err)
				return
			}
			if rc != 1 || r.OK || r.Err != c.err || !strings.Contains(r.Output, c.msg) || !strings.Contains(errs, c.msg) {
				t.Errorf("%v: rc %d %+v stderr %q", c.args, rc, r, errs)
			}
		})
	}
}

// A stream socket (a uml_switch control socket, say) is not taken for a
// guest.
func TestStreamSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rc, out, errs := runIn("", path, "version")
	if rc != 1 || out != "" || !strings.Contains(errs, path+": not a UML mconsole socket") {
		t.Fatalf("rc %d out %q err %q", rc, out, errs)
	}
}

// Local commands that print nothing in text mode still print their object.
func TestJSONQuietLocalCommands(t *testing.T) {
	g := fakeGuest(t)
	rc, out, _ := runIn("", "--json", g.Socket, "quit")
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil || rc != 0 || !r.OK || r.Command != "quit" {
		t.Fatalf("quit: rc %d out %q", rc, out)
	}
}

func TestBadTimeout(t *testing.T) {
	for _, v := range []string{"NaN", "nan", "0", "-1", "1e-9", "Inf", "abc", ""} {
		rc, out, errs := runIn("", "-t", v, "g", "version")
		if rc != 1 || out != "" || !strings.Contains(errs, "bad timeout") {
			t.Errorf("-t %q: rc %d out %q err %q", v, rc, out, errs)
		}
	}
	if rc, _, errs := runIn("", "--timeout=NaN", "g", "version"); rc != 1 || !strings.Contains(errs, "bad timeout") {
		t.Errorf("--timeout=NaN: rc %d err %q", rc, errs)
	}
}

func TestJSON(t *testing.T) {
	g := fakeGuest(t)
	rc, out, _ := runIn("", "--json", g.Socket, "remove", "ubd9")
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil || rc != 237 || r.OK || r.Err != -19 || r.Output != "Device doesn't exist" || r.Command != "remove ubd9" || r.UMID != g.Socket {
		t.Fatalf("rc %d out %q (%+v, %v)", rc, out, r, err)
	}
}

func TestFailures(t *testing.T) {
	g := fakeGuest(t)
	start := time.Now()
	rc, out, errs := runIn("", "-t", "0.3", g.Socket, "freeze")
	if rc != 1 || out != "" || !strings.Contains(errs, "no reply within 300ms") {
		t.Fatalf("frozen: rc %d out %q err %q", rc, out, errs)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("timeout not honoured")
	}
	rc, out, errs = runIn("", "umid-that-does-not-exist", "version")
	if rc != 1 || out != "" || !strings.Contains(errs, `no such umid "umid-that-does-not-exist"`) {
		t.Fatalf("unknown umid: rc %d out %q err %q", rc, out, errs)
	}
	for _, args := range [][]string{{}, {"-t"}, {"-t", "x", "u"}, {"--bogus", "u"}, {"-l", "u"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if rc, _, errs := runIn("", args...); rc != 1 || errs == "" {
				t.Errorf("%q: rc %d err %q", args, rc, errs)
			}
		})
	}
	// A piped session that lost its guest exits 1.
	if rc, _, _ := runIn("freeze\n", "--timeout=0.2", g.Socket); rc != 1 {
		t.Fatalf("piped timeout: rc %d", rc)
	}
}

func TestList(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".uml", "g1")
	os.MkdirAll(dir, 0o755)
	mconsoletest.Start(t, dir, mconsoletest.Kernelish)
	os.WriteFile(filepath.Join(dir, "pid"), []byte("1\n"), 0o644)
	rc, out, _ := runIn("", "--list")
	if rc != 0 || !strings.HasPrefix(out, "g1 ") || !strings.HasSuffix(out, filepath.Join(dir, "mconsole")+"\n") {
		t.Fatalf("list: rc %d out %q", rc, out)
	}
	rc, out, _ = runIn("", "-l", "--json")
	var g mconsole.Guest
	if err := json.Unmarshal([]byte(out), &g); err != nil || rc != 0 || g.UMID != "g1" || g.PID != 1 {
		t.Fatalf("list json: rc %d out %q", rc, out)
	}
}

func TestFixFilenames(t *testing.T) {
	dir := t.TempDir()
	real, _ := filepath.EvalSymlinks(dir)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	old, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(old)
	var warn bytes.Buffer
	for in, want := range map[string]string{
		"config ubd2=d.img":           "config ubd2=" + real + "/d.img",
		"config ubd2=sub/c.cow,d.img": "config ubd2=" + real + "/sub/c.cow," + real + "/d.img",
		"config ubd2=/abs/x":          "config ubd2=/abs/x",
		"config eth0=daemon,,unix,sw": "config eth0=daemon,,unix,sw",
		"config ubd2":                 "config ubd2",
		"version":                     "version",
		"config   ubd3r=./d.img":      "config   ubd3r=" + real + "/d.img",
		"config ubd2=nodir/x.img,y":   "config ubd2=nodir/x.img," + real + "/y",
	} {
		warn.Reset()
		if got := fixFilenames(in, &warn); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

// Options count only before UMID: after it they are words of the command,
// sent as the C client sends them (the guest then says it does not know it).
func TestOptionsAfterUMIDAreTheCommand(t *testing.T) {
	g := fakeGuest(t)
	for _, args := range [][]string{{"-t", "3", "version"}, {"--json", "version"}, {"--timeout=3"}, {"-l"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			rc, out, errs := runIn("", append([]string{g.Socket}, args...)...)
			if rc != 1 || out != "ERR Unknown command\n" || errs != "" {
				t.Errorf("%q: rc %d out %q err %q", args, rc, out, errs)
			}
		})
	}
	want := []string{"-t 3 version", "--json version", "--timeout=3", "-l"}
	if got := g.Commands(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("guest got %q, want %q", got, want)
	}
}
