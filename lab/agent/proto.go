// Package agent is the protocol between umlab on the host and the small
// agent inside every lab guest, spoken over a UML serial line (a guest's
// /dev/ttySN, which the host sees as a pseudo-terminal: `sslN=pts`).
//
// A serial line needs no guest network, so `umlab exec` works on a guest
// whose interfaces are down or misconfigured, and mconsole (which has no
// exec command) is not involved. The line is a byte stream that may hold
// stale bytes from an earlier, interrupted session, so every message is a
// frame that starts with a magic word; the reader slides over anything
// else. A session begins with a reset carrying a random nonce: the agent
// abandons whatever ran on the line before and echoes the nonce, and the
// client ignores everything until that echo.
//
// The package imports no networking code, so the guest program that uses
// it links statically (it runs as PID 1 before the guest's libc is mounted).
// The wire format is in docs/lab.md.
package agent

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic starts every frame.
var Magic = [4]byte{'U', 'M', 'L', 'A'}

// HeaderSize is the size of a frame header: magic, type, payload length
// (big-endian uint32).
const HeaderSize = 9

// MaxPayload bounds a frame's payload; a longer length field marks a
// false start (stale bytes that happen to contain the magic).
const MaxPayload = 64 << 10

// Type is a frame type. Upper case is sent by the host, lower case by the
// guest.
type Type byte

// Frame types.
const (
	Reset    Type = 'R' // host: abandon the line's session; payload: nonce
	ResetAck Type = 'r' // guest: payload: the reset's nonce
	Status   Type = 'S' // host: ask for the guest's state
	StatusIs Type = 's' // guest: payload: StatusReply as JSON
	Exec     Type = 'E' // host: payload: ExecRequest as JSON
	Stdin    Type = 'I' // host: standard input bytes
	StdinEOF Type = 'i' // host: standard input ended
	Winsize  Type = 'W' // host: terminal size, rows and columns (2 × uint16)
	Signal   Type = 'K' // host: send a signal (1 byte) to the command
	Stdout   Type = 'O' // guest: standard output bytes
	Stderr   Type = 'e' // guest: standard error bytes
	Exit     Type = 'X' // guest: payload: ExitStatus as JSON; the session is over
)

func (t Type) known() bool {
	switch t {
	case Reset, ResetAck, Status, StatusIs, Exec, Stdin, StdinEOF, Winsize, Signal, Stdout, Stderr, Exit:
		return true
	}
	return false
}

// Frame is one message.
type Frame struct {
	Type    Type
	Payload []byte
}

// MarshalBinary returns the frame as sent on the line.
func (f *Frame) MarshalBinary() ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return nil, fmt.Errorf("agent: %c frame payload of %d bytes exceeds %d", f.Type, len(f.Payload), MaxPayload)
	}
	if !f.Type.known() {
		return nil, fmt.Errorf("agent: unknown frame type %q", byte(f.Type))
	}
	b := make([]byte, HeaderSize+len(f.Payload))
	copy(b, Magic[:])
	b[4] = byte(f.Type)
	binary.BigEndian.PutUint32(b[5:], uint32(len(f.Payload)))
	copy(b[HeaderSize:], f.Payload)
	return b, nil
}

// ErrShort is returned by UnmarshalBinary for a buffer shorter than its
// header says.
var ErrShort = errors.New("agent: short frame")

// ErrNotFrame is returned by UnmarshalBinary for bytes that do not start a
// frame (wrong magic, unknown type or oversized length).
var ErrNotFrame = errors.New("agent: not a frame")

// UnmarshalBinary decodes exactly one frame.
func (f *Frame) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderSize {
		return ErrShort
	}
	n, err := parseHeader(b)
	if err != nil {
		return err
	}
	if len(b) != HeaderSize+n {
		return ErrShort
	}
	f.Type = Type(b[4])
	f.Payload = append([]byte(nil), b[HeaderSize:]...)
	return nil
}

func parseHeader(h []byte) (int, error) {
	if [4]byte(h[:4]) != Magic || !Type(h[4]).known() {
		return 0, ErrNotFrame
	}
	n := binary.BigEndian.Uint32(h[5:9])
	if n > MaxPayload {
		return 0, ErrNotFrame
	}
	return int(n), nil
}

// Reader reads frames from a byte stream, skipping bytes that do not start
// a frame (Skipped counts them).
type Reader struct {
	br      *bufio.Reader
	Skipped int64
}

// NewReader returns a frame reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 2*MaxPayload)}
}

// Next returns the next frame. Its payload is valid until the next call.
func (r *Reader) Next() (Frame, error) {
	for {
		h, err := r.br.Peek(HeaderSize)
		if err != nil {
			if err == io.EOF && len(h) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		n, herr := parseHeader(h)
		if herr != nil {
			r.br.Discard(1)
			r.Skipped++
			continue
		}
		typ := Type(h[4])
		r.br.Discard(HeaderSize)
		p := make([]byte, n)
		if _, err := io.ReadFull(r.br, p); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		return Frame{Type: typ, Payload: p}, nil
	}
}

// ExecRequest asks the agent to run a command.
type ExecRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"` // added to the agent's own environment
	Dir  string   `json:"dir,omitempty"`
	TTY  bool     `json:"tty,omitempty"` // run on a pseudo-terminal (interactive)
	Rows uint16   `json:"rows,omitempty"`
	Cols uint16   `json:"cols,omitempty"`
}

// ExitStatus ends a session.
type ExitStatus struct {
	Code  int    `json:"code"`            // the exit status; 128+N for death by signal N
	Error string `json:"error,omitempty"` // the command could not be started
}

// Startup states in StatusReply.
const (
	StartupPending = "pending" // the startup unit has not begun
	StartupRunning = "running"
	StartupDone    = "done"
	StartupFailed  = "failed" // a startup file exited non-zero or timed out
)

// StatusReply is the guest's state.
type StatusReply struct {
	Machine string `json:"machine"`
	Startup string `json:"startup"`
	// Code is the exit status of the failing startup step (StartupFailed).
	Code int `json:"code,omitempty"`
	// Step names the step that failed or is running ("shared.startup").
	Step string `json:"step,omitempty"`
	// Seconds since the startup began, and its length once done.
	Elapsed float64 `json:"elapsed,omitempty"`
}
