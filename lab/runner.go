package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/umlutils/umlutils/mconsole"
)

// Runner runs one lab: it starts, stops and observes the lab's guests and
// switches. Its state lives in the lab's runtime directory, so several
// umlab processes (two terminals) see and drive the same lab.
type Runner struct {
	Lab    *Lab
	Images *Images
	// Out receives progress (nil: none); Terminal says it is a terminal,
	// where progress is drawn live. Warn receives warnings.
	Out      io.Writer
	Terminal bool
	Warn     io.Writer

	rt *Runtime
}

// Open loads the lab at dir and finds its runtime directory.
func Open(dir string) (*Runner, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l, err := Load(abs)
	if err != nil {
		return nil, err
	}
	imgs := &Images{Dir: DefaultImageDir(), Default: os.Getenv("UMLAB_IMAGE")}
	return &Runner{Lab: l, Images: imgs, rt: RuntimeFor(l.Dir)}, nil
}

// Runtime returns the lab's runtime directory.
func (r *Runner) Runtime() *Runtime { return r.rt }

// State returns the lab's current state (read without the lock: the state
// file is replaced atomically).
func (r *Runner) State() (*State, error) { return r.rt.Load() }

func (r *Runner) warnf(format string, a ...any) {
	if r.Warn != nil {
		fmt.Fprintf(r.Warn, "umlab: "+format+"\n", a...)
	}
}

// UMID is the umid of a machine of the lab: the lab's id and the machine's
// name (UML allows 64 bytes).
func (r *Runner) UMID(machine string) string {
	id := LabID(r.Lab.Dir)
	if len(machine) > 50 {
		h := sha256.Sum256([]byte(machine))
		machine = machine[:40] + "-" + hex.EncodeToString(h[:4])
	}
	return id + "-" + machine
}

// diskPath is a machine's COW file: MACHINE.disk in the lab directory, as
// Netkit keeps it.
func (r *Runner) diskPath(machine string) string {
	return filepath.Join(r.Lab.Dir, machine+".disk")
}

// mconsoleSocket is where a machine's kernel listens for mconsole
// commands: guests run with uml_dir in the runtime directory.
func (r *Runner) mconsoleSocket(ms *MachineState) string {
	return r.rt.Path("uml", ms.UMID, "mconsole")
}

// Console returns an mconsole client for a running machine.
func (r *Runner) Console(machine string) (*mconsole.Client, *MachineState, error) {
	s, err := r.rt.Load()
	if err != nil {
		return nil, nil, err
	}
	ms := s.Machines[machine]
	if ms == nil || !ms.Proc.Alive() {
		return nil, nil, &NotRunningError{Machine: machine}
	}
	return &mconsole.Client{Socket: r.mconsoleSocket(ms), Timeout: 5 * time.Second}, ms, nil
}

// NotRunningError is returned for a machine that is not running.
type NotRunningError struct{ Machine string }

func (e *NotRunningError) Error() string { return fmt.Sprintf("machine %s is not running", e.Machine) }

// MachineError is a machine that failed to start, with the end of its
// logs.
type MachineError struct {
	Machine string
	Err     error
	Tail    string // the end of its console or startup log
}

func (e *MachineError) Error() string { return fmt.Sprintf("%s: %v", e.Machine, e.Err) }
func (e *MachineError) Unwrap() error { return e.Err }

// tail returns the last n lines of a file, with terminal escape sequences
// (a systemd console's colours) removed.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 256<<10 {
		b = b[len(b)-256<<10:]
	}
	lines := strings.Split(strings.TrimRight(stripEscapes(string(b)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func stripEscapes(s string) string {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		if c == '\r' || (c < 0x20 && c != '\n' && c != '\t') {
			continue
		}
		out.WriteByte(c)
	}
	return out.String()
}

// liveMachine returns the state of a running machine or an error.
func liveMachine(s *State, name string) (*MachineState, error) {
	ms := s.Machines[name]
	if ms == nil || !ms.Proc.Alive() {
		return nil, &NotRunningError{Machine: name}
	}
	return ms, nil
}

func ctxSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
