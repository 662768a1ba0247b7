package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/umlutils/umlutils/cow"
	"github.com/umlutils/umlutils/mconsole"
)

// Snapshots of a lab are copies of its disks (the machines' COW files and
// the lab's shared disks) under .umlab/snapshots/NAME in the lab
// directory: a dot directory, so no lab format takes it for a machine, and
// `umlab clean` never removes it. COW files are small and copied sparse
// (reflinked where the file system can), so saving is fast.
//
// Guarantees: a snapshot of a halted lab is exactly its disks. A snapshot
// of a running lab ("live") first asks every guest's kernel to write its
// dirty buffers (sysrq s), then pauses every guest (mconsole stop), copies
// every disk and resumes them: the disks are taken at one moment for the
// whole lab, as if the power had been cut after a sync. Writes in flight
// or not yet flushed at that moment are not in it; the guests' file
// systems recover as from a power cut (ext4's journal).
type SnapshotInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Live    bool      `json:"live"`
	Files   []string  `json:"files"` // relative to the lab directory
	Bytes   int64     `json:"bytes"` // on disk
}

func (r *Runner) snapshotDir(name string) string {
	return filepath.Join(r.Lab.Dir, ".umlab", "snapshots", name)
}

// labDisks lists the lab's disks that exist, relative to the lab
// directory: MACHINE.disk of every machine and the [ubdN] files inside the
// lab directory.
func (r *Runner) labDisks() []string {
	seen := map[string]bool{}
	var out []string
	add := func(rel string) {
		if !seen[rel] && fileExists(filepath.Join(r.Lab.Dir, rel)) {
			seen[rel] = true
			out = append(out, rel)
		}
	}
	for _, m := range r.Lab.Machines {
		add(m.Name + ".disk")
		for _, o := range m.Options {
			if _, ok := optionIndex(o.Name, "ubd"); ok {
				if file, _, _, err := parseDiskValue(o.Value); err == nil && !filepath.IsAbs(file) {
					if rel := filepath.Clean(file); !strings.HasPrefix(rel, "..") {
						add(rel)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func checkSnapshotName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\\ \t\n") || name[0] == '.' || len(name) > 100 {
		return fmt.Errorf("snapshot name %q: use letters, digits, '-', '_' and '.' (not first)", name)
	}
	return nil
}

// copySparse copies a disk keeping holes, sharing extents where the file
// system allows.
func copySparse(ctx context.Context, src, dst string) error {
	if msg, err := exec.CommandContext(ctx, "cp", "--sparse=always", "--reflink=auto", "--preserve=mode,timestamps", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %v: %s", src, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// SnapshotSave saves the lab's disks as snapshot name.
func (r *Runner) SnapshotSave(ctx context.Context, name string) (*SnapshotInfo, error) {
	if err := checkSnapshotName(name); err != nil {
		return nil, err
	}
	dir := r.snapshotDir(name)
	if fileExists(dir) {
		return nil, fmt.Errorf("snapshot %s exists (umlab snapshot delete %s first)", name, name)
	}
	if err := r.rt.Create(); err != nil {
		return nil, err
	}
	state, err := r.rt.LockedState()
	if err != nil {
		return nil, err
	}
	defer r.rt.Unlock()
	files := r.labDisks()
	if len(files) == 0 {
		return nil, errors.New("the lab has no disks yet (start it once)")
	}
	tmp := filepath.Join(filepath.Dir(dir), "."+name+".tmp")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	info := &SnapshotInfo{Name: name, Created: time.Now().UTC(), Files: files}

	var paused []*mconsole.Client
	resume := func() {
		for _, mc := range paused {
			mc.Command(context.Background(), "go")
			mc.Close()
		}
		paused = nil
	}
	defer resume()
	for _, n := range state.Running() {
		ms := state.Machines[n]
		info.Live = true
		mc := &mconsole.Client{Socket: r.mconsoleSocket(ms), Timeout: 5 * time.Second}
		if _, err := mc.Command(ctx, "sysrq s"); err != nil {
			mc.Close()
			return nil, fmt.Errorf("%s: sync: %w", n, err)
		}
		defer mc.Close()
	}
	if info.Live {
		// Emergency sync runs in the guest's background; give it a moment.
		time.Sleep(time.Second)
		for _, n := range state.Running() {
			mc := &mconsole.Client{Socket: r.mconsoleSocket(state.Machines[n]), Timeout: 5 * time.Second}
			if rep, err := mc.Command(ctx, "stop"); err != nil || (!rep.OK() && !strings.Contains(rep.Text, "Already")) {
				mc.Close()
				return nil, fmt.Errorf("%s: pausing it: %v", n, err)
			}
			paused = append(paused, mc)
		}
	}
	for _, f := range files {
		dst := filepath.Join(tmp, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copySparse(ctx, filepath.Join(r.Lab.Dir, f), dst); err != nil {
			return nil, err
		}
		info.Bytes += diskUsage(dst)
	}
	resume()
	if err := writeJSON(filepath.Join(tmp, "snapshot.json"), info, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return info, nil
}

func diskUsage(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// Snapshots lists the lab's snapshots, oldest first.
func (r *Runner) Snapshots() ([]SnapshotInfo, error) {
	base := filepath.Join(r.Lab.Dir, ".umlab", "snapshots")
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SnapshotInfo
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var info SnapshotInfo
		b, err := os.ReadFile(filepath.Join(base, e.Name(), "snapshot.json"))
		if err != nil || json.Unmarshal(b, &info) != nil {
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// SnapshotRestore rolls the lab's disks back to snapshot name. The lab
// must not run: a running guest's disk cannot change under it.
func (r *Runner) SnapshotRestore(ctx context.Context, name string) error {
	if err := checkSnapshotName(name); err != nil {
		return err
	}
	dir := r.snapshotDir(name)
	var info SnapshotInfo
	b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil || json.Unmarshal(b, &info) != nil {
		return fmt.Errorf("no snapshot %s in %s", name, r.Lab.Dir)
	}
	if fileExists(r.rt.Dir) {
		if err := r.rt.Lock(); err != nil {
			return err
		}
		defer r.rt.Unlock()
	}
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	if run := state.Running(); len(run) > 0 {
		return fmt.Errorf("the lab is running (%s): halt it first (umlab halt), then restore", strings.Join(run, ", "))
	}
	for _, f := range info.Files {
		dst := filepath.Join(r.Lab.Dir, f)
		tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(f)+".restore")
		os.Remove(tmp)
		if err := copySparse(ctx, filepath.Join(dir, f), tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	// Machines that had no disk when the snapshot was taken start afresh.
	in := map[string]bool{}
	for _, f := range info.Files {
		in[f] = true
	}
	for _, m := range r.Lab.Machines {
		if f := m.Name + ".disk"; !in[f] {
			removeDiskFile(filepath.Join(r.Lab.Dir, f))
		}
	}
	return nil
}

// SnapshotDelete removes snapshot name.
func (r *Runner) SnapshotDelete(name string) error {
	if err := checkSnapshotName(name); err != nil {
		return err
	}
	dir := r.snapshotDir(name)
	if !fileExists(filepath.Join(dir, "snapshot.json")) {
		return fmt.Errorf("no snapshot %s in %s", name, r.Lab.Dir)
	}
	return os.RemoveAll(dir)
}

// Commit folds a machine's disk into a new image file (as uml_moo does),
// which labs can then name with [image]=PATH. The machine must not run.
func (r *Runner) Commit(ctx context.Context, machine, image string) error {
	if r.Lab.Machine(machine) == nil {
		return fmt.Errorf("%s: no such machine in %s", machine, r.Lab.Dir)
	}
	state, err := r.rt.Load()
	if err != nil {
		return err
	}
	if ms := state.Machines[machine]; ms != nil && ms.Proc.Alive() {
		return fmt.Errorf("%s is running: halt it first (umlab halt %s)", machine, machine)
	}
	disk := r.diskPath(machine)
	if !fileExists(disk) {
		return fmt.Errorf("%s has no disk (start it once)", machine)
	}
	if fileExists(image) {
		return fmt.Errorf("%s exists; choose a new file name", image)
	}
	return cow.Merge(ctx, disk, image, cow.Options{})
}
