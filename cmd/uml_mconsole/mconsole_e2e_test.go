//go:build e2e

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/mconsole"
)

// outcome is what one run of a client printed and its exit status.
type outcome struct {
	stdout, stderr string
	status         int
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", o.status, o.stdout, o.stderr)
}

// runClient runs a client binary in dir with stdin, bounded by limit.
func runClient(t *testing.T, dir, stdin string, limit time.Duration, argv ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	o := outcome{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		o.status = ee.ExitCode()
	default:
		if ctx.Err() != nil {
			t.Fatalf("%v did not finish within %v: %v", argv, limit, err)
		}
		t.Fatalf("%v: %v", argv, err)
	}
	return o
}

// One UML 6.1 guest serves every check: byte-for-byte comparison with the C
// client, interactive and piped use, stop/go, notifications, a frozen guest
// and, last, a dead one.
func TestE2EMconsoleAgainstC(t *testing.T) {
	b := testbed.Get(t)
	ours := b.Tool(t, "uml_mconsole")
	theirs := testbed.Original(t, "uml_mconsole")
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "disk.img"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	// log -f sends a file in pieces of 506 bytes and adds a newline.
	logText := strings.Repeat("a line for the guest's kernel log\n", 30) + "no newline at the end"
	if err := os.WriteFile(filepath.Join(work, "log.txt"), []byte(logText), 0o644); err != nil {
		t.Fatal(err)
	}

	notify, err := mconsole.Listen(filepath.Join(work, "notify"))
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	g := b.Boot(t, testbed.GuestConfig{
		Timeout: 150 * time.Second,
		Args:    []string{"mconsole=notify:" + notify.Path},
		Script: `echo GUEST-UP > /proc/mconsole
ping -n -i 0.2 127.0.0.1 | sed -u 's/^/PING /' &
echo GUEST-READY
sleep 100`,
	})
	g.WaitFor("GUEST-READY", 60*time.Second)
	sock := filepath.Join(os.Getenv("HOME"), ".uml", g.UMID, "mconsole")

	t.Run("notifications", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got := map[mconsole.NotificationType]string{}
		for len(got) < 2 {
			n, err := notify.Next(ctx)
			if err != nil {
				t.Fatalf("notifications so far %v: %v", got, err)
			}
			got[n.Type] = n.Data
		}
		if got[mconsole.NotifySocket] != sock || got[mconsole.NotifyUser] != "GUEST-UP\n" {
			t.Fatalf("notifications %q; want socket %s and user GUEST-UP", got, sock)
		}
	})

	// Same output and status as the C client. The umid and the socket path
	// both name the guest.
	t.Run("same as C", func(t *testing.T) {
		for _, cmd := range [][]string{
			{"version"}, {"help"}, {"config", "ubd1"}, {"proc", "version"},
			{"no-such-command"}, {"log", "hello from the test"}, {"mconsole-version"},
			{"config"}, {"remove"}, {"proc"}, {"remove", "ubd9"},
			{"log", "-f", "log.txt"}, {"log", strings.Repeat("long ", 150)},
		} {
			for _, target := range []string{g.UMID, sock} {
				argv := append([]string{target}, cmd...)
				c := runClient(t, work, "", 10*time.Second, append([]string{theirs}, argv...)...)
				o := runClient(t, work, "", 10*time.Second, append([]string{ours}, argv...)...)
				// Given a path under ~/.uml, the C client also warns that
				// /tmp/uml/PATH/mconsole does not exist; ours does not.
				if target == sock {
					c.stderr = strings.TrimPrefix(c.stderr, "Warning: couldn't stat file: /tmp/uml/"+sock+"/mconsole - No such file or directory\n")
				}
				if c != o {
					t.Errorf("%q:\n C:   %v\n ours: %v", argv, c, o)
				}
			}
		}
	})

	// Commands that change the guest: the same sequence through each
	// client gives the same transcript (config twice is -EBUSY, 240; remove
	// twice -ENODEV, 237). disk.img is relative: both make it absolute.
	t.Run("config and remove", func(t *testing.T) {
		seq := [][]string{
			{"config", "ubd2=disk.img"}, {"config", "ubd2=disk.img"}, {"config", "ubd2"},
			{"remove", "ubd2"}, {"remove", "ubd2"},
		}
		transcript := func(bin string) []outcome {
			var out []outcome
			for _, cmd := range seq {
				out = append(out, runClient(t, work, "", 10*time.Second, append([]string{bin, g.UMID}, cmd...)...))
			}
			return out
		}
		c, o := transcript(theirs), transcript(ours)
		for i := range seq {
			if c[i] != o[i] {
				t.Errorf("%q:\n C:   %v\n ours: %v", seq[i], c[i], o[i])
			}
		}
		if c[1].status != 240 || c[2].stdout != "OK "+filepath.Join(work, "disk.img")+"\n" || c[4].status != 237 {
			t.Errorf("C transcript not as expected: %v", c)
		}
	})

	// Answers that change between calls: same status and shape. (sysrq
	// letters with long output, such as m or t, are answered only now and
	// then by UML 6.1: the C client then hangs, ours times out.)
	t.Run("shape only", func(t *testing.T) {
		for _, cmd := range [][]string{{"sysrq"}, {"sysrq", "9"}, {"proc", "meminfo"}, {"proc", "uptime"}} {
			argv := append([]string{g.UMID}, cmd...)
			c := runClient(t, work, "", 10*time.Second, append([]string{theirs}, argv...)...)
			o := runClient(t, work, "", 10*time.Second, append([]string{ours}, argv...)...)
			if c.status != o.status || c.stderr != o.stderr || !strings.HasPrefix(o.stdout, "OK ") || !strings.HasPrefix(c.stdout, "OK ") ||
				strings.Count(c.stdout, "\n") != strings.Count(o.stdout, "\n") {
				t.Errorf("%q:\n C:   %v\n ours: %v", argv, c, o)
			}
		}
	})

	t.Run("json and list", func(t *testing.T) {
		o := runClient(t, work, "", 10*time.Second, ours, "--json", g.UMID, "remove", "ubd9")
		want := fmt.Sprintf(`{"umid":%q,"command":"remove ubd9","ok":false,"err":-19,"output":"Device doesn't exist"}`+"\n", g.UMID)
		if o.stdout != want || o.status != 237 {
			t.Errorf("json: %v; want %q", o, want)
		}
		o = runClient(t, work, "", 15*time.Second, ours, "--list")
		if !regexp.MustCompile(`(?m)^` + g.UMID + ` +` + fmt.Sprint(g.Pid()) + ` ` + regexp.QuoteMeta(sock) + `$`).MatchString(o.stdout) {
			t.Errorf("--list does not show %s (pid %d): %v", g.UMID, g.Pid(), o)
		}
	})

	// Piped commands: only the answers (the C client also prints prompts
	// and echoes the input there).
	t.Run("piped", func(t *testing.T) {
		o := runClient(t, work, "version\nno-such-command\nmconsole-version\n", 10*time.Second, ours, g.UMID)
		c := runClient(t, work, "version\n", 10*time.Second, theirs, g.UMID)
		version := runClient(t, work, "", 10*time.Second, theirs, g.UMID, "version").stdout
		want := version + "ERR Unknown command\numl_mconsole client version 2\n"
		if o.stdout != want || o.status != 0 || o.stderr != "" {
			t.Errorf("piped: %v; want stdout %q", o, want)
		}
		t.Logf("the C client piped: %q", c.stdout)
	})

	// Piped, the answers are the C client's lines without its prompts and
	// echoed input, blank lines included (both send them and the guest
	// answers "ERR Unknown command").
	t.Run("piped like C", func(t *testing.T) {
		in := "version\n\nremove ubd9\n   \nno-such-command\nquit\nversion\n"
		c := runClient(t, work, in, 10*time.Second, theirs, g.UMID)
		o := runClient(t, work, in, 10*time.Second, ours, g.UMID)
		prompt := "(" + g.UMID + ") "
		if len(g.UMID) > 10 {
			prompt = "(" + g.UMID[:10] + ") "
		}
		var want []string
		for _, l := range strings.SplitAfter(c.stdout, "\n") {
			if l != "" && !strings.HasPrefix(l, prompt) {
				want = append(want, l)
			}
		}
		if o.stdout != strings.Join(want, "") || o.status != c.status || o.stderr != "" {
			t.Errorf("piped:\n C:   %v\n ours: %v", c, o)
		}
	})

	// Names that exist but are no guest's socket: a message naming the
	// file and what it is, status 1, one JSON object with --json.
	t.Run("not a socket", func(t *testing.T) {
		plain := filepath.Join(work, "log.txt")
		for _, c := range []struct{ target, want string }{
			{plain, plain + ": is a regular file, not an mconsole socket"},
			{filepath.Dir(sock), filepath.Dir(sock) + ": is a directory, not an mconsole socket"},
		} {
			t.Run(filepath.Base(c.target), func(t *testing.T) {
				o := runClient(t, work, "", 10*time.Second, ours, c.target, "version")
				if o.status != 1 || o.stdout != "" || !strings.Contains(o.stderr, c.want) {
					t.Errorf("%s: %v", c.target, o)
				}
				o = runClient(t, work, "", 10*time.Second, ours, "--json", c.target, "version")
				var r map[string]any
				if err := json.Unmarshal([]byte(o.stdout), &r); err != nil || r["ok"] != false || r["err"] != float64(-88) {
					t.Errorf("--json %s: %v (%v)", c.target, o, err)
				}
			})
		}
	})

	// With HOME unset the C client skips ~/.uml (and the kernel would not
	// have made it); ours finds the home in the password database.
	t.Run("HOME unset", func(t *testing.T) {
		cmd := exec.Command(ours, g.UMID, "version")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "OK Linux") {
			t.Errorf("HOME unset: %q %v", out, err)
		}
	})

	t.Run("interactive", func(t *testing.T) { interactive(t, ours, g.UMID) })

	// stop freezes the guest (its ping pauses) but the console still
	// answers; go resumes it.
	t.Run("stop and go", func(t *testing.T) {
		var want []outcome
		pings := func() int { return strings.Count(g.Console(), "PING 64 bytes") }
		g.WaitFor("PING 64 bytes", 10*time.Second)
		if o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "stop"); o.stdout != "OK stopped\n" || o.status != 0 {
			t.Fatalf("stop: %v", o)
		}
		time.Sleep(300 * time.Millisecond)
		before := pings()
		time.Sleep(1500 * time.Millisecond)
		if o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "version"); !strings.HasPrefix(o.stdout, "OK Linux") {
			t.Errorf("a stopped guest must still answer: %v", o)
		}
		if n := pings(); n != before {
			t.Errorf("ping went on while stopped: %d -> %d replies", before, n)
		}
		if o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "go"); o.stdout != "OK \n" || o.status != 0 {
			t.Fatalf("go: %v", o)
		}
		deadline := time.Now().Add(5 * time.Second)
		for pings() < before+3 {
			if time.Now().After(deadline) {
				t.Fatalf("ping did not resume after go (%d replies)", pings())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The C client says the same, also for a second stop and go.
		seq := []string{"stop", "stop", "go", "go"}
		for _, bin := range []string{theirs, ours} {
			var got []outcome
			for _, cmd := range seq {
				got = append(got, runClient(t, work, "", 10*time.Second, bin, g.UMID, cmd))
			}
			t.Logf("%s: %v", bin, got)
			if bin == theirs {
				want = got
			} else {
				for i := range seq {
					if got[i] != want[i] {
						t.Errorf("%s:\n C:   %v\n ours: %v", seq[i], want[i], got[i])
					}
				}
			}
		}
	})

	// A guest frozen with SIGSTOP: the C client would wait forever; ours
	// gives up after its timeout with a message and status 1.
	t.Run("frozen guest", func(t *testing.T) {
		if err := syscall.Kill(g.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		o := runClient(t, work, "", 10*time.Second, ours, "-t", "2", g.UMID, "version")
		took := time.Since(start)
		syscall.Kill(g.Pid(), syscall.SIGCONT)
		if o.status != 1 || o.stdout != "" || !strings.Contains(o.stderr, "no reply within 2s") || !strings.Contains(o.stderr, g.UMID) {
			t.Errorf("frozen: %v", o)
		}
		if took < 2*time.Second || took > 5*time.Second {
			t.Errorf("frozen: gave up after %v, want about 2s", took)
		}
		if o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "version"); !strings.HasPrefix(o.stdout, "OK Linux") {
			t.Errorf("after SIGCONT: %v", o)
		}

		// Frozen again: --json still prints one object, and --list
		// finishes in its probe time, leaving the silent guest out.
		if err := syscall.Kill(g.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(g.Pid(), syscall.SIGCONT)
		o = runClient(t, work, "", 10*time.Second, ours, "--json", "-t", "1", g.UMID, "version")
		var r map[string]any
		if err := json.Unmarshal([]byte(o.stdout), &r); err != nil || r["ok"] != false || r["err"] != float64(-110) || o.status != 1 {
			t.Errorf("frozen --json: %v (%v)", o, err)
		}
		start = time.Now()
		o = runClient(t, work, "", 10*time.Second, ours, "--list")
		if took := time.Since(start); o.status != 0 || strings.Contains(o.stdout, g.UMID) || took > 5*time.Second {
			t.Errorf("--list with the guest frozen: %v after %v", o, took)
		}
		syscall.Kill(g.Pid(), syscall.SIGCONT)
		if o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "version"); !strings.HasPrefix(o.stdout, "OK Linux") {
			t.Errorf("after the second SIGCONT: %v", o)
		}
	})

	t.Run("unknown umid", func(t *testing.T) {
		name := testbed.UniqueName("nosuch")
		c := runClient(t, work, "", 10*time.Second, theirs, name, "version")
		o := runClient(t, work, "", 10*time.Second, ours, name, "version")
		if o.status != 1 || c.status != 1 || o.stdout != "" || !strings.Contains(o.stderr, `no such umid "`+name+`"`) {
			t.Errorf("unknown umid:\n C:   %v\n ours: %v", c, o)
		}
	})

	// Last: kill the guest without letting it clean up; its socket file
	// stays behind with nobody listening.
	t.Run("stale socket", func(t *testing.T) {
		syscall.Kill(-g.Pid(), syscall.SIGKILL)
		for i := 0; syscall.Kill(-g.Pid(), 0) == nil; i++ {
			if i > 500 {
				t.Fatal("guest did not die")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("no stale socket left: %v", err)
		}
		c := runClient(t, work, "", 10*time.Second, theirs, g.UMID, "version")
		o := runClient(t, work, "", 10*time.Second, ours, g.UMID, "version")
		if o.status != 1 || c.status != 1 || o.stdout != "" || !strings.Contains(o.stderr, "stale socket") {
			t.Errorf("stale:\n C:   %v\n ours: %v", c, o)
		}
	})
}

// interactive drives our client through a pseudo-terminal: prompt, a
// command, history recall with the up arrow, line editing, EOF.
func interactive(t *testing.T, ours, umid string) {
	cmd := exec.Command(ours, umid)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer cmd.Process.Kill()
	var buf bytes.Buffer
	chunks := make(chan []byte, 64)
	go func() {
		for {
			b := make([]byte, 4096)
			n, err := f.Read(b)
			if n > 0 {
				// The line editor asks where the cursor is; answer as a
				// terminal would.
				if bytes.Contains(b[:n], []byte("\x1b[6n")) {
					f.Write([]byte("\x1b[1;1R"))
				}
				chunks <- b[:n]
			}
			if err != nil {
				close(chunks)
				return
			}
		}
	}()
	expect := func(what string, count int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for strings.Count(buf.String(), what) < count {
			select {
			case c, ok := <-chunks:
				if !ok {
					t.Fatalf("terminal closed before %d× %q; got %q", count, what, buf.String())
				}
				buf.Write(c)
			case <-deadline:
				t.Fatalf("no %d× %q on the terminal; got %q", count, what, buf.String())
			}
		}
	}
	prompt := "(" + umid + ") "
	if len(umid) > 10 {
		prompt = "(" + umid[:10] + ") "
	}
	expect(prompt, 1)
	f.Write([]byte("version\r"))
	expect("OK Linux", 1)
	expect(prompt, 2)
	f.Write([]byte("\x1b[A\r")) // up arrow: the last command again
	expect("OK Linux", 2)
	expect(prompt, 3)
	f.Write([]byte("mconsole-versionXX\x7f\x7f\r")) // two backspaces
	expect("uml_mconsole client version 2", 1)
	expect(prompt, 4)
	sock := filepath.Join(os.Getenv("HOME"), ".uml", umid, "mconsole")
	f.Write([]byte("switch " + sock + "\r"))
	expect("Switched to '"+sock+"'", 1)
	expect("("+sock[:10]+") ", 1)
	f.Write([]byte("version\r"))
	expect("OK Linux", 3)
	// Wait for the prompt as a person would: typed ahead of it, the ^D can
	// be taken by the line editor while it waits for its cursor query's
	// answer.
	expect("("+sock[:10]+") ", 2)
	f.Write([]byte{4}) // ^D: EOF
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after ^D: %v; terminal: %q", err, buf.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after ^D; terminal: %q", buf.String())
	}
}
