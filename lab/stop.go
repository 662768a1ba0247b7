package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/mconsole"
)

// StopOptions says what Halt and Crash do.
type StopOptions struct {
	Machines    []string      // nil: every running machine of the lab
	RemoveDisks bool          // delete the machines' COW files afterwards
	Timeout     time.Duration // Halt: how long a clean shutdown may take; 0: 60 s
}

// Halt shuts machines down cleanly: ctrl-alt-del through mconsole, which
// the guest turns into a power-off (its .shutdown files run). A guest
// still running after opts.Timeout is halted by its kernel, then killed.
// Disks are kept unless opts.RemoveDisks. Switches no running machine
// needs any more are stopped.
func (r *Runner) Halt(ctx context.Context, opts StopOptions) error {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	return r.stop(ctx, opts, func(ms *MachineState) error {
		mc := &mconsole.Client{Socket: r.mconsoleSocket(ms), Timeout: 5 * time.Second}
		defer mc.Close()
		if _, err := mc.Command(ctx, "cad"); err == nil && ms.Proc.WaitGone(opts.Timeout) {
			return nil
		}
		r.warnf("%s: no clean shutdown within %s; halting it", ms.Name, opts.Timeout)
		if _, err := mc.Command(ctx, "halt"); err == nil && ms.Proc.WaitGone(5*time.Second) {
			return nil
		}
		return ms.Proc.KillAll(5 * time.Second)
	})
}

// Crash stops machines at once: every process of each guest is killed
// together (never the kernel alone). Disks are removed unless
// !opts.RemoveDisks.
func (r *Runner) Crash(ctx context.Context, opts StopOptions) error {
	return r.stop(ctx, opts, func(ms *MachineState) error { return ms.Proc.KillAll(5 * time.Second) })
}

func (r *Runner) stop(ctx context.Context, opts StopOptions, how func(*MachineState) error) error {
	if !fileExists(r.rt.Dir) {
		return fmt.Errorf("lab %s is not running", r.Lab.Dir)
	}
	state, err := r.rt.LockedState()
	if err != nil {
		return err
	}
	defer r.rt.Unlock()
	names := opts.Machines
	if len(names) == 0 {
		for n := range state.Machines {
			names = append(names, n)
		}
		sort.Strings(names)
	} else if _, err := r.Lab.Select(names); err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, n := range names {
		ms := state.Machines[n]
		if ms == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if ms.Proc.Alive() {
				err = how(ms)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ms.Name, err))
				return
			}
			r.forget(state, ms, opts.RemoveDisks)
		}()
	}
	wg.Wait()
	r.stopIdleSwitches(state)
	if err := r.finish(state); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// forget removes what a stopped machine left in the runtime directory
// (and its disk when asked).
func (r *Runner) forget(state *State, ms *MachineState, removeDisk bool) {
	os.RemoveAll(r.rt.Path("uml", ms.UMID))
	os.Remove(r.rt.Path(ms.Name + ".cfg"))
	for _, p := range globs(r.rt.Path(ms.Name + ".tty*")) {
		os.Remove(p)
	}
	if removeDisk {
		removeDiskFile(ms.Disk)
	}
	delete(state.Machines, ms.Name)
}

// removeDiskFile deletes a machine's disk only if it is a COW file: a file
// of the user's that merely has the name is kept.
func removeDiskFile(path string) bool {
	if _, err := cow.ReadHeader(path); err != nil {
		return false
	}
	return os.Remove(path) == nil
}

func globs(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

// stopIdleSwitches stops the switches of domains no running machine uses.
func (r *Runner) stopIdleSwitches(state *State) {
	used := map[string]bool{}
	for _, ms := range state.Machines {
		if !ms.Proc.Alive() {
			continue
		}
		for _, ifc := range ms.Interfaces {
			used[ifc.Domain] = true
		}
	}
	for name, d := range state.Domains {
		if !used[name] {
			stopSwitch(d)
			os.Remove(d.Log)
			delete(state.Domains, name)
		}
	}
	// A cable stays while either end runs: a guest that reboots finds it.
	ends := map[string]bool{}
	for _, m := range r.Lab.Machines {
		if ms := state.Machines[m.Name]; ms != nil && ms.Proc.Alive() {
			for _, o := range m.Options {
				if _, ok := optionIndex(o.Name, "ssl"); ok {
					ends[o.Value] = true
				}
			}
		}
	}
	for name, c := range state.Cables {
		if !ends[name] {
			stopCable(c)
			delete(state.Cables, name)
		}
	}
}

// stopCable ends a cable's ptybridge (its log stays until clean).
func stopCable(c *CableState) {
	if c.Proc.Alive() {
		c.Proc.Signal(syscall.SIGCONT)
		c.Proc.Signal(syscall.SIGTERM)
		if !c.Proc.WaitGone(3 * time.Second) {
			c.Proc.KillAll(2 * time.Second)
		}
	}
}

// finish saves the state or, when nothing of the lab runs any more,
// empties the runtime directory but for the logs (`umlab logs` after a
// halt; `umlab clean` removes them).
func (r *Runner) finish(state *State) error {
	if len(state.Machines) > 0 || len(state.Domains) > 0 || len(state.Cables) > 0 {
		return r.rt.Save(state)
	}
	ents, err := os.ReadDir(r.rt.Dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".log") && e.Name() != "lock" {
			os.RemoveAll(r.rt.Path(e.Name()))
		}
	}
	return nil
}

// Clean removes everything the lab left: every guest and switch process
// (killed), the machines' COW files (MACHINE.disk), sockets, logs and the
// runtime directory. It never removes other files of the lab directory,
// shared disks or snapshots.
func (r *Runner) Clean(ctx context.Context) error {
	var errs []error
	if fileExists(r.rt.Dir) {
		if err := r.rt.Lock(); err != nil {
			return err
		}
		state, err := r.rt.Load()
		if err != nil {
			errs = append(errs, err)
			state = &State{}
		}
		for _, ms := range state.Machines {
			if err := ms.Proc.KillAll(5 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ms.Name, err))
			}
		}
		for _, d := range state.Domains {
			stopSwitch(d)
		}
		for _, c := range state.Cables {
			stopCable(c)
		}
		r.rt.Unlock()
		if err := os.RemoveAll(r.rt.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range r.Lab.Machines {
		removeDiskFile(r.diskPath(m.Name))
	}
	return errors.Join(errs...)
}
