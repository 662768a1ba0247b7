package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dump copies a collision domain's frames, as a pcap stream, to w until
// ctx ends or w fails (a `tcpdump -r -` that exits). The domain's switch
// writes the capture into a FIFO in the runtime directory that Dump reads,
// so no root and no host interface are involved. A switch holds one
// capture at a time: a second dump of the same domain takes it over.
func (r *Runner) Dump(ctx context.Context, domain string, w io.Writer) error {
	s, err := r.rt.Load()
	if err != nil {
		return err
	}
	if r.domain(domain) == nil {
		return fmt.Errorf("%s: no such collision domain in %s", domain, r.Lab.Dir)
	}
	d := s.Domains[domain]
	if d == nil || !d.Proc.Alive() {
		return fmt.Errorf("collision domain %s has no running switch (start the lab first)", domain)
	}
	fifo := r.rt.Path(fmt.Sprintf("dump-%d.fifo", os.Getpid()))
	os.Remove(fifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return err
	}
	defer os.Remove(fifo)
	// Opened for reading first, without blocking, so the switch's open
	// for writing finds a reader.
	f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := SwitchCommand(ctx, d.Mgmt, "pcap start "+fifo); err != nil {
		return fmt.Errorf("domain %s: %w", domain, err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		SwitchCommand(c, d.Mgmt, "pcap stop")
	}()
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	_, err = io.Copy(w, f)
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

func (r *Runner) domain(name string) *Domain {
	for _, d := range r.Lab.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}
