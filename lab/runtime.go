package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RuntimeBase is the directory holding every running lab's runtime
// directory for this user: $XDG_RUNTIME_DIR/umlab when that is set, else
// /tmp/umlab-UID. Paths under it must stay short: guests get socket paths
// on their command line and a Unix socket path has at most 107 bytes.
func RuntimeBase() string {
	if d := os.Getenv("UMLAB_RUNTIME"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return filepath.Join(d, "umlab")
		}
	}
	return filepath.Join(os.TempDir(), "umlab-"+strconv.Itoa(os.Getuid()))
}

// LabID is a short name for the lab directory dir (absolute): the first
// 8 hex digits of its path's SHA-256. It names the lab's runtime directory
// and prefixes its guests' umids, so two labs with the same machine names
// never clash.
func LabID(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(h[:4])
}

// ensurePrivateDir makes dir (mode 0700) if needed and checks that it is a
// real directory of ours, not a link or another user's directory planted
// in a shared /tmp.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	sys, _ := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || sys == nil || int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("%s: not a directory owned by this user; remove it or set UMLAB_RUNTIME", dir)
	}
	return nil
}

// State is a lab's runtime state, kept in its runtime directory as
// state.json so that every umlab process sees the same lab.
type State struct {
	Lab      string                   `json:"lab"` // the lab directory
	Machines map[string]*MachineState `json:"machines"`
	Domains  map[string]*DomainState  `json:"domains"`
	Cables   map[string]*CableState   `json:"cables,omitempty"`
	// Faults are the link faults in force, by MACHINE.ethN: the switch
	// commands that made them, applied again when the machine restarts.
	Faults map[string][]string `json:"faults,omitempty"`
}

// CableState is one serial cable (a ptybridge between two guests).
type CableState struct {
	Name string `json:"name"`
	A    string `json:"a"` // pty of the first end
	B    string `json:"b"`
	Log  string `json:"log"` // the cable's traffic
	Cut  bool   `json:"cut,omitempty"`
	Proc Proc   `json:"proc"`
}

// MachineState is one started guest.
type MachineState struct {
	Name       string       `json:"name"`
	UMID       string       `json:"umid"`
	Kernel     string       `json:"kernel"`
	Version    string       `json:"kernel_version"`
	Mem        int          `json:"mem_mb"`
	Disk       string       `json:"disk"`
	Image      string       `json:"image"`
	Log        string       `json:"log"`
	Proc       Proc         `json:"proc"`
	Started    time.Time    `json:"started"`
	Paused     bool         `json:"paused,omitempty"` // mconsole stop (umlab fault stop)
	Interfaces []IfaceState `json:"interfaces"`
}

// IfaceState is one guest interface and where it is attached.
type IfaceState struct {
	Name   string `json:"name"` // in the guest: eth0, …
	Domain string `json:"domain"`
	MAC    string `json:"mac"`
}

// DomainState is one collision domain's switch.
type DomainState struct {
	Name string `json:"name"`
	Ctl  string `json:"ctl"`  // daemon-protocol control socket
	Bess string `json:"bess"` // vector (bess) socket
	Mgmt string `json:"mgmt"` // management socket
	Log  string `json:"log"`
	Hub  bool   `json:"hub"`
	Proc Proc   `json:"proc"`
}

// Runtime is a lab's runtime directory.
type Runtime struct {
	Dir  string // base/ID
	Lab  string // the lab directory
	lock *os.File
}

// RuntimeFor returns the runtime directory of the lab at dir (absolute),
// without creating it.
func RuntimeFor(dir string) *Runtime {
	return &Runtime{Dir: filepath.Join(RuntimeBase(), LabID(dir)), Lab: dir}
}

// Create makes the runtime directory and its link to the lab directory.
// Guests reach the lab through that link (RT/lab): their command line
// splits on commas and colons, which a user's lab path may contain.
func (rt *Runtime) Create() error {
	if err := ensurePrivateDir(filepath.Dir(rt.Dir)); err != nil {
		return err
	}
	if err := ensurePrivateDir(rt.Dir); err != nil {
		return err
	}
	link := rt.Path("lab")
	if cur, err := os.Readlink(link); err != nil || cur != rt.Lab {
		os.Remove(link)
		if err := os.Symlink(rt.Lab, link); err != nil {
			return err
		}
	}
	return nil
}

// Path returns a path inside the runtime directory.
func (rt *Runtime) Path(elem ...string) string {
	return filepath.Join(append([]string{rt.Dir}, elem...)...)
}

// Lock takes the lab's lock (exclusive), waiting for another umlab
// process that holds it.
func (rt *Runtime) Lock() error {
	f, err := os.OpenFile(rt.Path("lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return err
	}
	rt.lock = f
	return nil
}

// LockedState takes the lock and reads the state; the caller unlocks.
func (rt *Runtime) LockedState() (*State, error) {
	if err := rt.Lock(); err != nil {
		return nil, err
	}
	s, err := rt.Load()
	if err != nil {
		rt.Unlock()
		return nil, err
	}
	return s, nil
}

// Unlock releases the lock.
func (rt *Runtime) Unlock() {
	if rt.lock != nil {
		rt.lock.Close()
		rt.lock = nil
	}
}

// Load reads the lab's state; a lab never started has an empty one.
func (rt *Runtime) Load() (*State, error) {
	s := &State{Lab: rt.Lab}
	b, err := os.ReadFile(rt.Path("state.json"))
	if errors.Is(err, os.ErrNotExist) {
		s.init()
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s: %w", rt.Path("state.json"), err)
	}
	s.init()
	return s, nil
}

func (s *State) init() {
	if s.Machines == nil {
		s.Machines = map[string]*MachineState{}
	}
	if s.Domains == nil {
		s.Domains = map[string]*DomainState{}
	}
	if s.Cables == nil {
		s.Cables = map[string]*CableState{}
	}
	if s.Faults == nil {
		s.Faults = map[string][]string{}
	}
}

// Save writes the state atomically.
func (rt *Runtime) Save(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := rt.Path("state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, rt.Path("state.json"))
}

// Running returns the names of the machines whose kernel still runs,
// sorted.
func (s *State) Running() []string {
	var out []string
	for name, m := range s.Machines {
		if m.Proc.Alive() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// LabInfo is a lab found by Labs.
type LabInfo struct {
	ID       string   `json:"id"`
	Dir      string   `json:"dir"`
	Runtime  string   `json:"runtime"`
	Running  []string `json:"running"`
	Switches int      `json:"switches"`
}

// Labs lists this user's labs that have a runtime directory: running, or
// left behind by a crash (nothing running) for `umlab clean`.
func Labs() ([]LabInfo, error) {
	base := RuntimeBase()
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []LabInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rt := &Runtime{Dir: filepath.Join(base, e.Name())}
		b, err := os.ReadFile(rt.Path("state.json"))
		if err != nil {
			continue
		}
		var s State
		if json.Unmarshal(b, &s) != nil {
			continue
		}
		li := LabInfo{ID: e.Name(), Dir: s.Lab, Runtime: rt.Dir, Running: s.Running()}
		for _, d := range s.Domains {
			if d.Proc.Alive() {
				li.Switches++
			}
		}
		out = append(out, li)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}
