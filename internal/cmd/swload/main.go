// Command swload is the project's load generator for uml_switch (not
// installed): it registers synthetic UML ports over the daemon protocol and
// measures frames per second or round-trip latency.
//
//	swload -ctl PATH throughput [-ports N] [-hosts M] [-size B] [-duration D]
//	swload -ctl PATH latency [-size B] [-duration D]
//
// Output is one line of key=value pairs for scripts.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/umlutils/umlutils/internal/swload"
)

func main() {
	fs := flag.NewFlagSet("swload", flag.ExitOnError)
	ctl := fs.String("ctl", "/tmp/uml.ctl", "switch control socket")
	ports := fs.Int("ports", 2, "ports to register")
	hosts := fs.Int("hosts", 1, "MAC addresses behind each port")
	size := fs.Int("size", 64, "frame size in bytes")
	dur := fs.Duration("duration", 3*time.Second, "measuring time")
	_ = fs.Parse(os.Args[1:])
	mode := fs.Arg(0)
	if mode == "" {
		mode = "throughput"
	}
	_ = fs.Parse(fs.Args()[1:])
	switch mode {
	case "throughput":
		r, err := swload.Throughput(*ctl, *ports, *hosts, *size, *dur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "swload:", err)
			os.Exit(1)
		}
		fmt.Printf("fps=%.0f sent=%d received=%d seconds=%.2f\n", r.FramesPerSec(), r.Sent, r.Received, r.Duration.Seconds())
	case "latency":
		r, err := swload.Latency(*ctl, *size, *dur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "swload:", err)
			os.Exit(1)
		}
		fmt.Printf("p50_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f samples=%d lost=%d\n",
			us(r.P50), us(r.P99), us(r.Mean), us(r.Max), r.Samples, r.Lost)
	default:
		fmt.Fprintf(os.Stderr, "swload: unknown mode %q (throughput, latency)\n", mode)
		os.Exit(2)
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
