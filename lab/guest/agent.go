package guest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/umlutils/umlutils/lab/agent"
	"github.com/umlutils/umlutils/ptybridge"
)

// maxQueued bounds the standard input queued for a command that does not
// read it, so a client cannot fill the guest's memory.
const maxQueued = 16 << 20

// Agent serves the host on the config's serial lines until every line
// has failed for good (it does not return in normal operation).
func Agent() error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, n := range cfg.Channels {
		wg.Add(1)
		go func(path string) {
			defer wg.Done()
			serveLine(cfg, path)
		}(fmt.Sprintf("/dev/ttyS%d", n))
	}
	wg.Wait()
	return fmt.Errorf("no serial line left to serve")
}

// serveLine serves one line for good. The line is opened once and never
// closed (the host side is a FIFO pair the kernel holds, so it never hangs
// up; should it end anyway, reading is simply tried again).
func serveLine(cfg *agent.Config, path string) {
	var f *os.File
	for {
		var err error
		if f, err = os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err := ptybridge.MakeRaw(f); err != nil {
		fmt.Fprintf(os.Stderr, "umlab agent: %s: raw mode: %v\n", path, err)
	}
	l := &line{cfg: cfg, f: f}
	r := agent.NewReader(f)
	for {
		l.serve(r)
		time.Sleep(50 * time.Millisecond)
	}
}

// line is one serial line and the session on it.
type line struct {
	cfg  *agent.Config
	f    *os.File
	wmu  sync.Mutex
	mu   sync.Mutex
	sess *session
}

// writeTimeout bounds one frame's write: a host client that stopped
// reading must not hold the line's writers for ever.
const writeTimeout = 10 * time.Second

func (l *line) send(t agent.Type, p []byte) error {
	for len(p) > 0 || t != 0 {
		chunk := p
		if len(chunk) > 16<<10 {
			chunk = chunk[:16<<10]
		}
		b, err := (&agent.Frame{Type: t, Payload: chunk}).MarshalBinary()
		if err != nil {
			return err
		}
		l.wmu.Lock()
		l.f.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err = l.f.Write(b)
		l.wmu.Unlock()
		if err != nil {
			return err
		}
		p = p[len(chunk):]
		if len(p) == 0 {
			break
		}
	}
	return nil
}

func (l *line) sendJSON(t agent.Type, v any) {
	b, _ := json.Marshal(v)
	l.send(t, b)
}

// serve handles frames until the line reads end-of-file or fails.
func (l *line) serve(r *agent.Reader) {
	for {
		fr, err := r.Next()
		if err != nil {
			return
		}
		switch fr.Type {
		case agent.Reset:
			l.abort()
			l.send(agent.ResetAck, fr.Payload)
		case agent.Status:
			l.sendJSON(agent.StatusIs, ReadStatus(l.cfg.Machine))
		case agent.Exec:
			var req agent.ExecRequest
			if err := json.Unmarshal(fr.Payload, &req); err != nil {
				l.sendJSON(agent.Exit, agent.ExitStatus{Code: 127, Error: "bad exec request: " + err.Error()})
				continue
			}
			l.start(&req)
		case agent.Stdin, agent.StdinEOF, agent.Winsize, agent.Signal:
			l.mu.Lock()
			s := l.sess
			l.mu.Unlock()
			if s != nil {
				s.input(fr)
			}
		}
	}
}

// abort ends the line's session: its command's process group is killed.
func (l *line) abort() {
	l.mu.Lock()
	s := l.sess
	l.sess = nil
	l.mu.Unlock()
	if s != nil {
		s.kill()
	}
}

// session is one command run for the host.
type session struct {
	l     *line
	cmd   *exec.Cmd
	tty   *os.File // the pty master, in TTY mode
	stdin io.WriteCloser

	qmu    sync.Mutex
	qcond  *sync.Cond
	queue  [][]byte
	queued int
	eof    bool
	over   bool // the session ended: output is discarded
}

func (l *line) start(req *agent.ExecRequest) {
	l.abort()
	if len(req.Argv) == 0 {
		l.sendJSON(agent.Exit, agent.ExitStatus{Code: 127, Error: "no command"})
		return
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append(env(l.cfg), req.Env...)
	cmd.Dir = req.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/root"
		if _, err := os.Stat(cmd.Dir); err != nil {
			cmd.Dir = "/"
		}
	}
	s := &session{l: l, cmd: cmd}
	s.qcond = sync.NewCond(&s.qmu)
	var outputs []io.Reader
	if req.TTY {
		cmd.Env = append(cmd.Env, "TERM="+termOf(req.Env))
		ws := &pty.Winsize{Rows: req.Rows, Cols: req.Cols}
		if ws.Rows == 0 || ws.Cols == 0 {
			ws = &pty.Winsize{Rows: 24, Cols: 80}
		}
		m, err := pty.StartWithSize(cmd, ws)
		if err != nil {
			l.sendJSON(agent.Exit, agent.ExitStatus{Code: 127, Error: err.Error()})
			return
		}
		s.tty, s.stdin = m, m
		outputs = []io.Reader{m}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		inR, inW, err := os.Pipe()
		if err != nil {
			l.sendJSON(agent.Exit, agent.ExitStatus{Code: 127, Error: err.Error()})
			return
		}
		outR, outW, _ := os.Pipe()
		errR, errW, _ := os.Pipe()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		err = cmd.Start()
		inR.Close()
		outW.Close()
		errW.Close()
		if err != nil {
			inW.Close()
			outR.Close()
			errR.Close()
			l.sendJSON(agent.Exit, agent.ExitStatus{Code: 127, Error: err.Error()})
			return
		}
		s.stdin = inW
		outputs = []io.Reader{outR, errR}
	}
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()
	go s.feed()
	var drained sync.WaitGroup
	for i, r := range outputs {
		t := agent.Stdout
		if i == 1 {
			t = agent.Stderr
		}
		drained.Add(1)
		go s.pump(r, t, &drained)
	}
	go s.wait(&drained)
}

func termOf(env []string) string {
	for _, e := range env {
		if len(e) > 5 && e[:5] == "TERM=" {
			return e[5:]
		}
	}
	return "xterm"
}

// pump copies one output of the command to the host. After the session
// ends it keeps reading and discards, so a daemon the command left behind
// holding the pipe never blocks or dies of SIGPIPE.
func (s *session) pump(r io.Reader, t agent.Type, drained *sync.WaitGroup) {
	buf := make([]byte, 16<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.qmu.Lock()
			over := s.over
			s.qmu.Unlock()
			if !over && s.l.send(t, buf[:n]) != nil {
				// The client is gone: the rest is discarded.
				s.qmu.Lock()
				s.over = true
				s.qmu.Unlock()
			}
		}
		if err != nil {
			break
		}
	}
	drained.Done()
	if f, ok := r.(*os.File); ok && f != s.tty {
		f.Close()
	}
}

func (s *session) wait(drained *sync.WaitGroup) {
	err := s.cmd.Wait()
	// Output written just before the exit is still in the pipes; a
	// background process may hold them open forever, so wait a moment only.
	done := make(chan struct{})
	go func() { drained.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
	code := 0
	if s.cmd.ProcessState != nil {
		code = exitCode(s.cmd.ProcessState)
	} else if err != nil {
		code = -1
	}
	s.qmu.Lock()
	s.over = true
	s.qcond.Broadcast()
	s.qmu.Unlock()
	s.l.mu.Lock()
	mine := s.l.sess == s
	if mine {
		s.l.sess = nil
	}
	s.l.mu.Unlock()
	if s.tty != nil {
		s.tty.Close()
	}
	if mine {
		s.l.sendJSON(agent.Exit, agent.ExitStatus{Code: code})
	}
}

// input handles a frame for the command: queued standard input is written
// by feed, so the line's reader never blocks on a command that does not
// read (and a reset is always heard).
func (s *session) input(fr agent.Frame) {
	switch fr.Type {
	case agent.Stdin:
		s.qmu.Lock()
		if s.queued+len(fr.Payload) <= maxQueued {
			s.queue = append(s.queue, fr.Payload)
			s.queued += len(fr.Payload)
			s.qcond.Signal()
		}
		s.qmu.Unlock()
	case agent.StdinEOF:
		s.qmu.Lock()
		s.eof = true
		s.qcond.Signal()
		s.qmu.Unlock()
	case agent.Winsize:
		if s.tty != nil && len(fr.Payload) == 4 {
			pty.Setsize(s.tty, &pty.Winsize{
				Rows: binary.BigEndian.Uint16(fr.Payload),
				Cols: binary.BigEndian.Uint16(fr.Payload[2:]),
			})
		}
	case agent.Signal:
		if len(fr.Payload) == 1 && s.cmd.Process != nil {
			syscall.Kill(-s.cmd.Process.Pid, syscall.Signal(fr.Payload[0]))
		}
	}
}

func (s *session) feed() {
	for {
		s.qmu.Lock()
		for len(s.queue) == 0 && !s.eof && !s.over {
			s.qcond.Wait()
		}
		if s.over || (len(s.queue) == 0 && s.eof) {
			s.qmu.Unlock()
			if s.tty == nil {
				s.stdin.Close()
			}
			return
		}
		b := s.queue[0]
		s.queue = s.queue[1:]
		s.queued -= len(b)
		s.qmu.Unlock()
		if _, err := s.stdin.Write(b); err != nil {
			s.qmu.Lock()
			s.queue, s.queued = nil, 0
			s.qmu.Unlock()
		}
	}
}

// kill ends the session for a new one: the command's process group dies
// and its output is no longer sent.
func (s *session) kill() {
	s.qmu.Lock()
	s.over = true
	s.qcond.Broadcast()
	s.qmu.Unlock()
	if s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}
