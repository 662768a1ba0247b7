// Package labimage gives end-to-end tests umlab's root image, built once
// into the test bed's cache (CacheDir()/images) and reused by every later
// run and test process.
//
// It is a package of its own rather than part of testbed because it
// imports lab: package lab's own tests import testbed, and testbed
// importing lab would be an import cycle.
package labimage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/umlutils/umlutils/internal/testbed"
	"github.com/umlutils/umlutils/lab"
)

// BuildTimeout bounds a first build (about 2-3 minutes on 2 cores).
const BuildTimeout = 20 * time.Minute

var mu sync.Mutex

// Store is the test bed's image store.
func Store() *lab.Images {
	return &lab.Images{Dir: filepath.Join(testbed.CacheDir(), "images"), Progress: os.Stderr}
}

// Path returns the absolute path of the newest default-profile image,
// building it first if there is none (other processes wait for that build
// through the store's lock). It fails the test when the build fails.
func Path(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	p, err := Store().Ensure(ctx, lab.DefaultProfile)
	if err != nil {
		t.Fatalf("umlab root image: %v", err)
	}
	return p
}
