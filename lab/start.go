package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/lab/agent"
	"golang.org/x/sys/unix"
)

// Memory of a guest, in MiB: the default, and the least that boots the
// image with systemd and FRR (a smaller [mem] is raised, with a warning).
const (
	DefaultMem = 128
	MinMem     = 96
)

// StartOptions says what Start does.
type StartOptions struct {
	Machines []string      // nil: every machine of the lab
	Parallel int           // guests booting at once; 0: the number of cores
	Fast     bool          // return once the kernels run, without waiting for startup files
	Switch   bool          // learning switches instead of hubs (Netkit runs hubs)
	Timeout  time.Duration // a machine's boot and startup files; 0: 5 minutes
}

// Start boots the lab's machines (opts.Machines, or all), honouring
// lab.dep, at most opts.Parallel at once, and waits until every startup
// file has finished (unless opts.Fast). A machine that fails does not stop
// the others: Start returns an error joining a *MachineError for each
// failed machine, and the rest keep running.
func (r *Runner) Start(ctx context.Context, opts StartOptions) error {
	sel, err := r.Lab.Select(opts.Machines)
	if err != nil {
		return err
	}
	names := make([]string, len(sel))
	for i, m := range sel {
		names[i] = m.Name
	}
	waves, err := r.Lab.Waves(names)
	if err != nil {
		return err
	}
	// A quick answer for a lab that runs, before any work; checked again
	// under the lock.
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	if err := r.checkNotRunning(state, names); err != nil {
		return err
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.NumCPU()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	// Everything that can fail on the lab's input (images, kernels, spans)
	// is settled before anything is made or started.
	spans, err := r.loadSpans()
	if err != nil {
		return err
	}
	plans := map[string]*plan{}
	for _, m := range sel {
		p, err := r.plan(ctx, m)
		if err != nil {
			return err
		}
		plans[m.Name] = p
	}
	if err := r.rt.Create(); err != nil {
		return err
	}
	if err := r.rt.Lock(); err != nil {
		return err
	}
	defer r.rt.Unlock()
	if state, err = r.rt.Load(); err != nil {
		return err
	}
	if err := r.checkNotRunning(state, names); err != nil {
		return err
	}
	state.Lab = r.Lab.Dir
	cables, err := r.cables(sel)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, m := range sel {
		for _, o := range m.Options {
			if _, ok := optionIndex(o.Name, "ssl"); ok {
				used[o.Value] = true
			}
		}
	}
	for name := range used {
		if c := state.Cables[name]; c != nil && c.Proc.Alive() {
			continue
		}
		c, err := r.startCable(ctx, name)
		if err != nil {
			return err
		}
		state.Cables[name] = c
		if err := r.rt.Save(state); err != nil {
			return err
		}
	}
	for _, m := range sel {
		if plans[m.Name].disks, err = r.diskArgs(ctx, m); err != nil {
			return err
		}
		plans[m.Name].cables = cableArgs(m, cables, state)
		plans[m.Name].spans = map[string]bool{}
		for d := range spans {
			plans[m.Name].spans[d] = true
		}
	}
	// One switch per collision domain the selection uses.
	for _, m := range sel {
		for _, ifc := range m.Interfaces {
			if ifc.Tap != nil {
				continue
			}
			if d := state.Domains[ifc.Domain]; d != nil && d.Proc.Alive() {
				continue
			}
			vx := ""
			if sp, ok := spans[ifc.Domain]; ok {
				if vx, err = sp.vxlanArg(); err != nil {
					return err
				}
			}
			d, err := r.startSwitch(ctx, ifc.Domain, r.hub(opts), vx)
			if err != nil {
				return err
			}
			state.Domains[ifc.Domain] = d
			if err := r.rt.Save(state); err != nil {
				return err
			}
		}
	}

	prog := newStartProgress(r.Out, r.Terminal, names)
	defer prog.stop()
	var (
		mu     sync.Mutex
		failed []error
	)
	for _, wave := range waves {
		sem := make(chan struct{}, opts.Parallel)
		var wg sync.WaitGroup
		for _, name := range wave {
			p := plans[name]
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
				err := r.boot(ctx, p, state, &mu, prog, opts)
				if err != nil {
					prog.set(p.m.Name, "failed")
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(failed) > 0 {
		sort.Slice(failed, func(i, j int) bool { return failed[i].Error() < failed[j].Error() })
		return errors.Join(failed...)
	}
	return nil
}

// hub says whether the lab's domains are hubs: Netkit's default, unless
// `start --switch` or LAB_SWITCH_MODE=switch in lab.conf.
func (r *Runner) hub(opts StartOptions) bool {
	switch m := r.Lab.Meta["LAB_SWITCH_MODE"]; m {
	case "", "hub":
	case "switch":
		return false
	default:
		r.warnf("lab.conf: LAB_SWITCH_MODE=%q: want hub or switch; using hub", m)
	}
	return !opts.Switch
}

func (r *Runner) checkNotRunning(state *State, names []string) error {
	var running []string
	for _, n := range names {
		if ms := state.Machines[n]; ms != nil && ms.Proc.Alive() {
			running = append(running, n)
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("lab %s is already running (%s); halt, crash or clean it first", r.Lab.Dir, strings.Join(running, ", "))
	}
	return nil
}

// plan is how one machine is booted.
type plan struct {
	m      *Machine
	kernel *Kernel
	image  string
	side   string
	mem    int
	shim   string
	disks  []string        // kernel arguments of the lab's disks
	cables []string        // and of its serial cables
	spans  map[string]bool // domains that span hosts
}

func (r *Runner) optionLine(m *Machine, names ...string) int {
	for _, o := range m.Options {
		for _, n := range names {
			if o.Name == n {
				return o.Line
			}
		}
	}
	return 0
}

func (r *Runner) plan(ctx context.Context, m *Machine) (*plan, error) {
	p := &plan{m: m, mem: m.Mem}
	if p.mem == 0 {
		p.mem = DefaultMem
	} else if p.mem < MinMem {
		r.warnf("lab.conf:%d: %s[mem]: %d MB is too small for the image (systemd and FRR); using %d MB", r.optionLine(m, "mem"), m.Name, m.Mem, MinMem)
		p.mem = MinMem
	}
	if m.CPUs > 1 {
		r.warnf("lab.conf:%d: %s[cpus]: UML kernels run one CPU; %d ignored", r.optionLine(m, "cpus"), m.Name, m.CPUs)
	}
	kpath := os.Getenv("UMLAB_KERNEL")
	if kpath == "" {
		kpath = DefaultKernel
	}
	if m.Kernel != "" {
		k := m.Kernel
		if !filepath.IsAbs(k) {
			k = filepath.Join(r.Lab.Dir, k)
		}
		if fileExists(k) {
			kpath = k
		} else {
			r.warnf("lab.conf:%d: %s[kernel]: %s does not exist; using %s", r.optionLine(m, "kernel"), m.Name, m.Kernel, kpath)
		}
	}
	k, err := ProbeKernel(ctx, kpath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	p.kernel = k
	img := m.Image
	if isPath(img) && !filepath.IsAbs(img) {
		// A lab's own image file is relative to the lab directory.
		img = filepath.Join(r.Lab.Dir, img)
	}
	if p.image, err = r.Images.Ensure(ctx, img); err != nil {
		var ue *UnknownImageError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("lab.conf:%d: %s: %w", r.optionLine(m, "image", "model-fs", "filesystem"), m.Name, err)
		}
		return nil, fmt.Errorf("%s: image: %w", m.Name, err)
	}
	if p.side, err = SideDisk(ctx, k); err != nil {
		return nil, err
	}
	if needsXSAVEFix(k) {
		if p.shim, err = xsaveFix(CacheDir()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ipv6Sysctls turns IPv6 off for [ipv6]=false (Kathará's option).
func ipv6Sysctls(m *Machine) []string {
	for _, o := range m.Options {
		if o.Name == "ipv6" && (strings.EqualFold(o.Value, "false") || o.Value == "0" || strings.EqualFold(o.Value, "no")) {
			return []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
		}
	}
	return nil
}

// machineID is the guest's systemd machine id: stable for a lab's machine
// across restarts, different between labs, never stored in the image.
func machineID(lab, machine string) string {
	h := sha256.Sum256([]byte(lab + "\x00" + machine))
	return hex.EncodeToString(h[:16])
}

// boot starts one machine and, unless opts.Fast, waits for its startup
// files.
func (r *Runner) boot(ctx context.Context, p *plan, state *State, mu *sync.Mutex, prog *startProgress, opts StartOptions) error {
	m := p.m
	prog.set(m.Name, "booting")
	t0 := time.Now()
	disk := r.diskPath(m.Name)
	if _, err := os.Stat(disk); errors.Is(err, os.ErrNotExist) {
		if _, err := cow.Create(disk, p.image, cow.CreateOptions{}); err != nil {
			return &MachineError{Machine: m.Name, Err: fmt.Errorf("making its disk: %w", err)}
		}
	} else if err != nil {
		return &MachineError{Machine: m.Name, Err: err}
	} else if h, err := cow.ReadHeader(disk); err != nil {
		return &MachineError{Machine: m.Name, Err: fmt.Errorf("its disk %s is not usable: %w (umlab clean removes it)", disk, err)}
	} else {
		p.image = h.BackingFile
	}
	umid := r.UMID(m.Name)
	os.RemoveAll(r.rt.Path("uml", umid))
	if err := os.MkdirAll(r.rt.Path("uml"), 0o700); err != nil {
		return err
	}
	cfg := &agent.Config{
		Version: agent.ConfigVersion, Machine: m.Name, Lab: r.Lab.Meta["LAB_NAME"],
		Format: r.Lab.Format.String(),
		// Netkit copies shared/ over /, Kathará binds it at /shared; the
		// binding is harmless in a Netkit lab, so every lab gets it.
		CopyShared: r.Lab.Format != FormatKathara, MountShared: true,
		Root: "/dev/ubda", Vector: p.kernel.Vector(),
		Sysctl: append(ipv6Sysctls(m), m.Sysctl...), Exec: m.Exec, Env: m.Env,
		StartupTimeout: int(opts.Timeout / time.Second),
		Channels:       agent.DefaultChannels,
	}
	ms := &MachineState{
		Name: m.Name, UMID: umid, Kernel: p.kernel.Path, Version: p.kernel.Version, Mem: p.mem,
		Disk: disk, Image: p.image, Log: r.rt.Path(m.Name + ".log"),
	}
	var ifargs []string
	for _, ifc := range m.Interfaces {
		if ifc.Tap != nil {
			r.warnf("lab.conf:%d: %s[%d]: tap interfaces to the host need root and are not supported yet; interface left out", ifc.Line, m.Name, ifc.Index)
			continue
		}
		name := fmt.Sprintf("eth%d", ifc.Index)
		mu.Lock()
		d := state.Domains[ifc.Domain]
		mu.Unlock()
		if p.kernel.Vector() {
			ifargs = append(ifargs, fmt.Sprintf("vec%d:transport=bess,dst=%s,mac=%s", ifc.Index, d.Bess, ifc.MAC))
		} else {
			ifargs = append(ifargs, fmt.Sprintf("%s=daemon,%s,unix,%s", name, ifc.MAC, d.Ctl))
		}
		cfg.Interfaces = append(cfg.Interfaces, name)
		if p.spans[ifc.Domain] {
			if cfg.MTU == nil {
				cfg.MTU = map[string]int{}
			}
			cfg.MTU[name] = SpanMTU
		}
		ms.Interfaces = append(ms.Interfaces, IfaceState{Name: name, Domain: ifc.Domain, MAC: ifc.MAC.String()})
	}
	raw, err := agent.MarshalConfig(cfg)
	if err != nil {
		return err
	}
	cfgPath := r.rt.Path(m.Name + ".cfg")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return err
	}
	sideLink := r.rt.Path("side-" + filepath.Base(p.side))
	if cur, err := os.Readlink(sideLink); err != nil || cur != p.side {
		os.Remove(sideLink)
		os.Symlink(p.side, sideLink)
	}
	args := []string{
		"umid=" + umid, "uml_dir=" + r.rt.Path("uml"), fmt.Sprintf("mem=%dM", p.mem),
		"ubd0=" + r.rt.Path("lab", m.Name+".disk"),
		"ubd6r=" + cfgPath, "ubd7r=" + sideLink,
		"root=/dev/ubdh", "rw", "init=/init", "hostfs=" + r.rt.Path("lab"),
		"con0=fd:0,fd:1", "con=null", "ssl=null",
	}
	// The agent's lines: FIFO pairs the kernel holds open for its whole
	// life, passed as descriptors 3 and up.
	var lines []*os.File
	defer func() {
		for _, f := range lines {
			f.Close()
		}
	}()
	for _, n := range agent.DefaultChannels {
		to, from := r.lineFIFOs(m.Name, n)
		for _, p := range []string{to, from} {
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o600); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			lines = append(lines, f)
		}
		args = append(args, fmt.Sprintf("ssl%d=fd:%d,fd:%d", n, 3+len(lines)-2, 3+len(lines)-1))
	}
	args = append(args, ifargs...)
	args = append(args, p.disks...)
	args = append(args, p.cables...)
	args = append(args, "systemd.machine_id="+machineID(r.Lab.Dir, m.Name),
		// 256 legacy ptys cost the boot thousands of device events.
		"pty.legacy_count=0", "quiet")
	args = append(args, m.Append...)
	for _, a := range args {
		if strings.ContainsAny(a, " \t\n") {
			return &MachineError{Machine: m.Name, Err: fmt.Errorf("kernel argument %q holds white space (the lab's path or an [append] value)", a)}
		}
	}

	log, err := os.OpenFile(ms.Log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.kernel.Path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = lines
	cmd.Dir = r.rt.Dir
	cmd.Env = os.Environ()
	if p.shim != "" {
		cmd.Env = append(cmd.Env, "LD_PRELOAD="+p.shim)
	}
	// Its own session and process group: the guest outlives umlab and is
	// stopped as a whole (see Proc.KillAll).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	log.Close()
	if err != nil {
		return &MachineError{Machine: m.Name, Err: fmt.Errorf("starting %s: %w", p.kernel.Path, err)}
	}
	go cmd.Wait()
	ms.Proc, _ = procOf(cmd.Process.Pid)
	ms.Started = time.Now()
	mu.Lock()
	state.Machines[m.Name] = ms
	err = r.rt.Save(state)
	mu.Unlock()
	if err != nil {
		return err
	}
	if opts.Fast {
		prog.set(m.Name, "started")
		return nil
	}
	// The guest bounds its startup files by opts.Timeout from their start;
	// the host allows the boot before them on top.
	if err := r.waitReady(ctx, ms, prog, t0.Add(opts.Timeout+bootAllowance)); err != nil {
		return err
	}
	mu.Lock()
	err = r.reapplyFaults(ctx, state, m.Name)
	mu.Unlock()
	if err != nil {
		return &MachineError{Machine: m.Name, Err: err}
	}
	prog.set(m.Name, fmt.Sprintf("ready %.1fs", time.Since(t0).Seconds()))
	return nil
}

// bootAllowance is how long the host waits, beyond the start timeout, for
// a guest to boot to its startup files.
const bootAllowance = 2 * time.Minute

// startupTail returns the end of a running guest's startup log, or its
// console log when the guest does not answer.
func (r *Runner) startupTail(ctx context.Context, ms *MachineState) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if s, err := r.agentOf(ctx, ms, 2*time.Second); err == nil {
		defer s.Close()
		var out strings.Builder
		if _, err := s.Run(ctx, agent.ExecRequest{Argv: []string{"tail", "-n", "20", "/var/log/umlab/startup.log"}}, nil, &out, &out); err == nil && out.Len() > 0 {
			return strings.TrimRight(out.String(), "\n")
		}
	}
	return tail(ms.Log, 20)
}

// waitReady waits until the machine's startup files have run.
func (r *Runner) waitReady(ctx context.Context, ms *MachineState, prog *startProgress, deadline time.Time) error {
	for {
		if !ms.Proc.Alive() {
			return &MachineError{Machine: ms.Name, Err: errors.New("its kernel exited during boot"), Tail: tail(ms.Log, 20)}
		}
		if time.Now().After(deadline) {
			return &MachineError{Machine: ms.Name, Err: fmt.Errorf("not ready after %s", time.Since(ms.Started).Round(time.Second)), Tail: r.startupTail(ctx, ms)}
		}
		{
			// Until the guest's agent opens its line, a reset goes
			// unanswered: the short timeout paces this loop.
			s, err := r.agentOf(ctx, ms, time.Second)
			if err == nil {
				st, err := s.Client.Status(ctx, 3*time.Second)
				if err == nil {
					switch st.Startup {
					case agent.StartupDone:
						s.Close()
						return nil
					case agent.StartupFailed:
						s.Close()
						return &MachineError{Machine: ms.Name, Err: fmt.Errorf("startup failed: %s exited with status %d", st.Step, st.Code), Tail: r.startupTail(ctx, ms)}
					case agent.StartupRunning:
						prog.set(ms.Name, "startup "+st.Step)
					}
				}
				s.Close()
			}
		}
		if err := ctxSleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
}

// progress shows each machine's state: live on a terminal, nothing in a
// pipe.
type startProgress struct {
	mu    sync.Mutex
	w     interface{ Write([]byte) (int, error) }
	names []string
	state map[string]string
	since map[string]time.Time
	drawn int
	done  chan struct{}
}

func newStartProgress(w interface{ Write([]byte) (int, error) }, terminal bool, names []string) *startProgress {
	p := &startProgress{names: names, state: map[string]string{}, since: map[string]time.Time{}, done: make(chan struct{})}
	if w == nil || !terminal {
		return p
	}
	p.w = w
	for _, n := range names {
		p.state[n] = "waiting"
		p.since[n] = time.Now()
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *startProgress) set(name, state string) {
	p.mu.Lock()
	// The clock restarts when the phase (the first word) changes.
	if strings.Fields(p.state[name] + " .")[0] != strings.Fields(state + " .")[0] {
		p.since[name] = time.Now()
	}
	p.state[name] = state
	p.mu.Unlock()
}

func (p *startProgress) draw() {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	width := 0
	for _, n := range p.names {
		width = max(width, len(n))
	}
	for _, n := range p.names {
		st := p.state[n]
		extra := ""
		if st == "booting" || strings.HasPrefix(st, "startup") {
			extra = " " + strconv.Itoa(int(time.Since(p.since[n]).Seconds())) + "s"
		}
		fmt.Fprintf(&b, "\r\x1b[K  %-*s  %s%s\n", width, n, st, extra)
	}
	p.drawn = len(p.names)
	p.w.Write([]byte(b.String()))
}

func (p *startProgress) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.draw()
}
