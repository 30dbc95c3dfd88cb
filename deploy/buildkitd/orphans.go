package buildkitd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// orphanTimeout bounds how long ending the containers of an earlier buildkitd may take, and how long a killed
// container's processes have to be gone.
const orphanTimeout = 30 * time.Second

// executorDir is where buildkitd's OCI worker with the overlayfs snapshotter makes each container's bundle,
// under its --root: runc.NewWorkerOpt puts the worker in "runc-"+snapshotter and its runc executor in "executor"
// below that (buildkit v0.34.2, worker/runc and executor/runcexecutor). The bundle of container ID is
// executorDir/ID, with the container's root filesystem mounted at executorDir/ID/rootfs.
//
// The executor leaves runc's own --root unset, so runc keeps the containers' state where it does by default
// (/run/runc for root), shared with every other buildkitd on the machine: a container is told to be one of this
// buildkitd's by its bundle.
const executorDir = "runc-overlayfs/executor"

// runc runs the runc binary that buildkitd's OCI worker runs its containers with.
type runc struct {
	bin      string // "" for "runc" on PATH, as buildkitd finds it
	stateDir string // runc's --root; "" for runc's default, where buildkitd's containers are
}

// container is one entry of `runc list -f json`.
type container struct {
	ID     string `json:"id"`
	PID    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// mountPoolDir is where the same worker mounts snapshots to share them, a container's root filesystem among
// them (cache.ManagerOpt.MountPoolRoot); buildkitd unmounts what an earlier one left there when it starts.
const mountPoolDir = "runc-overlayfs/cachemounts"

// endOrphans ends the build containers that an earlier buildkitd on root left behind, so that no build step
// outlives the buildkitd that ran it: a buildkitd killed with SIGKILL takes its runc processes with it, but the
// containers they ran go on, reparented to PID 1, beside the attempt that runs the step again. For each bundle
// under root's executor directory it kills every process of the container runc ran there, waits until they are
// gone, deletes the container from runc's state, unmounts its root filesystem and removes the bundle; then it
// unmounts what is left in the mount pool, as buildkitd would when it next starts.
//
// It does nothing while a buildkitd holds root's lock: the containers are that buildkitd's own. The Supervisor
// calls it before it first starts buildkitd and whenever buildkitd has exited, so a `kiln serve` killed with its
// buildkitd ends the old containers when it starts again on the same data directory.
func endOrphans(ctx context.Context, rc runc, root string) error {
	ctx, cancel := context.WithTimeout(ctx, orphanTimeout)
	defer cancel()
	bundles, err := dirsIn(root, executorDir)
	if err != nil {
		return fmt.Errorf("finding buildkitd's containers: %w", err)
	}
	pool, err := dirsIn(root, mountPoolDir)
	if err != nil {
		return fmt.Errorf("finding buildkitd's mounts: %w", err)
	}
	if len(bundles) == 0 && len(pool) == 0 {
		return nil
	}
	unlock, err := lockRoot(root)
	if err != nil {
		return err
	}
	defer unlock()

	var errs []error
	if len(bundles) > 0 {
		list, err := rc.list(ctx)
		if err != nil {
			return err
		}
		for _, c := range list {
			if bundles[c.Bundle] {
				if err := rc.end(ctx, c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for b := range bundles {
		if err := removeBundle(b); err != nil {
			errs = append(errs, err)
		}
	}
	for m := range pool {
		if err := unmountAll(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dirsIn returns the directories in root/sub, by their absolute paths with symbolic links resolved, as buildkitd
// names them; none when root/sub does not exist. Files beside them (hosts, resolv.conf, runc's log) are left out.
func dirsIn(root, sub string) (map[string]bool, error) {
	dir, err := filepath.Abs(filepath.Join(root, sub))
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	dirs := make(map[string]bool)
	for _, e := range entries {
		if e.IsDir() {
			dirs[filepath.Join(dir, e.Name())] = true
		}
	}
	return dirs, nil
}

// lockRoot takes the lock buildkitd holds on root while it runs, and returns the func that releases it. It
// returns an error when a buildkitd holds it.
func lockRoot(root string) (unlock func(), err error) {
	path := filepath.Join(root, "buildkitd.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("a buildkitd is running on %s: its containers are its own", root)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// list returns the containers runc knows of, this buildkitd's and any other's.
func (rc runc) list(ctx context.Context) ([]container, error) {
	out, err := rc.run(ctx, "list", "-f", "json")
	if err != nil {
		return nil, err
	}
	var list []container
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("reading runc list: %w", err)
	}
	return list, nil
}

// end kills every process of container c, waits until they are gone and deletes c from runc's state.
func (rc runc) end(ctx context.Context, c container) error {
	procs := rc.procs(ctx, c)
	_, killErr := rc.run(ctx, "kill", "--all", c.ID, "KILL") // fails when c has stopped already
	for _, p := range procs {
		if err := p.wait(ctx); err != nil {
			return fmt.Errorf("ending container %s: %w", c.ID, errors.Join(err, killErr))
		}
	}
	_, err := rc.run(ctx, "delete", "--force", c.ID)
	return err
}

// procs returns the processes of container c still running: those in its cgroup, and its init.
func (rc runc) procs(ctx context.Context, c container) []proc {
	var pids []int
	if out, err := rc.run(ctx, "ps", "-f", "json", c.ID); err == nil {
		_ = json.Unmarshal(out, &pids)
	}
	if c.PID > 0 {
		pids = append(pids, c.PID)
	}
	var procs []proc
	for _, pid := range pids {
		if p, ok := procOf(pid); ok {
			procs = append(procs, p)
		}
	}
	return procs
}

// run runs runc with args and returns its standard output.
func (rc runc) run(ctx context.Context, args ...string) ([]byte, error) {
	bin := rc.bin
	if bin == "" {
		bin = "runc"
	}
	if rc.stateDir != "" {
		args = append([]string{"--root", rc.stateDir}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w: %s", args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// proc is one process, told apart from a later one with the same id by its start time.
type proc struct {
	pid   int
	start string // field 22 of /proc/pid/stat, in clock ticks since boot
}

// procOf returns process pid, and false when it has exited: gone from /proc, or a zombie, which the process
// that inherited it may never reap.
func procOf(pid int) (proc, bool) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, false
	}
	// The fields after the parenthesised command name: state, then the starttime as their 20th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return proc{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 || fields[0] == "Z" {
		return proc{}, false
	}
	return proc{pid: pid, start: fields[19]}, true
}

// wait returns once p has exited, or an error when ctx ends first.
func (p proc) wait(ctx context.Context) error {
	for {
		if now, ok := procOf(p.pid); !ok || now.start != p.start {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("process %d still running after SIGKILL", p.pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeBundle unmounts a bundle's root filesystem, which the buildkitd that mounted it did not live to
// unmount, and removes the bundle. A root filesystem that cannot be unmounted is left alone, with its files.
func removeBundle(bundle string) error {
	if err := unmountAll(filepath.Join(bundle, "rootfs")); err != nil {
		return err
	}
	if err := os.RemoveAll(bundle); err != nil {
		return fmt.Errorf("removing container bundle %s: %w", bundle, err)
	}
	return nil
}

// unmountAll takes every mount off dir and removes it, an empty directory then. It returns an error, and
// removes nothing, when dir stays mounted or holds files.
func unmountAll(dir string) error {
	return unmountRemove(dir, 0)
}

// unmountRemove takes every mount off path with the unmount flags given and removes it: a directory, empty
// then, or the file a namespace was bind-mounted on.
func unmountRemove(path string, flags int) error {
	// A path may be mounted more than once; each unmount takes off the top one.
	for syscall.Unmount(path, flags) == nil {
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
