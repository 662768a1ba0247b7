package lab

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc names a host process across pid reuse: the pid and the start time
// the kernel gave it (field 22 of /proc/PID/stat).
type Proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// procStat returns fields of /proc/PID/stat after the command name:
// index 0 is the state (field 3).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, errors.New("malformed stat")
	}
	return strings.Fields(string(b[i+1:])), nil
}

// procOf returns the Proc of a live pid.
func procOf(pid int) (Proc, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 20 {
		return Proc{}, errors.New("no such process")
	}
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return Proc{PID: pid, Start: start}, nil
}

// State is the process's state letter (R, S, T for stopped, Z, …), or ""
// when p is gone (or the pid now names another process).
func (p Proc) State() string {
	if p.PID <= 0 {
		return ""
	}
	f, err := procStat(p.PID)
	if err != nil || len(f) < 20 {
		return ""
	}
	if start, _ := strconv.ParseUint(f[19], 10, 64); start != p.Start {
		return ""
	}
	return f[0]
}

// Alive reports whether p is still running (a zombie is not).
func (p Proc) Alive() bool {
	s := p.State()
	return s != "" && s != "Z" && s != "X"
}

// Members returns the live processes of p's session and of its process
// group, and their descendants: everything a guest kernel started (its
// guest processes, helpers that made their own group), each once. A guest
// must be killed as a whole: a kernel process killed alone leaves its
// traced guest processes running as host processes.
func (p Proc) Members() []int {
	if !p.Alive() {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	type st struct{ ppid, pgrp, sid int }
	all := map[int]st{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(pid)
		if err != nil || len(f) < 4 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		sid, _ := strconv.Atoi(f[3])
		all[pid] = st{ppid, pgrp, sid}
	}
	in := map[int]bool{p.PID: true}
	for pid, s := range all {
		if s.pgrp == p.PID || s.sid == p.PID {
			in[pid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, s := range all {
			if !in[pid] && in[s.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	out := make([]int, 0, len(in))
	for pid := range in {
		out = append(out, pid)
	}
	return out
}

// KillAll sends SIGKILL to p's process group and every member (see
// Members) at once, then waits up to timeout for p to be gone.
func (p Proc) KillAll(timeout time.Duration) error {
	if !p.Alive() {
		return nil
	}
	members := p.Members()
	syscall.Kill(-p.PID, syscall.SIGKILL)
	for _, pid := range members {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if !p.WaitGone(timeout) {
		return errors.New("still running after SIGKILL")
	}
	return nil
}

// Signal sends sig to p if it is still the same process.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return nil
	}
	return syscall.Kill(p.PID, sig)
}

// WaitGone waits up to timeout for p to exit (or become a zombie).
func (p Proc) WaitGone(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// rss sums the proportional set size of a process group's distinct
// address spaces, in bytes. A UML guest's processes share the kernel
// process's memory mappings; each distinct set of mappings is counted once
// (by the first process that has it), or the guest's memory would count
// several times.
func pss(pids []int) int64 {
	var total int64
	seen := map[string]bool{}
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		maps, err := os.ReadFile(dir + "/maps")
		if err != nil {
			continue
		}
		key := string(maps)
		if seen[key] {
			continue
		}
		seen[key] = true
		b, err := os.ReadFile(dir + "/smaps_rollup")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}
