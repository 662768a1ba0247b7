package lab

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// progress turns mmdebstrap's --verbose output into a display: on a
// terminal one line rewritten in place (phase, elapsed, packages), else a
// start line and an end line.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	profile  string
	start    time.Time
	phaseStr string
	total    int // packages apt will install (its "N newly installed")
	fetched  int // "Get:" lines
	setUp    int // "Setting up" lines
	partial  string
	stopped  bool
	tick     *time.Ticker
	quit     chan struct{}
	wg       sync.WaitGroup
	lastLen  int
}

var newlyInstalled = regexp.MustCompile(`\b([0-9]+) newly installed\b`)

func newProgress(w io.Writer, terminal bool, profile string) *progress {
	p := &progress{w: w, terminal: terminal, profile: profile, start: time.Now(), quit: make(chan struct{})}
	if w == nil {
		return p
	}
	if !terminal {
		fmt.Fprintf(w, "building root image (profile %s) with mmdebstrap; this takes a few minutes\n", profile)
		return p
	}
	p.tick = time.NewTicker(250 * time.Millisecond)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.quit:
				return
			case <-p.tick.C:
				p.mu.Lock()
				p.render()
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *progress) phase(s string) {
	p.mu.Lock()
	p.phaseStr = s
	if p.terminal && p.w != nil && !p.stopped {
		p.render()
	}
	p.mu.Unlock()
}

// Write takes the builder's output and follows its phases.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.partial + string(b)
	lines := strings.Split(s, "\n")
	p.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		p.line(strings.TrimRight(l, "\r"))
	}
	return len(b), nil
}

func (p *progress) line(l string) {
	switch {
	case strings.HasPrefix(l, "I: running apt-get update"):
		p.phaseStr = "updating package lists"
	case strings.HasPrefix(l, "I: downloading packages"):
		p.phaseStr = "downloading"
	case strings.HasPrefix(l, "I: extracting archives"):
		p.phaseStr = "extracting"
	case strings.HasPrefix(l, "I: installing"):
		p.phaseStr = "installing"
	case strings.HasPrefix(l, "I: running --customize-hook"):
		p.phaseStr = "customizing"
	case strings.HasPrefix(l, "I: cleaning"):
		p.phaseStr = "cleaning up"
	case strings.HasPrefix(l, "Get:"):
		p.fetched++
	case strings.HasPrefix(l, "Setting up "):
		p.setUp++
	default:
		if m := newlyInstalled.FindStringSubmatch(l); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n > p.total {
				p.total = n
			}
		}
	}
}

// render draws the live line; p.mu is held.
func (p *progress) render() {
	if p.stopped {
		return
	}
	el := time.Since(p.start).Truncate(time.Second)
	line := fmt.Sprintf("root image %s: %s", p.profile, p.phaseStr)
	switch p.phaseStr {
	case "downloading":
		if p.total > 0 {
			line += fmt.Sprintf(" %d/%d packages", min(p.fetched, p.total), p.total)
		} else if p.fetched > 0 {
			line += fmt.Sprintf(" %d files", p.fetched)
		}
	case "installing", "extracting":
		if p.total > 0 {
			line += fmt.Sprintf(" %d/%d packages", min(p.setUp, p.total), p.total)
		} else if p.setUp > 0 {
			line += fmt.Sprintf(" %d packages", p.setUp)
		}
	}
	line += fmt.Sprintf("  [%s]", el)
	pad := ""
	if n := p.lastLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.lastLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
}

func (p *progress) done(path string, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil || p.stopped {
		return
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
	}
	fmt.Fprintf(p.w, "built root image %s in %s\n", path, took.Truncate(time.Second))
	p.stopLocked()
}

func (p *progress) stop() {
	p.mu.Lock()
	if p.w != nil && p.terminal && !p.stopped {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
	}
	p.stopLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *progress) stopLocked() {
	if p.stopped {
		return
	}
	p.stopped = true
	if p.tick != nil {
		p.tick.Stop()
		close(p.quit)
	}
}
