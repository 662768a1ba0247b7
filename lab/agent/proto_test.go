package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []Frame{
		{Type: Reset, Payload: []byte("12345678")},
		{Type: Stdout, Payload: bytes.Repeat([]byte{0, 'U', 'M', 'L', 'A'}, 1000)},
		{Type: StdinEOF},
		{Type: Exit, Payload: []byte(`{"code":3}`)},
	} {
		t.Run(string(f.Type), func(t *testing.T) {
			b, err := f.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var g Frame
			if err := g.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if g.Type != f.Type || !bytes.Equal(g.Payload, f.Payload) {
				t.Errorf("got %c %q", g.Type, g.Payload)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	ok, _ := (&Frame{Type: Stdout, Payload: []byte("x")}).MarshalBinary()
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header only of a frame with payload", ok[:HeaderSize], ErrShort},
		{"bad magic", append([]byte("XMLA"), ok[4:]...), ErrNotFrame},
		{"unknown type", append(append([]byte{}, ok[:4]...), append([]byte{'?'}, ok[5:]...)...), ErrNotFrame},
		{"oversized length", append(append([]byte{}, ok[:5]...), 0xff, 0xff, 0xff, 0xff), ErrNotFrame},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f Frame
			if err := f.UnmarshalBinary(c.b); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := (&Frame{Type: 'z'}).MarshalBinary(); err == nil {
		t.Error("unknown type marshalled")
	}
	if _, err := (&Frame{Type: Stdout, Payload: make([]byte, MaxPayload+1)}).MarshalBinary(); err == nil {
		t.Error("oversized payload marshalled")
	}
}

// The reader slides over stale bytes, including a false start that holds
// the magic word, to the next real frame.
func TestReaderResync(t *testing.T) {
	a, _ := (&Frame{Type: ResetAck, Payload: []byte("nonce123")}).MarshalBinary()
	b, _ := (&Frame{Type: Stdout, Payload: []byte("hi")}).MarshalBinary()
	stream := append([]byte("garbage UMLA\x00\x01 and UMLAO\xff\xff\xff\xff more"), a...)
	stream = append(stream, b[:5]...) // a cut frame: magic and type only
	stream = append(stream, b...)
	r := NewReader(bytes.NewReader(stream))
	f, err := r.Next()
	if err != nil || f.Type != ResetAck || string(f.Payload) != "nonce123" {
		t.Fatalf("first frame: %c %q %v", f.Type, f.Payload, err)
	}
	f, err = r.Next()
	if err != nil || f.Type != Stdout || string(f.Payload) != "hi" {
		t.Fatalf("second frame: %c %q %v", f.Type, f.Payload, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	if r.Skipped == 0 {
		t.Error("skipped nothing")
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := &Config{Version: ConfigVersion, Machine: "r1", Root: "/dev/ubda", Channels: DefaultChannels,
		Exec: []string{"echo a, b: c"}, Sysctl: []string{"net.ipv4.ip_forward=1"}}
	b, err := MarshalConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4096 != 0 {
		t.Errorf("config disk of %d bytes: not whole sectors", len(b))
	}
	got, err := UnmarshalConfig(b)
	if err != nil || got.Machine != "r1" || got.Exec[0] != "echo a, b: c" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 4096), []byte(`{"version":99,"machine":"x"}`), []byte(`{"version":1}`), []byte("{")} {
		if _, err := UnmarshalConfig(bad); err == nil {
			t.Errorf("UnmarshalConfig(%q) accepted", bad)
		}
	}
}

// A fake agent on a FIFO pair: the client resets, asks the status, runs a
// command and gets its output and status.
func TestClientOverFIFOs(t *testing.T) {
	dir := t.TempDir()
	to, from := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, p := range []string{to, from} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel's side holds both FIFOs open read-write.
	gin, _ := os.OpenFile(to, os.O_RDWR, 0)
	gout, _ := os.OpenFile(from, os.O_RDWR, 0)
	defer gin.Close()
	defer gout.Close()
	go fakeAgent(gin, gout)

	ctx := context.Background()
	c, err := OpenFIFOs(ctx, to, from, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx, time.Second)
	if err != nil || st.Startup != StartupDone {
		t.Fatalf("status %+v %v", st, err)
	}
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, ExecRequest{Argv: []string{"echo"}}, bytes.NewReader([]byte("hello")), &out, &errb)
	if err != nil || code != 4 || out.String() != "hello" || errb.String() != "e" {
		t.Errorf("run: %d %v %q %q", code, err, out.String(), errb.String())
	}
}

// A second client after one that went away mid-session still gets its
// reset answered: the stale bytes in the FIFO are skipped.
func TestClientAfterStaleSession(t *testing.T) {
	dir := t.TempDir()
	to, from := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	unix.Mkfifo(to, 0o600)
	unix.Mkfifo(from, 0o600)
	gin, _ := os.OpenFile(to, os.O_RDWR, 0)
	gout, _ := os.OpenFile(from, os.O_RDWR, 0)
	defer gin.Close()
	defer gout.Close()
	// Stale output of an earlier session, then the agent.
	stale, _ := (&Frame{Type: Stdout, Payload: []byte("old")}).MarshalBinary()
	gout.Write(append([]byte("noise"), stale...))
	go fakeAgent(gin, gout)
	c, err := OpenFIFOs(context.Background(), to, from, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestClientTimeout(t *testing.T) {
	dir := t.TempDir()
	to, from := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	unix.Mkfifo(to, 0o600)
	unix.Mkfifo(from, 0o600)
	hold, _ := os.OpenFile(from, os.O_RDWR, 0)
	defer hold.Close()
	t0 := time.Now()
	_, err := OpenFIFOs(context.Background(), to, from, 300*time.Millisecond)
	if !errors.Is(err, ErrTimeout) || time.Since(t0) > 2*time.Second {
		t.Errorf("got %v after %s", err, time.Since(t0))
	}
}

// fakeAgent answers like the guest's agent: reset, status, and an exec
// that echoes its standard input and exits 4.
func fakeAgent(in io.Reader, out io.Writer) {
	r := NewReader(in)
	send := func(t Type, p []byte) {
		b, _ := (&Frame{Type: t, Payload: p}).MarshalBinary()
		out.Write(b)
	}
	var stdin []byte
	for {
		f, err := r.Next()
		if err != nil {
			return
		}
		switch f.Type {
		case Reset:
			send(ResetAck, f.Payload)
		case Status:
			send(StatusIs, []byte(`{"machine":"m","startup":"done"}`))
		case Stdin:
			stdin = append(stdin, f.Payload...)
		case StdinEOF:
			send(Stdout, stdin)
			send(Stderr, []byte("e"))
			send(Exit, []byte(`{"code":4}`))
		}
	}
}
