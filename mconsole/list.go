//go:build linux

package mconsole

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Guest is a running guest found by List.
type Guest struct {
	UMID   string `json:"umid"`
	PID    int    `json:"pid"`
	Socket string `json:"socket"`
}

// List returns the guests under dir (usually ~/.uml, see UMLDir) that are
// alive: a pid file naming a live process and a socket that answers
// `version` within timeout. Directories left by dead guests, and guests
// that do not answer (frozen), are skipped.
func List(ctx context.Context, dir string, timeout time.Duration) ([]Guest, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []Guest
	)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		g := Guest{UMID: e.Name(), Socket: filepath.Join(dir, e.Name(), "mconsole")}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "pid"))
		if err != nil {
			continue
		}
		g.PID, err = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || g.PID <= 0 || syscall.Kill(g.PID, 0) == syscall.ESRCH {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{Socket: g.Socket, Timeout: timeout}
			// The client's socket and eventfd are raw descriptors: no
			// finalizer closes them for a program that lists often.
			defer c.Close()
			if _, err := c.Command(ctx, "version"); err != nil {
				return
			}
			mu.Lock()
			out = append(out, g)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].UMID < out[j].UMID })
	// A guest that did not answer in time is simply not listed; only a
	// cancelled listing is an error.
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, ctx.Err()
	}
	return out, nil
}

// UMLDir is ~/.uml, where guests keep their umid directories, or "" when
// no home directory is known (the kernel then makes no umid directory
// either: it needs $HOME).
func UMLDir() string {
	h := homeDir()
	if h == "" {
		return ""
	}
	return filepath.Join(h, ".uml")
}
