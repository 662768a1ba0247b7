// Package mconsoletest provides a fake guest console for tests of programs
// that use package mconsole: it binds a datagram socket and answers
// requests the way a UML kernel does (one or more reply packets).
// Tests of real behaviour still belong against a real kernel; this fake is
// for cases a kernel cannot easily produce (malformed or split replies).
package mconsoletest

import (
	"encoding/binary"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/umlutils/umlutils/mconsole"
)

// Answer is the fake's reply to one command.
type Answer struct {
	Parts []mconsole.ReplyPart // sent in order; More is set for all but the last
	Raw   [][]byte             // sent as they are instead of Parts, if set
	Drop  bool                 // send nothing (a frozen guest)
}

// Guest is a fake guest console.
type Guest struct {
	Socket string
	// Handle answers a command; nil answers "ERR Unknown command" (err 1).
	Handle func(command string) Answer

	mu       sync.Mutex
	commands []string
	conn     *net.UnixConn
}

// Start binds a fake console at dir/mconsole and serves until the test
// ends.
func Start(t testing.TB, dir string, handle func(string) Answer) *Guest {
	t.Helper()
	g := &Guest{Socket: filepath.Join(dir, "mconsole"), Handle: handle}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: g.Socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	g.conn = conn
	done := make(chan struct{})
	go g.serve(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return g
}

// Commands returns the commands received so far.
func (g *Guest) Commands() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.commands...)
}

func (g *Guest) serve(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1024)
	for {
		n, from, err := g.conn.ReadFromUnix(buf)
		if err != nil {
			return
		}
		if n < 12 || binary.NativeEndian.Uint32(buf) != mconsole.Magic {
			continue
		}
		l := binary.NativeEndian.Uint32(buf[8:])
		if int(l) > n-12 {
			continue
		}
		cmd := string(buf[12 : 12+l])
		g.mu.Lock()
		g.commands = append(g.commands, cmd)
		g.mu.Unlock()
		a := Answer{Parts: []mconsole.ReplyPart{{Err: 1, Data: "Unknown command"}}}
		if g.Handle != nil {
			a = g.Handle(cmd)
		}
		if a.Drop || from == nil {
			continue
		}
		for _, raw := range a.Raw {
			_, _ = g.conn.WriteToUnix(raw, from)
		}
		for i, p := range a.Parts {
			p.More = i < len(a.Parts)-1
			b, err := p.MarshalBinary()
			if err != nil {
				continue
			}
			_, _ = g.conn.WriteToUnix(b, from)
		}
	}
}

// Text answers with one successful part.
func Text(s string) Answer { return Answer{Parts: []mconsole.ReplyPart{{Data: s}}} }

// Fail answers with one part carrying err.
func Fail(err uint32, s string) Answer {
	return Answer{Parts: []mconsole.ReplyPart{{Err: err, Data: s}}}
}

// Split answers with s cut into parts of at most n bytes, as the kernel
// splits long answers.
func Split(s string, n int) Answer {
	var a Answer
	for len(s) > n {
		a.Parts = append(a.Parts, mconsole.ReplyPart{Data: s[:n]})
		s = s[n:]
	}
	a.Parts = append(a.Parts, mconsole.ReplyPart{Data: s})
	return a
}

// Kernelish answers a few commands like a UML 6.1 kernel.
func Kernelish(cmd string) Answer {
	switch {
	case cmd == "version":
		return Text("Linux (none) 6.1.0 #1 x86_64")
	case strings.HasPrefix(cmd, "log "):
		return Text("")
	case cmd == "stop" || cmd == "go":
		return Text("")
	}
	return Fail(1, "Unknown command")
}
