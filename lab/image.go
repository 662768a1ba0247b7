package lab

// The root-image store: Debian 12 ext4 images built with mmdebstrap, kept
// read-only in a per-user cache directory and used as the backing file of
// every machine's COW disk.
//
// A COW header records its backing file's mtime and size, so a finished
// image is never written again: a rebuild makes a new, separately named file
// (debian12-PROFILE-YYYYMMDDThhmmssZ.img) and Resolve picks the newest one of
// a profile. Nothing per machine (machine-id, hostname, keys) is in an image.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Images is a store of root images in Dir.
type Images struct {
	// Dir is the cache directory; DefaultImageDir() if empty.
	Dir string
	// Default, when set, is an image file used for every name that would
	// resolve to a built image ("", default, kathara/frr, …); paths named
	// by a lab are still used as given. umlab sets it from UMLAB_IMAGE.
	Default string
	// Progress receives build progress; nil is silent.
	Progress io.Writer
	// Terminal says Progress is a terminal: Build then keeps one live line
	// (phase, elapsed time, packages done/total); otherwise it writes a
	// start line and an end line.
	Terminal bool

	// Mmdebstrap is the builder command, "mmdebstrap" (from PATH) if empty.
	Mmdebstrap string
	// Mkfs is the ext4 formatter, "mkfs.ext4" (from PATH) if empty.
	Mkfs string
	// Mode is mmdebstrap's --mode; empty picks "root" when running as root,
	// "unshare" when the user has subordinate id ranges, else Build fails
	// with a *PrivilegeError.
	Mode string
	// Sources are mmdebstrap MIRROR arguments (URLs, "deb ..." lines or
	// files). Empty: the host's own Debian bookworm sources (its apt
	// configuration), or mmdebstrap's default mirror when the host has none.
	Sources []string
	// Size is the image's apparent size; DefaultImageSize if zero. The file
	// is sparse: only the tree uses disk space, the rest is room for guests
	// to write into their COW files.
	Size int64
}

// DefaultImageSize is the apparent size of a built image.
const DefaultImageSize = 4 << 30

// DefaultProfile is the profile "", "default", "debian" and the Kathará
// names resolve to.
const DefaultProfile = "default"

// ImageInfo describes one built image.
type ImageInfo struct {
	Path      string    // absolute path of the image file
	Name      string    // its file name
	Profile   string    // the profile it was built from
	Created   time.Time // when its build finished (from its name)
	Size      int64     // apparent size in bytes
	DiskUsage int64     // bytes allocated on disk (the file is sparse)
	Newest    bool      // the one Resolve returns for its profile
}

// NotBuiltError is Resolve's error when a known image name has no built
// image yet; Ensure builds it.
type NotBuiltError struct {
	Name    string // the name asked for
	Profile string // the profile that would be built
	Dir     string // the store's directory
}

func (e *NotBuiltError) Error() string {
	return fmt.Sprintf("image %q (profile %s) is not built yet in %s: run `umlab image build`", e.Name, e.Profile, e.Dir)
}

// UnknownImageError is Resolve's error for a name that is neither a known
// image name nor a path to an image file.
type UnknownImageError struct {
	Name      string
	Available []string // known names, then the built images' file names
}

func (e *UnknownImageError) Error() string {
	return fmt.Sprintf("unknown image %q: available are %s, or a path to an image file (absolute or starting with ./)",
		e.Name, strings.Join(e.Available, ", "))
}

// ImagePathError is Resolve's error for a path that is not a usable image
// file.
type ImagePathError struct {
	Path string
	Err  error
}

func (e *ImagePathError) Error() string { return fmt.Sprintf("image file %s: %v", e.Path, e.Err) }
func (e *ImagePathError) Unwrap() error { return e.Err }

// DefaultImageDir is $XDG_CACHE_HOME/umlutils/images, or
// ~/.cache/umlutils/images.
func DefaultImageDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "umlutils", "images")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, ".cache", "umlutils", "images")
}

func (s *Images) dir() string {
	if s.Dir != "" {
		return s.Dir
	}
	return DefaultImageDir()
}

// aliases maps the names a lab may use to a profile. Kathará's kathara/base
// image is Debian 12 with network tools, bind and apache (its Dockerfile),
// kathara/frr adds FRR, kathara/bind and kathara/apache add just those
// daemons: the default profile has all of them. Images it does not cover
// (quagga: not in Debian 12; p4, sdn/openvswitch, bird, ...) stay unknown
// rather than silently running without the daemon the lab needs.
var aliases = map[string]string{
	"":               DefaultProfile,
	"default":        DefaultProfile,
	"debian":         DefaultProfile,
	"debian12":       DefaultProfile,
	"bookworm":       DefaultProfile,
	"kathara/base":   DefaultProfile,
	"kathara/frr":    DefaultProfile,
	"kathara/bind":   DefaultProfile,
	"kathara/apache": DefaultProfile,
}

// KnownImageNames lists the image names Resolve maps to a profile, sorted.
func KnownImageNames() []string {
	var names []string
	for n := range aliases {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// profileFor maps a lab's image name to a profile. A Docker-style tag
// (kathara/frr:latest, kathara/frr:8) and registry prefix
// (docker.io/kathara/frr) are ignored: the image is Debian 12's one FRR.
func profileFor(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "docker.io/")
	n = strings.TrimPrefix(n, "registry-1.docker.io/")
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		n = n[:i]
	}
	p, ok := aliases[n]
	return p, ok
}

// imageName matches the names Build gives: profile, UTC build time and an
// optional sequence number when two builds finish in the same second.
var imageName = regexp.MustCompile(`^debian12-([a-z0-9]+)-([0-9]{8}T[0-9]{6}Z)(?:-([0-9]+))?\.img$`)

const stampLayout = "20060102T150405Z"

type parsedName struct {
	profile string
	created time.Time
	seq     int
}

func parseImageName(name string) (parsedName, bool) {
	m := imageName.FindStringSubmatch(name)
	if m == nil {
		return parsedName{}, false
	}
	t, err := time.Parse(stampLayout, m[2])
	if err != nil {
		return parsedName{}, false
	}
	seq := 0
	if m[3] != "" {
		seq, _ = strconv.Atoi(m[3])
	}
	return parsedName{profile: m[1], created: t, seq: seq}, true
}

func newer(a, b parsedName) bool {
	if !a.created.Equal(b.created) {
		return a.created.After(b.created)
	}
	return a.seq > b.seq
}

// List returns the built images, newest first within a profile; profiles
// sorted by name. A missing directory is an empty store.
func (s *Images) List() ([]ImageInfo, error) {
	dir, err := filepath.Abs(s.dir())
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", dir, err)
	}
	type item struct {
		info ImageInfo
		pn   parsedName
	}
	var items []item
	for _, e := range ents {
		pn, ok := parseImageName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		info := ImageInfo{
			Path:    filepath.Join(dir, e.Name()),
			Name:    e.Name(),
			Profile: pn.profile,
			Created: pn.created,
			Size:    fi.Size(),
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			info.DiskUsage = st.Blocks * 512
		}
		items = append(items, item{info, pn})
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].pn.profile != items[j].pn.profile {
			return items[i].pn.profile < items[j].pn.profile
		}
		return newer(items[i].pn, items[j].pn)
	})
	out := make([]ImageInfo, len(items))
	for i, it := range items {
		out[i] = it.info
		out[i].Newest = i == 0 || items[i-1].pn.profile != it.pn.profile
	}
	return out, nil
}

// newest returns the path of the newest built image of profile, or "".
func (s *Images) newest(profile string) (string, error) {
	list, err := s.List()
	if err != nil {
		return "", err
	}
	for _, im := range list {
		if im.Profile == profile && im.Newest {
			return im.Path, nil
		}
	}
	return "", nil
}

// Resolve maps an image name to an image file:
//   - "", "default", "debian" and the Kathará image names this image covers
//     (KnownImageNames, with or without a :tag) give the newest built image
//     of their profile, or a *NotBuiltError;
//   - an absolute path, or one starting with ./ or ../, gives that file,
//     which must be a readable regular file (*ImagePathError otherwise);
//   - the file name of a built image in the store gives that image;
//   - anything else is an *UnknownImageError listing what is available.
func (s *Images) Resolve(name string) (string, error) {
	if profile, ok := profileFor(name); ok {
		if s.Default != "" {
			return checkImageFile(s.Default)
		}
		p, err := s.newest(profile)
		if err != nil {
			return "", err
		}
		if p == "" {
			return "", &NotBuiltError{Name: name, Profile: profile, Dir: s.dir()}
		}
		return p, nil
	}
	if isPath(name) {
		return checkImageFile(name)
	}
	if _, ok := parseImageName(name); ok && !strings.Contains(name, "/") {
		p := filepath.Join(s.dir(), name)
		if _, err := os.Stat(p); err == nil {
			return checkImageFile(p)
		}
	}
	avail := KnownImageNames()
	if list, err := s.List(); err == nil {
		for _, im := range list {
			avail = append(avail, im.Name)
		}
	}
	return "", &UnknownImageError{Name: name, Available: avail}
}

func isPath(name string) bool {
	return filepath.IsAbs(name) || strings.HasPrefix(name, "./") || strings.HasPrefix(name, "../") ||
		name == "." || name == ".."
}

func checkImageFile(name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", &ImagePathError{Path: name, Err: err}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", &ImagePathError{Path: abs, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return "", &ImagePathError{Path: abs, Err: errors.New("not a regular file")}
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", &ImagePathError{Path: abs, Err: err}
	}
	f.Close()
	return abs, nil
}

// Ensure is Resolve that builds a known image on first use. Concurrent
// callers (in this or other processes) wait for one build and share it.
func (s *Images) Ensure(ctx context.Context, name string) (string, error) {
	p, err := s.Resolve(name)
	var nb *NotBuiltError
	if !errors.As(err, &nb) {
		return p, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if p, err := s.newest(nb.Profile); err != nil || p != "" {
		return p, err
	}
	return s.buildLocked(ctx, nb.Profile)
}

// buildInfo is written beside each image as NAME.json: how it was made.
type buildInfo struct {
	Profile      string    `json:"profile"`
	Created      time.Time `json:"created"`
	BuildSeconds float64   `json:"build_seconds"`
	Mode         string    `json:"mode"`
	Command      []string  `json:"command"`
	Packages     []string  `json:"packages"`
	TreeBytes    int64     `json:"tree_bytes,omitempty"`
}

// writeJSON writes v, indented, to a new file of mode perm.
func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), perm)
}
