// Command oneway is the two ends of a one-way load run (not installed):
// frames/s across two switches, or two kernel bridges, in different network
// namespaces (scripts/bench-vxlan.sh).
//
//	oneway -ctl PATH|-if IFACE recv [-duration D]
//	oneway -ctl PATH|-if IFACE send [-size B] [-duration D]
//
// -ctl registers a synthetic UML port on the switch at PATH (daemon
// protocol); -if opens an AF_PACKET socket on that interface. Start recv
// first: it announces its address, then counts frames until a second
// passes without one. Output is one line of key=value pairs.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/umlutils/umlutils/internal/swload"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oneway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctl := fs.String("ctl", "", "switch control socket")
	ifname := fs.String("if", "", "an interface (AF_PACKET) instead of a switch")
	size := fs.Int("size", 64, "frame size in bytes")
	dur := fs.Duration("duration", 3*time.Second, "sending time")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	mode := fs.Arg(0)
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return 2
	}
	if (mode != "send" && mode != "recv") || (*ctl == "") == (*ifname == "") {
		fmt.Fprintln(stderr, "usage: oneway -ctl PATH|-if IFACE send|recv [-size B] [-duration D]")
		return 2
	}
	e, err := swload.OpenEndpoint(*ctl, *ifname)
	if err != nil {
		fmt.Fprintln(stderr, "oneway:", err)
		return 1
	}
	defer e.Close()
	src, dst := swload.MAC(1, 0), swload.MAC(2, 0)
	if mode == "recv" {
		if err := e.Announce(dst); err != nil {
			fmt.Fprintln(stderr, "oneway:", err)
			return 1
		}
		r, err := e.Sink(time.Second, *dur+10*time.Second)
		if err != nil {
			fmt.Fprintln(stderr, "oneway:", err)
			return 1
		}
		fmt.Fprintf(stdout, "fps=%.0f received=%d seconds=%.2f\n", r.FramesPerSec(), r.Received, r.Span.Seconds())
		return 0
	}
	if err := e.Announce(src); err != nil {
		fmt.Fprintln(stderr, "oneway:", err)
		return 1
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	n, err := e.Blast(src, dst, *size, *dur)
	if err != nil {
		fmt.Fprintln(stderr, "oneway:", err)
		return 1
	}
	fmt.Fprintf(stdout, "sent=%d send_fps=%.0f\n", n, float64(n)/time.Since(start).Seconds())
	return 0
}
