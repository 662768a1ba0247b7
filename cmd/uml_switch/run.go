package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/internal/term"
	vswitch "github.com/umlutils/umlutils/switch"
	"github.com/umlutils/umlutils/tuntap"
)

const (
	defaultControl = "/tmp/uml.ctl"
	defaultData    = "/tmp/uml.data"
	// readyFDEnv tells a -daemon child which descriptor to report
	// readiness on; the argument list itself stays unchanged because
	// tools read the socket path from the last word of /proc/PID/cmdline.
	readyFDEnv = "UMLUTILS_SWITCH_READY_FD"
)

type options struct {
	prog     string
	control  string
	data     string
	hub      bool
	tap      string
	compatV0 bool
	daemon   bool
	quiet    bool
	pcap     string
	mode     os.FileMode
	group    int
	macAge   time.Duration
	macTable int
	bess     string
	stream   string
	mgmt     string
	// port security for every port
	portMACs      int
	portMACAction vswitch.SecurityAction
	storm         int      // flooded frames/s per port; 0 default, -1 none
	banners       []string // lines the C switch prints while parsing

	vxlan []vswitch.VXLANConfig // -vxlan, one uplink each
}

func usage(prog string) string {
	return fmt.Sprintf("Usage : %s [ -unix control-socket ] [ -hub ] [ -tap tap-device ]\n"+
		"or : %s -compat-v0 [ -unix control-socket data-socket ] [ -hub ] [ -tap tap-device ]\n"+
		"Extensions: [ -daemon ] [ -q ] [ -pcap file|- ] [ -mode octal ] [ -group group ]\n"+
		"            [ -mac-age seconds ] [ -mac-table entries ]\n"+
		"            [ -bess path ] [ -stream path ] [ -mgmt path ]\n"+
		"            [ -port-macs n ] [ -port-macs-action drop|shutdown ] [ -storm fps ]\n"+
		"            [ -vxlan vni=N,local=ADDR[:PORT][,remote=ADDR[:PORT]]... ]...\n", prog, prog)
}

// usageError is a command line the C switch would answer with its usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parseArgs reads the arguments as the C switch does: in order, each option
// taking the words after it, -unix taking two words once -compat-v0 was
// seen; the last of a repeated option wins.
func parseArgs(args []string) (*options, error) {
	o := &options{prog: "uml_switch", group: -1}
	if len(args) > 0 {
		o.prog = args[0]
		args = args[1:]
	}
	need := func(i, n int, name string) error {
		if i+n >= len(args) {
			return &usageError{fmt.Sprintf("%s needs %d argument(s)", name, n)}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-unix":
			n := 1
			if o.compatV0 {
				n = 2
			}
			if err := need(i, n, a); err != nil {
				return o, err
			}
			o.control = args[i+1]
			if n == 2 {
				o.data = args[i+2]
			}
			// An empty word would silently mean the default socket,
			// not the one the user named.
			for _, w := range args[i+1 : i+1+n] {
				if w == "" {
					return o, fmt.Errorf("-unix: empty socket path")
				}
			}
			i += n
		case "-hub":
			o.hub = true
			o.banners = append(o.banners, fmt.Sprintf("%s will be a hub instead of a switch", o.prog))
		case "-tap":
			if err := need(i, 1, a); err != nil {
				return o, err
			}
			o.tap = args[i+1]
			i++
		case "-compat-v0":
			o.compatV0 = true
			o.banners = append(o.banners, "Control protocol 0 compatibility")
		case "-daemon":
			o.daemon = true
		case "-q":
			o.quiet = true
		case "-pcap", "-mode", "-group", "-mac-age", "-mac-table", "-bess", "-stream", "-mgmt", "-port-macs", "-port-macs-action", "-storm", "-vxlan":
			if err := need(i, 1, a); err != nil {
				return o, err
			}
			v := args[i+1]
			i++
			if err := o.setValue(a, v); err != nil {
				return o, err
			}
		default:
			return o, &usageError{fmt.Sprintf("unknown option %q", a)}
		}
	}
	if o.control == "" {
		o.control = defaultControl
	}
	if o.compatV0 && o.data == "" {
		o.data = defaultData
	}
	for _, p := range []struct{ what, path string }{{"control", o.control}, {"bess", o.bess}, {"stream", o.stream}, {"management", o.mgmt}} {
		if len(p.path) >= 108 {
			return o, fmt.Errorf("%s socket %s: path longer than 107 bytes", p.what, p.path)
		}
	}
	return o, nil
}

func (o *options) setValue(name, v string) error {
	switch name {
	case "-pcap":
		o.pcap = v
	case "-bess":
		o.bess = v
	case "-stream":
		o.stream = v
	case "-mgmt":
		o.mgmt = v
	case "-vxlan":
		// Repeatable: one uplink each.
		c, err := vswitch.ParseVXLANSpec(v)
		if err != nil {
			return fmt.Errorf("-vxlan: %w", err)
		}
		o.vxlan = append(o.vxlan, c)
	case "-mode":
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("-mode %s: not an octal file mode", v)
		}
		o.mode = os.FileMode(m)
	case "-group":
		if gid, err := strconv.Atoi(v); err == nil && gid >= 0 {
			o.group = gid
			return nil
		}
		g, err := user.LookupGroup(v)
		if err != nil {
			return fmt.Errorf("-group %s: no such group", v)
		}
		o.group, _ = strconv.Atoi(g.Gid)
	case "-mac-age":
		s, err := strconv.ParseUint(v, 10, 32)
		if err != nil || s == 0 {
			return fmt.Errorf("-mac-age %s: not a positive number of seconds", v)
		}
		o.macAge = time.Duration(s) * time.Second
	case "-mac-table":
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil || n == 0 {
			return fmt.Errorf("-mac-table %s: not a positive number of entries", v)
		}
		o.macTable = int(n)
	case "-port-macs":
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return fmt.Errorf("-port-macs %s: not a number of addresses", v)
		}
		o.portMACs = int(n)
	case "-storm":
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return fmt.Errorf("-storm %s: not a number of frames per second", v)
		}
		o.storm = int(n)
		if n == 0 {
			o.storm = -1 // no bound
		}
	case "-port-macs-action":
		a, ok := vswitch.ParseSecurityAction(v)
		if !ok {
			return fmt.Errorf("-port-macs-action %s: not drop or shutdown", v)
		}
		o.portMACAction = a
	}
	return nil
}

// runMain runs the switch until a signal, EOF on a terminal stdin, or a
// fatal error. It returns the exit code and, when a signal ended the
// switch, that signal, so main can die by it as the C switch does.
func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, syscall.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	// A status line written after the reader of our stdout went away
	// (a -daemon child of $(...), "| head") must not kill the switch by
	// SIGPIPE: it would leave its socket files behind and drop every
	// guest. The write fails with EPIPE instead and the switch goes on.
	signal.Ignore(syscall.SIGPIPE)
	var got syscall.Signal
	var once sync.Once
	var status atomic.Pointer[lineWriter]
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case s := <-sigc:
			once.Do(func() {
				got = s.(syscall.Signal)
				if l := status.Load(); l != nil {
					l.printf("Caught signal %d, cleaning up and exiting", int(got))
				}
			})
			cancel()
		case <-stop:
		}
	}()
	code := runCtx(ctx, args, stdin, stdout, stderr, status.Store)
	once.Do(func() {})
	return code, got
}

// runCtx is the switch's command body; tests cancel ctx to stop it.
func runCtx(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, onStatus func(*lineWriter)) int {
	o, err := parseArgs(args)
	prog := "uml_switch"
	var ue *usageError
	if errors.As(err, &ue) {
		if !o.quiet {
			for _, b := range o.banners {
				fmt.Fprintln(stdout, b)
			}
		}
		fmt.Fprint(stderr, usage(o.prog))
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if o.daemon && os.Getenv(readyFDEnv) == "" {
		return detach(stderr)
	}
	statusOut := stdout
	if o.pcap == "-" {
		statusOut = stderr
	}
	// Status lines and warnings go through bounded queues: a stdout or
	// stderr nobody drains must not stop the switch.
	errq := newLineWriter(stderr, false)
	status := newLineWriter(statusOut, o.quiet)
	status.onDrop = func() {
		errq.printf("%s: status output is not being read; dropping status lines (counted in stats)", prog)
	}
	defer func() {
		status.close(time.Second)
		errq.close(time.Second)
	}()
	if onStatus != nil {
		onStatus(status)
	}
	for _, b := range o.banners {
		status.printf("%s", b)
	}

	sw := vswitch.New(vswitch.Config{
		Hub: o.hub, MACAge: o.macAge, MACTableSize: o.macTable,
		PortMACs: o.portMACs, PortMACAction: o.portMACAction, StormRate: o.storm,
		OnEvent:     func(e vswitch.Event) { printEvent(status, errq, e) },
		StatusDrops: func() uint64 { return status.dropped.Load() + errq.dropped.Load() },
	})
	// Open the tap first: a tap that cannot be had is an error (exit 1)
	// before any socket file is created.
	var tap *os.File
	if o.tap != "" {
		if tap, err = tuntap.OpenTap(o.tap); err != nil {
			fmt.Fprintf(stderr, "%s: tap device %s: %v\n", prog, o.tap, err)
			return 1
		}
	}
	fail := func(err error) int {
		if tap != nil {
			tap.Close()
		}
		_ = sw.Close()
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if err := sw.ListenDaemon(vswitch.DaemonConfig{Control: o.control, Data: o.data, Mode: o.mode, Group: o.group}); err != nil {
		return fail(err)
	}
	var extra []string
	if o.bess != "" {
		if err := sw.ListenBess(vswitch.SocketConfig{Path: o.bess, Mode: o.mode, Group: o.group}); err != nil {
			return fail(err)
		}
		extra = append(extra, fmt.Sprintf("%s attached to bess socket '%s'", o.prog, o.bess))
	}
	if o.stream != "" {
		if err := sw.ListenStream(vswitch.SocketConfig{Path: o.stream, Mode: o.mode, Group: o.group}); err != nil {
			return fail(err)
		}
		extra = append(extra, fmt.Sprintf("%s attached to stream socket '%s'", o.prog, o.stream))
	}
	if o.mgmt != "" {
		if err := sw.ListenManagement(vswitch.SocketConfig{Path: o.mgmt, Mode: o.mode, Group: o.group}); err != nil {
			return fail(err)
		}
		extra = append(extra, fmt.Sprintf("%s management socket '%s'", o.prog, o.mgmt))
	}
	for _, c := range o.vxlan {
		p, err := sw.AddVXLAN(c)
		if err != nil {
			return fail(err)
		}
		local := c.Local
		for _, u := range sw.VXLAN() {
			if u.Port == p.ID {
				local = u.Local // the port the kernel picked for :0
			}
		}
		extra = append(extra, fmt.Sprintf("%s vxlan vni %d on %s, %d remote(s)", o.prog, c.VNI, local, len(c.Remotes)))
	}
	if o.pcap != "" {
		var w io.Writer = stdout
		if o.pcap != "-" {
			f, err := os.OpenFile(o.pcap, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return fail(fmt.Errorf("pcap file: %w", err))
			}
			defer f.Close()
			w = f
		}
		c, err := vswitch.NewPcapCapture(w)
		if err != nil {
			return fail(fmt.Errorf("pcap file %s: %w", o.pcap, err))
		}
		_, _ = sw.SetCapture(c)
	}
	line := fmt.Sprintf("%s attached to unix socket '%s'", o.prog, o.control)
	if o.data != "" {
		line = fmt.Sprintf("%s attached to unix sockets '%s' and '%s'", o.prog, o.control, o.data)
	}
	if o.tap != "" {
		line += fmt.Sprintf(" tap device '%s'", o.tap)
	}
	status.printf("%s", line)
	for _, l := range extra {
		status.printf("%s", l)
	}
	status.flush(time.Second)
	if tap != nil {
		if _, err := sw.AddPacketPort(vswitch.TransportTap, "tap:"+o.tap, tap); err != nil {
			return fail(err)
		}
	}
	ready()
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(f) {
		// As the C switch: EOF on a terminal stdin ends the switch.
		ctx2, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx = ctx2
		go func() {
			if _, err := io.Copy(io.Discard, f); err == nil && ctx2.Err() == nil {
				status.printf("EOF on stdin, cleaning up and exiting")
			}
			cancel()
		}()
	}
	if err := sw.Run(ctx); err != nil {
		errq.printf("%s: %v", prog, err)
		return 1
	}
	return 0
}

func printEvent(status, errq *lineWriter, e vswitch.Event) {
	switch e.Kind {
	case vswitch.PortAdded:
		status.printf("New connection")
	case vswitch.PortRemoved:
		status.printf("Disconnect")
		if e.Err != nil {
			errq.printf("uml_switch: port %d: %v; the switch goes on without it", e.Port, e.Err)
		}
	case vswitch.MACLearned:
		if e.OldPort >= 0 {
			status.printf(" Addr: %s New port %d old port %d", e.MAC, e.Port, e.OldPort)
		} else {
			status.printf(" Addr: %s New port %d", e.MAC, e.Port)
		}
	case vswitch.RequestRejected:
		if !status.quiet {
			errq.printf("uml_switch: control connection: %v", e.Err)
		}
	case vswitch.CaptureStalled:
		errq.printf("uml_switch: capture reader is not keeping up; dropping capture records (counted in stats), forwarding goes on")
	case vswitch.PortSecurityViolation:
		if !status.quiet {
			errq.printf("uml_switch: port %d: port security: new address %s over the port's bound; action %s", e.Port, e.MAC, e.Action)
		}
	}
}

// ready tells whoever waits that the control socket accepts connections:
// a -daemon parent through the inherited pipe, systemd through
// NOTIFY_SOCKET (sd_notify's READY=1).
func ready() {
	if v := os.Getenv(readyFDEnv); v != "" {
		if fd, err := strconv.Atoi(v); err == nil {
			f := os.NewFile(uintptr(fd), "ready")
			_, _ = f.Write([]byte{1})
			f.Close()
		}
		os.Unsetenv(readyFDEnv)
	}
	if ns := os.Getenv("NOTIFY_SOCKET"); ns != "" {
		name := ns
		if strings.HasPrefix(ns, "@") {
			name = "@" + ns[1:]
		}
		if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"}); err == nil {
			_, _ = c.Write([]byte("READY=1"))
			c.Close()
		}
	}
}

// detach re-executes the switch with the same arguments in a new session
// and returns once the child's control socket accepts connections (0), or
// the child failed (1; it printed why).
func detach(stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "uml_switch: -daemon: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "uml_switch: -daemon: %v\n", err)
		return 1
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(stderr, "uml_switch: -daemon: %v\n", err)
		return 1
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         append(os.Environ(), readyFDEnv+"=3"),
		Stdin:       null,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{w},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "uml_switch: -daemon: %v\n", err)
		return 1
	}
	w.Close()
	null.Close()
	var b [1]byte
	n, _ := r.Read(b[:])
	r.Close()
	if n == 1 {
		_ = cmd.Process.Release()
		return 0
	}
	_ = cmd.Wait()
	return 1
}
