package mconsole_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umlutils/umlutils/mconsole"
	"github.com/umlutils/umlutils/mconsole/mconsoletest"
)

func TestMarshalRequest(t *testing.T) {
	b := mconsole.MarshalRequest("version")
	if len(b) != 524 {
		t.Fatalf("request is %d bytes, want 524", len(b))
	}
	ne := binary.NativeEndian
	if ne.Uint32(b) != 0xcafebabe || ne.Uint32(b[4:]) != 2 || ne.Uint32(b[8:]) != 7 || string(b[12:19]) != "version" || b[19] != 0 {
		t.Fatalf("bad request % x", b[:24])
	}
	long := mconsole.MarshalRequest(strings.Repeat("x", 600))
	if n := ne.Uint32(long[8:]); n != 511 || long[523] != 0 {
		t.Fatalf("long command: len %d, last byte %d; want 511 and NUL", n, long[523])
	}
}

func TestReplyPartUnmarshal(t *testing.T) {
	good := func(err, more uint32, data string, extra int) []byte {
		b := make([]byte, 12+len(data)+1+extra)
		binary.NativeEndian.PutUint32(b, err)
		binary.NativeEndian.PutUint32(b[4:], more)
		binary.NativeEndian.PutUint32(b[8:], uint32(len(data)+1))
		copy(b[12:], data)
		return b
	}
	var p mconsole.ReplyPart
	if err := p.UnmarshalBinary(good(0xfffffff0, 1, "Device is busy", 0)); err != nil || p.Err != 0xfffffff0 || !p.More || p.Data != "Device is busy" {
		t.Fatalf("got %+v, %v", p, err)
	}
	// A full 524-byte packet with len pointing inside it is fine too.
	if err := p.UnmarshalBinary(good(0, 0, "x", 300)); err != nil || p.Data != "x" {
		t.Fatalf("got %+v, %v", p, err)
	}
	bad := map[string][]byte{
		"empty":         nil,
		"short header":  make([]byte, 11),
		"len past data": good(0, 0, "abc", 0)[:14],
		"len over 512":  func() []byte { b := good(0, 0, "", 600); binary.NativeEndian.PutUint32(b[8:], 513); return b }(),
	}
	for name, b := range bad {
		if err := p.UnmarshalBinary(b); !errors.Is(err, mconsole.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestReplyExitStatus(t *testing.T) {
	for _, c := range []struct {
		err  uint32
		want int
	}{{0, 0}, {1, 1}, {uint32(0xfffffff0), 240}, {uint32(0xffffffed), 237}, {256, 0}} {
		t.Run(fmt.Sprintf("%#x", c.err), func(t *testing.T) {
			r := mconsole.Reply{Err: c.err}
			if got := r.ExitStatus(); got != c.want {
				t.Errorf("err %#x: exit status %d, want %d", c.err, got, c.want)
			}
		})
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	n := mconsole.Notification{Type: mconsole.NotifyHang}
	b, err := n.MarshalBinary()
	if err != nil || len(b) != 16 {
		t.Fatalf("hang notification: %d bytes (%v), want 16", len(b), err)
	}
	var got mconsole.Notification
	// The kernel counts the socket path's NUL in len.
	raw, _ := (&mconsole.Notification{Type: mconsole.NotifySocket, Data: "/root/.uml/x/mconsole\x00"}).MarshalBinary()
	if err := got.UnmarshalBinary(raw); err != nil || got.Type != mconsole.NotifySocket || got.Data != "/root/.uml/x/mconsole" {
		t.Fatalf("got %+v, %v", got, err)
	}
	raw[0] ^= 1
	if err := got.UnmarshalBinary(raw); !errors.Is(err, mconsole.ErrMalformed) {
		t.Fatalf("bad magic: %v", err)
	}
	if err := got.UnmarshalBinary(raw[:15]); !errors.Is(err, mconsole.ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
}

func TestClientMultiPartAndErrors(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("0123456789", 150)
	g := mconsoletest.Start(t, dir, func(cmd string) mconsoletest.Answer {
		switch cmd {
		case "proc big":
			return mconsoletest.Split(long, 511)
		case "busy":
			return mconsoletest.Fail(uint32(0xfffffff0), "Device is busy")
		case "freeze":
			return mconsoletest.Answer{Drop: true}
		case "garbage":
			return mconsoletest.Answer{Raw: [][]byte{{1, 2, 3}}}
		}
		return mconsoletest.Kernelish(cmd)
	})
	c := &mconsole.Client{Socket: g.Socket, Timeout: 300 * time.Millisecond}
	ctx := context.Background()
	r, err := c.Command(ctx, "proc big")
	if err != nil || r.Text != long || !r.OK() {
		t.Fatalf("multi-part: %v, %d bytes", err, len(r.Text))
	}
	r, err = c.Command(ctx, "busy")
	if err != nil || r.OK() || r.ExitStatus() != 240 || r.String() != "ERR Device is busy" {
		t.Fatalf("busy: %+v %v", r, err)
	}
	start := time.Now()
	if _, err = c.Command(ctx, "freeze"); !errors.Is(err, mconsole.ErrTimeout) {
		t.Fatalf("frozen guest: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	// The next command must get its own answer, not a late one.
	if r, err = c.Command(ctx, "version"); err != nil || !strings.HasPrefix(r.Text, "Linux") {
		t.Fatalf("after timeout: %+v %v", r, err)
	}
	if _, err = c.Command(ctx, "garbage"); !errors.Is(err, mconsole.ErrMalformed) {
		t.Fatalf("garbage: %v, want ErrMalformed", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err = c.Command(cctx, "freeze"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestClientStaleAndMissing(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "mconsole")
	// A socket file nobody listens on: what a killed guest leaves.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := conn.File()
	conn.Close()
	f.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket file vanished: %v", err)
	}
	c := &mconsole.Client{Socket: sock}
	if _, err := c.Command(context.Background(), "version"); !errors.Is(err, mconsole.ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	c.Socket = filepath.Join(dir, "none")
	if _, err := c.Command(context.Background(), "version"); !errors.Is(err, mconsole.ErrNoSuchUMID) {
		t.Fatalf("missing: %v", err)
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".uml", "g1"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(home, ".uml", "g1", "mconsole")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.WriteFile(filepath.Join(home, ".uml", "g1", "pid"), []byte("1234\n"), 0o644)
	r, err := mconsole.Resolve("g1")
	if err != nil || r.Socket != sock {
		t.Fatalf("g1: %+v %v", r, err)
	}
	if pid, err := r.PID(); err != nil || pid != 1234 {
		t.Fatalf("pid %d %v", pid, err)
	}
	if r, err = mconsole.Resolve(sock); err != nil || r.Socket != sock {
		t.Fatalf("path: %+v %v", r, err)
	}
	_, err = mconsole.Resolve("nosuch-umid-here")
	var e *mconsole.NoSuchUMIDError
	if !errors.As(err, &e) || !errors.Is(err, mconsole.ErrNoSuchUMID) || len(e.Tried) != 3 {
		t.Fatalf("nosuch: %v", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(home, ".uml", "nosuch-umid-here", "mconsole")) {
		t.Fatalf("error does not name the paths tried: %v", err)
	}
}

// A name that exists but is no socket is reported as such, not as a
// guest that is gone (the C client says "Connection refused").
func TestResolveNotSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, c := range []struct{ path, want string }{
		{file, "is a regular file, not an mconsole socket"},
		{dir, "is a directory, not an mconsole socket"},
	} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			_, err := mconsole.Resolve(c.path)
			var ns *mconsole.NotSocketError
			if !errors.As(err, &ns) || ns.Path != c.path || !strings.Contains(err.Error(), c.path+": "+c.want) {
				t.Errorf("%s: %v", c.path, err)
			}
		})
	}
}

// With $HOME unset, ~/.uml is found through the password database.
func TestUMLDirWithoutHOME(t *testing.T) {
	t.Setenv("HOME", "")
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Skipf("no password entry for this user: %v", err)
	}
	if got := mconsole.UMLDir(); got != filepath.Join(u.HomeDir, ".uml") {
		t.Fatalf("UMLDir() = %q, want %q", got, filepath.Join(u.HomeDir, ".uml"))
	}
}

func TestListSkipsDeadGuests(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	dead := filepath.Join(dir, "dead")
	os.MkdirAll(live, 0o755)
	os.MkdirAll(dead, 0o755)
	mconsoletest.Start(t, live, mconsoletest.Kernelish)
	os.WriteFile(filepath.Join(live, "pid"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(dead, "pid"), []byte("999999999\n"), 0o644)
	frozen := filepath.Join(dir, "frozen")
	os.MkdirAll(frozen, 0o755)
	mconsoletest.Start(t, frozen, func(string) mconsoletest.Answer { return mconsoletest.Answer{Drop: true} })
	os.WriteFile(filepath.Join(frozen, "pid"), []byte("1\n"), 0o644)
	fds := openFDs(t)
	gs, err := mconsole.List(context.Background(), dir, 300*time.Millisecond)
	if err != nil || len(gs) != 1 || gs[0].UMID != "live" || gs[0].PID != 1 || gs[0].Socket != filepath.Join(live, "mconsole") {
		t.Fatalf("list: %+v %v", gs, err)
	}
	// A program that lists often must not run out of descriptors.
	if n := openFDs(t); n > fds {
		t.Errorf("List leaked %d descriptors", n-fds)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestListenerReceives(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	l, err := mconsole.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := mconsole.Listen(path); err == nil {
		t.Fatal("a second listener took over a live socket")
	}
	if err := mconsole.Notify(path, &mconsole.Notification{Type: mconsole.NotifyUser, Data: "up"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := l.Next(ctx)
	if err != nil || n.Type != mconsole.NotifyUser || n.Data != "up" {
		t.Fatalf("got %+v %v", n, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := l.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle listener: %v", err)
	}

	// A context cancelled (not timed out) before or while Next starts
	// must end it: the hook that cuts the read short must not be undone.
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			ctx, cancel := context.WithCancel(context.Background())
			if i%2 == 0 {
				cancel()
			} else {
				go cancel()
			}
			if _, err := l.Next(ctx); !errors.Is(err, context.Canceled) {
				done <- fmt.Errorf("round %d: %v", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next blocked on a cancelled context")
	}
}

// FuzzReplyPart: any datagram parses or fails with ErrMalformed, never
// panics, and what parses survives a round trip.
func FuzzReplyPart(f *testing.F) {
	for _, p := range []mconsole.ReplyPart{{Data: "Linux (none) 6.1.176"}, {Err: 0xfffffff0, Data: "Device is busy"}, {More: true, Data: "part"}, {}} {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p mconsole.ReplyPart
		if err := p.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, mconsole.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if strings.IndexByte(p.Data, 0) >= 0 || len(p.Data) > mconsole.MaxData {
			t.Fatalf("parsed data %q holds a NUL or is too long", p.Data)
		}
		out, err := p.MarshalBinary()
		if err != nil {
			if len(p.Data) == mconsole.MaxData {
				return // 512 bytes without a NUL: legal in, too long to send back
			}
			t.Fatal(err)
		}
		var q mconsole.ReplyPart
		if err := q.UnmarshalBinary(out); err != nil || q != p {
			t.Fatalf("round trip: %+v -> %+v (%v)", p, q, err)
		}
	})
}

// FuzzNotification: the same for notification datagrams.
func FuzzNotification(f *testing.F) {
	for _, n := range []mconsole.Notification{{Type: mconsole.NotifySocket, Data: "/root/.uml/a/mconsole\x00"}, {Type: mconsole.NotifyHang}, {Type: mconsole.NotifyPanic, Data: "Kernel panic"}} {
		b, _ := n.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n mconsole.Notification
		if err := n.UnmarshalBinary(b); err != nil && !errors.Is(err, mconsole.ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}

// A guest that reads nothing (frozen) fills its queue: sending then blocks
// too, and must still end at the deadline.
func TestClientFullQueue(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mconsole")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &mconsole.Client{Socket: sock, Timeout: 100 * time.Millisecond}
	start := time.Now()
	for i := 0; i < 15; i++ {
		if _, err := c.Command(context.Background(), "version"); !errors.Is(err, mconsole.ErrTimeout) {
			t.Fatalf("command %d: %v, want ErrTimeout", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("15 timeouts of 100ms took %v", d)
	}
}
