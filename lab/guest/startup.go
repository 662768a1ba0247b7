package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/lab/agent"
	"golang.org/x/sys/unix"
)

const (
	statusFile  = StateDir + "/startup.json"
	StartupLog  = LogDir + "/startup.log"
	ShutdownLog = LogDir + "/shutdown.log"
)

// Sysctls every guest gets before its startup files, as Kathará sets them
// for its containers (and its labs rely on): routers forward, and strict
// reverse-path filtering does not drop asymmetric routes. A lab's own
// [sysctl] options come after and win.
var defaultSysctls = []string{
	"net.ipv4.ip_forward=1",
	"net.ipv4.conf.all.rp_filter=0",
	"net.ipv4.conf.default.rp_filter=0",
}

// status is the startup's progress, kept in statusFile for the agent.
type status struct {
	State    string    `json:"state"`
	Step     string    `json:"step,omitempty"`
	Code     int       `json:"code,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitempty"`
}

func writeStatus(s *status) {
	b, _ := json.Marshal(s)
	tmp := statusFile + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, statusFile)
	}
}

// ReadStatus returns the startup's state for the agent.
func ReadStatus(machine string) agent.StatusReply {
	r := agent.StatusReply{Machine: machine, Startup: agent.StartupPending}
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return r
	}
	var s status
	if json.Unmarshal(b, &s) != nil {
		return r
	}
	r.Startup, r.Step, r.Code = s.State, s.Step, s.Code
	end := s.Finished
	if end.IsZero() {
		end = time.Now()
	}
	r.Elapsed = end.Sub(s.Started).Seconds()
	return r
}

// env is the environment of startup files, shutdown files and exec'd
// commands: a root login's, plus the lab's [env] options.
func env(cfg *agent.Config) []string {
	e := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash",
		"HOSTNAME=" + cfg.Machine, "LANG=C.UTF-8",
	}
	return append(e, cfg.Env...)
}

// Startup brings the interfaces up, applies sysctls, runs shared.startup,
// MACHINE.startup and the [exec] commands, logging to StartupLog (and to
// stdout, the console, after each step). It records the outcome for the
// agent and returns nil even when a step failed: the host reads the
// outcome from the agent.
func Startup() error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	st := &status{State: agent.StartupRunning, Started: time.Now()}
	writeStatus(st)
	if err := os.MkdirAll(LogDir, 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(StartupLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "== umlab startup of %s at %s\n", cfg.Machine, st.Started.Format(time.RFC3339))

	// Under Docker a Kathará lab's interfaces are up before its startup
	// file runs, and its files only add addresses; a UML guest's start
	// down. Netkit files bring them up themselves, which stays harmless.
	for name, mtu := range cfg.MTU {
		if err := setMTU(name, mtu); err != nil {
			fmt.Fprintf(log, "umlab: %s mtu %d: %v\n", name, mtu, err)
		}
	}
	for _, name := range append([]string{"lo"}, cfg.Interfaces...) {
		if err := linkUp(name); err != nil {
			fmt.Fprintf(log, "umlab: %s up: %v\n", name, err)
		}
	}
	for _, kv := range append(append([]string(nil), defaultSysctls...), cfg.Sysctl...) {
		if err := setSysctl(kv); err != nil {
			fmt.Fprintf(log, "umlab: sysctl %s: %v\n", kv, err)
		}
	}
	timeout := time.Duration(cfg.StartupTimeout) * time.Second
	var steps []step
	for _, name := range []string{"shared.startup", cfg.Machine + ".startup"} {
		if _, err := os.Stat(filepath.Join(HostLab, name)); err == nil {
			steps = append(steps, step{name: name, argv: []string{shell(), filepath.Join(HostLab, name)}})
		}
	}
	for i, c := range cfg.Exec {
		steps = append(steps, step{name: fmt.Sprintf("exec[%d]", i), argv: []string{"/bin/sh", "-c", c}})
	}
	deadline := time.Time{}
	if timeout > 0 {
		deadline = st.Started.Add(timeout)
	}
	for _, s := range steps {
		st.Step = s.name
		writeStatus(st)
		code, err := s.run(cfg, log, deadline)
		if err != nil || code != 0 {
			st.State, st.Code = agent.StartupFailed, code
			if err != nil {
				fmt.Fprintf(log, "umlab: %s: %v\n", s.name, err)
			}
			fmt.Fprintf(log, "umlab: %s failed (status %d)\n", s.name, code)
			break
		}
	}
	if st.State == agent.StartupRunning {
		st.State, st.Step = agent.StartupDone, ""
	}
	st.Finished = time.Now()
	fmt.Fprintf(log, "== umlab startup %s after %.1fs\n", st.State, st.Finished.Sub(st.Started).Seconds())
	writeStatus(st)
	return nil
}

// Shutdown runs MACHINE.shutdown then shared.shutdown on a clean halt,
// each bounded in time.
func Shutdown() error {
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	os.MkdirAll(LogDir, 0o755)
	log, err := os.OpenFile(ShutdownLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	for _, name := range []string{cfg.Machine + ".shutdown", "shared.shutdown"} {
		if _, err := os.Stat(filepath.Join(HostLab, name)); err != nil {
			continue
		}
		s := step{name: name, argv: []string{shell(), filepath.Join(HostLab, name)}}
		if _, err := s.run(cfg, log, time.Now().Add(40*time.Second)); err != nil {
			fmt.Fprintf(log, "umlab: %s: %v\n", name, err)
		}
	}
	return nil
}

// shell runs lab files: bash where the image has it (labs are written for
// Debian images, whose files use bash syntax freely), else sh.
func shell() string {
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

type step struct {
	name string
	argv []string
}

// run runs the step with its output appended to log (a file, not a pipe:
// a daemon the step leaves in the background keeps writing there and is
// never cut off by a closed pipe, and the step's end does not wait for
// it). The step's new output is copied to stdout afterwards. A step still
// running at deadline is killed with its process group.
func (s step) run(cfg *agent.Config, log *os.File, deadline time.Time) (int, error) {
	start, _ := log.Seek(0, io.SeekEnd)
	fmt.Fprintf(log, "-- %s\n", s.name)
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env = env(cfg)
	cmd.Dir = "/"
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if !deadline.IsZero() {
		timer = time.After(time.Until(deadline))
	}
	var err error
	select {
	case err = <-done:
	case <-timer:
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = errors.New("timed out; killed")
	}
	echo(log.Name(), start)
	code := 0
	if cmd.ProcessState != nil {
		code = exitCode(cmd.ProcessState)
	}
	if err != nil && code == 0 {
		code = -1
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return code, err
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// echo copies what the log gained since offset to stdout.
func echo(path string, offset int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	f.Seek(offset, io.SeekStart)
	io.Copy(os.Stdout, io.LimitReader(f, 1<<20))
}

func setSysctl(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return errors.New("not key=value")
	}
	k = strings.TrimSpace(k)
	if strings.Contains(k, "..") {
		return errors.New("bad key")
	}
	path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
	return os.WriteFile(path, []byte(strings.TrimSpace(v)+"\n"), 0o644)
}

func setMTU(name string, mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
}

func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
