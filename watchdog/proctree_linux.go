package watchdog

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// KillGuest ends a guest whose watchdog expired. Like the C helper it
// sends SIGINT to the kernel process twice, one interval apart, giving the
// kernel a chance to clean up; then, unlike it, it SIGKILLs the kernel
// process together with every process descended from it. The guest's
// programs run as host processes traced by the kernel: killing only the
// kernel process would leave them running (docs/testbed.md §6). The caller's own
// process (itself a child of the kernel) is spared, and so is everything
// outside the kernel's tree, such as the rest of its process group.
func KillGuest(pid int, interval time.Duration) error {
	// Snapshot the tree first: once the kernel exits, its children are
	// reparented and can no longer be told from other processes.
	tree := descendants(pid)
	for i := 0; i < 2; i++ {
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			if err == syscall.ESRCH {
				break
			}
			return fmt.Errorf("SIGINT to guest kernel %d: %w", pid, err)
		}
		time.Sleep(interval)
		tree = tree.union(descendants(pid))
	}
	return killTree(pid, tree)
}

// procID names a process across pid reuse: pid plus its start time
// (field 22 of /proc/PID/stat, in clock ticks since boot).
type procID struct {
	pid   int
	start uint64
}

type procSet map[procID]bool

func (s procSet) union(o procSet) procSet {
	for k := range o {
		s[k] = true
	}
	return s
}

// procStat reads a process's parent pid and start time.
func procStat(pid int) (ppid int, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields we want come after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, err
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	return ppid, start, err
}

// descendants returns every live process below root (not root itself, and
// never the calling process).
func descendants(root int) procSet {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return procSet{}
	}
	children := map[int][]procID{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, err := procStat(pid)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], procID{pid, start})
	}
	self := os.Getpid()
	out := procSet{}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if c.pid == self || out[c] {
				continue
			}
			out[c] = true
			queue = append(queue, c.pid)
		}
	}
	return out
}

// killTree SIGKILLs root and the processes in tree that are still the same
// processes (same start time). Root is stopped first so it cannot start
// new processes between the last look at its tree and the kill.
func killTree(root int, tree procSet) error {
	_, rootStart, rootErr := procStat(root)
	if rootErr == nil {
		_ = syscall.Kill(root, syscall.SIGSTOP)
		tree = tree.union(descendants(root))
	}
	for p := range tree {
		if _, start, err := procStat(p.pid); err == nil && start == p.start {
			_ = syscall.Kill(p.pid, syscall.SIGSTOP)
		}
	}
	if rootErr == nil {
		if _, start, err := procStat(root); err == nil && start == rootStart {
			if err := syscall.Kill(root, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
				return fmt.Errorf("SIGKILL to guest kernel %d: %w", root, err)
			}
		}
	}
	for p := range tree {
		if _, start, err := procStat(p.pid); err == nil && start == p.start {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return nil
}
