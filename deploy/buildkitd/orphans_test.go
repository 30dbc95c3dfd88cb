package buildkitd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// startContainer runs a container with runc, detached, as buildkitd would have: its bundle at bundle, its root
// filesystem a tmpfs mounted at bundle/rootfs holding a static busybox, its process args. It returns the pid of
// the container's init. The test's cleanup ends the container and unmounts its root filesystem, if the code
// under test has not.
func startContainer(t *testing.T, rc runc, bundle, id string, args ...string) int {
	t.Helper()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", rootfs, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mounting a tmpfs at %s: %v", rootfs, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(rootfs, syscall.MNT_DETACH) })
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("reading a static busybox (Debian's busybox-static): %v", err)
	}
	if err := os.Mkdir(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = args
	if b, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The container keeps runc's stdout and stderr: a file, not a pipe that would never reach its end.
	out, err := os.Create(filepath.Join(t.TempDir(), "runc.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("runc", "--root", rc.stateDir, "run", "--detach", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("runc run %s: %v: %s", id, err, b)
	}
	t.Cleanup(func() {
		_, _ = rc.run(context.Background(), "kill", "--all", id, "KILL")
		_, _ = rc.run(context.Background(), "delete", "--force", id)
	})
	list, err := rc.list(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == id {
			return c.PID
		}
	}
	t.Fatalf("runc list does not show container %s after runc run", id)
	return 0
}

// TestEndOrphans: the containers a buildkitd on root left are ended, their processes gone, their state deleted,
// their root filesystems unmounted and their bundles removed. Another root's container is left running, and
// nothing is touched while a buildkitd holds root's lock.
func TestEndOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("runc needs root; run the tests as root")
	}
	tests := []struct {
		name string
		// args is the left container's process; nil for a bundle whose container runc never ran.
		args    []string
		locked  bool // a buildkitd holds root's lock
		wantErr string
	}{
		{name: "running step", args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox sleep 3000; echo never"}},
		{name: "step with children", args: []string{"/bin/busybox", "sh", "-c", "/bin/busybox sleep 3000 & /bin/busybox sleep 3001 & wait"}},
		{name: "step already exited", args: []string{"/bin/busybox", "true"}},
		{name: "bundle with no container"},
		{name: "buildkitd running", args: []string{"/bin/busybox", "sleep", "3000"}, locked: true, wantErr: "a buildkitd is running"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := runc{stateDir: t.TempDir()}
			root, other := t.TempDir(), t.TempDir()
			id := "orphan-" + strings.ReplaceAll(tt.name, " ", "-")
			bundle := filepath.Join(root, executorDir, id)
			var pid int
			if tt.args != nil {
				pid = startContainer(t, rc, bundle, id, tt.args...)
			} else if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o700); err != nil {
				t.Fatal(err)
			}
			otherPID := startContainer(t, rc, filepath.Join(other, executorDir, "neighbour"), "neighbour-"+string(rune('a'+i)),
				"/bin/busybox", "sleep", "3000")
			if tt.locked {
				unlock, err := lockRoot(root)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(unlock)
			}

			procs := rc.procs(t.Context(), container{ID: id, PID: pid})
			err := endOrphans(t.Context(), rc, root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("endOrphans(%s) = %v, want an error containing %q", root, err, tt.wantErr)
				}
				if dead(pid) {
					t.Errorf("endOrphans(%s) with a buildkitd running ended its container's process %d", root, pid)
				}
				return
			}
			if err != nil {
				t.Fatalf("endOrphans(%s) = %v", root, err)
			}
			for _, p := range procs {
				if !dead(p.pid) {
					t.Errorf("after endOrphans(%s): the container's process %d is still running", root, p.pid)
				}
			}
			if dead(otherPID) {
				t.Errorf("after endOrphans(%s): process %d of another root's container was ended", root, otherPID)
			}
			list, err := rc.list(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list {
				if c.ID == id {
					t.Errorf("after endOrphans(%s): runc still lists container %s (%s)", root, id, c.Status)
				}
			}
			if _, err := os.Stat(bundle); !os.IsNotExist(err) {
				t.Errorf("after endOrphans(%s): bundle %s is still there (%v)", root, bundle, err)
			}
		})
	}
}

// TestEndOrphansNothingToDo: a root where no buildkitd ran a container needs no runc at all.
func TestEndOrphansNothingToDo(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, executorDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, executorDir, "resolv.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{root, filepath.Join(t.TempDir(), "fresh")} {
		if err := endOrphans(t.Context(), runc{bin: "/nonexistent/runc"}, r); err != nil {
			t.Errorf("endOrphans(%s) = %v, want nil", r, err)
		}
	}
}

// TestEndOrphansMountPool: a snapshot an earlier buildkitd left mounted in its mount pool is unmounted, and its
// mount point removed; its files, which belong to the snapshot, stay where they are.
func TestEndOrphansMountPool(t *testing.T) {
	root := t.TempDir()
	snapshot := filepath.Join(t.TempDir(), "snapshot")
	mnt := filepath.Join(root, mountPoolDir, "buildkit123")
	for _, d := range []string{snapshot, mnt} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(snapshot, "file"), []byte("layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(snapshot, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting %s: %v", mnt, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })

	if err := endOrphans(t.Context(), runc{bin: "/nonexistent/runc"}, root); err != nil {
		t.Fatalf("endOrphans(%s) = %v", root, err)
	}
	if _, err := os.Stat(mnt); !os.IsNotExist(err) {
		t.Errorf("after endOrphans(%s): %s is still there (%v)", root, mnt, err)
	}
	if b, err := os.ReadFile(filepath.Join(snapshot, "file")); err != nil || string(b) != "layer" {
		t.Errorf("after endOrphans(%s): the snapshot's file = %q, %v; want it untouched", root, b, err)
	}
}
