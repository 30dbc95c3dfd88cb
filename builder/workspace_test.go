package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// execOutcome is how an Exec started by startExec ended.
type execOutcome struct {
	code int
	err  error
}

// startExec starts req and waits until its command has printed "started", which it must do first thing.
func startExec(t *testing.T, b *Builder, req ExecRequest) (*lineWatcher, <-chan execOutcome) {
	t.Helper()
	log := &lineWatcher{want: "started", seen: make(chan struct{})}
	done := make(chan execOutcome, 1)
	go func() {
		code, err := b.Exec(t.Context(), req, log)
		done <- execOutcome{code, err}
	}()
	select {
	case <-log.seen:
	case o := <-done:
		t.Fatalf("Exec(%q) = %d, %v before the command started\n%s", req.Args, o.code, o.err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("Exec(%q) did not start its command within a minute\n%s", req.Args, log.String())
	}
	return log, done
}

// wait waits for an Exec started by startExec to end, and fails unless it succeeded.
func wait(t *testing.T, name string, log *lineWatcher, done <-chan execOutcome) {
	t.Helper()
	select {
	case o := <-done:
		if o.code != 0 || o.err != nil {
			t.Fatalf("Exec(%s) = %d, %v, want 0, nil\n%s", name, o.code, o.err, log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Exec(%s) still running after a minute\n%s", name, log.String())
	}
}

// TestExecWorkspaceParallel runs two Execs on one workspace at once, as two parallel steps of a task file: each
// keeps what the other wrote and deleted, and where both changed a file, the one that ends last wins.
func TestExecWorkspaceParallel(t *testing.T) {
	b := newBuilder(t)
	base, _ := pushBase(t, b, newRegistry(t))
	if code, log, err := execLog(t, b, ExecRequest{Image: base, Args: []string{"true"}}); code != 0 || err != nil {
		t.Fatalf("Exec(true) = %d, %v\n%s", code, err, log) // pulls the image, so that both start together
	}
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{"a.txt": "a\n", "b.txt": "b\n", "del-by-a.txt": "x\n", "shared.txt": "host\n",
		"both.txt": "both\n", "hard1": "h\n", "dir-b/old.txt": "old\n"})
	if err := os.Link(filepath.Join(ws, "hard1"), filepath.Join(ws, "hard2")); err != nil {
		t.Fatal(err)
	}

	// b starts after a and ends after it: each one starts from the workspace as it was before the other ended.
	logA, doneA := startExec(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", `echo started; cd /workspace
echo A > new-a.txt; echo A >> a.txt; rm del-by-a.txt hard2; echo A > shared.txt; echo A >> both.txt
mkdir dir-a && echo A > dir-a/f.txt
sleep 2`}})
	logB, doneB := startExec(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", `echo started; cd /workspace
echo B > new-b.txt; echo B >> b.txt; echo B > shared.txt; rm both.txt; rm -r dir-b
sleep 4`}})
	select {
	case <-doneA:
		t.Fatalf("a ended before b started: they did not overlap")
	default:
	}
	wait(t, "a", logA, doneA)
	select {
	case <-doneB:
		t.Fatalf("b ended with a: it did not end last")
	default:
	}
	wait(t, "b", logB, doneB)

	wantFiles(t, ws, map[string]string{
		"new-a.txt":     "A\n",
		"new-b.txt":     "B\n",
		"a.txt":         "a\nA\n",
		"b.txt":         "b\nB\n",
		"del-by-a.txt":  "",
		"hard1":         "h\n",
		"hard2":         "",
		"dir-a/f.txt":   "A\n",
		"dir-b/old.txt": "",
		"shared.txt":    "B\n",       // both wrote it: b ended last
		"both.txt":      "both\nA\n", // b deleted it, but a changed it: a deletion does not undo another's change
	})
	if _, err := os.Stat(filepath.Join(ws, "dir-b")); err == nil {
		t.Errorf("dir-b, deleted by b, is still there")
	}
}

// TestExecWorkspaceHostChanges changes the workspace on the host while an Exec runs, as another step's copy back
// would: what the command did not touch stays as the host has it.
func TestExecWorkspaceHostChanges(t *testing.T) {
	b := newBuilder(t)
	base, _ := pushBase(t, b, newRegistry(t))

	t.Run("a command that touches nothing", func(t *testing.T) {
		ws := t.TempDir()
		writeFiles(t, ws, map[string]string{"changed.txt": "before\n", "deleted.txt": "x\n", "same.txt": "same\n"})
		before := inodes(t, ws)
		log, done := startExec(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", "echo started; sleep 2"}})
		writeFiles(t, ws, map[string]string{"changed.txt": "changed on the host\n", "created.txt": "new on the host\n"})
		if err := os.Remove(filepath.Join(ws, "deleted.txt")); err != nil {
			t.Fatal(err)
		}
		wait(t, "sleep", log, done)
		wantFiles(t, ws, map[string]string{"changed.txt": "changed on the host\n", "created.txt": "new on the host\n",
			"deleted.txt": "", "same.txt": "same\n"})
		if after := inodes(t, ws); after["same.txt"] != before["same.txt"] {
			t.Errorf("same.txt was written again, untouched by the command")
		}
	})

	t.Run("directories deleted or replaced meanwhile", func(t *testing.T) {
		ws := t.TempDir()
		writeFiles(t, ws, map[string]string{"d/old.txt": "old\n", "d/e/f.txt": "f\n", "gone/g.txt": "g\n", "replaced/r.txt": "r\n"})
		// The append changes f.txt but neither of its directories: only f.txt comes back changed, and the
		// directories the host no longer has are made again for it.
		log, done := startExec(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", "echo started; sleep 2; echo cmd >> /workspace/d/e/f.txt"}})
		for _, dir := range []string{"d", "gone", "replaced"} {
			if err := os.RemoveAll(filepath.Join(ws, dir)); err != nil {
				t.Fatal(err)
			}
		}
		writeFiles(t, ws, map[string]string{"replaced": "a file now\n"})
		wait(t, "append", log, done)
		wantFiles(t, ws, map[string]string{"d/e/f.txt": "f\ncmd\n", "d/old.txt": "", "gone/g.txt": "", "replaced": "a file now\n"})
		entries, err := os.ReadDir(ws)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{"d", "replaced"}; !slices.Equal(names, want) {
			t.Errorf("the workspace holds %q, want %q", names, want)
		}
	})
}

// inodes returns the inode of every file under dir, by path: a file written again has a new one.
func inodes(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = fi.Sys().(*syscall.Stat_t).Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExecWorkspaceCost logs how long Execs take on a workspace of 100 MB in 5,000 files, when the command
// changes nothing and when it changes 5 files, and checks that the copy back writes only what the command
// changed. Slow-ish: it writes 100 MB and sends it into buildkitd once.
func TestExecWorkspaceCost(t *testing.T) {
	b := newBuilder(t)
	base, _ := pushBase(t, b, newRegistry(t))
	ws := t.TempDir()
	rng := rand.New(rand.NewChaCha8([32]byte{}))
	data := make([]byte, 20_000)
	for i := range 5000 {
		dir := filepath.Join(ws, fmt.Sprintf("dir%02d", i%50))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%04d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	changed := []string{"dir00/file0000", "dir01/file0001", "dir10/file0010", "dir20/file0020", "dir49/file4999"}
	var change strings.Builder
	for _, f := range changed {
		fmt.Fprintf(&change, "echo changed >> /workspace/%s; ", f)
	}

	start := time.Now()
	if code, log, err := execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"true"}}); code != 0 || err != nil {
		t.Fatalf("Exec(first) = %d, %v\n%s", code, err, log)
	}
	t.Logf("first Exec, the whole workspace sent: %v", time.Since(start))

	tests := []struct {
		name    string
		args    []string
		written []string // the files the copy back writes
	}{
		{name: "unchanged", args: []string{"true"}},
		{name: "5 files changed", args: []string{"sh", "-c", change.String()}, written: changed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var took []time.Duration
			for range 5 {
				before := inodes(t, ws)
				start := time.Now()
				code, log, err := execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: tt.args})
				took = append(took, time.Since(start))
				if code != 0 || err != nil {
					t.Fatalf("Exec() = %d, %v\n%s", code, err, log)
				}
				var written []string
				for p, ino := range inodes(t, ws) {
					if before[p] != ino {
						written = append(written, filepath.ToSlash(p))
					}
				}
				slices.Sort(written)
				if !slices.Equal(written, tt.written) {
					t.Errorf("the copy back wrote %q, want %q", written, tt.written)
				}
			}
			slices.Sort(took)
			t.Logf("100 MB in 5,000 files, %s: whole call %v (median %v)", tt.name, took, took[len(took)/2])
		})
	}
}

func TestExecWorkspace(t *testing.T) {
	b := newBuilder(t)
	base, app, _ := execImages(t, b)
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{"in.txt": "from the host\n", "gone.txt": "to delete\n", "sub/keep.txt": "kept\n"})

	writeFiles(t, ws, map[string]string{"same.txt": "aaaa\n", "tree/a/b.txt": "b\n", "becomes-dir": "file\n"})
	script := `cat /workspace/in.txt
echo written > /workspace/out.txt
rm /workspace/gone.txt
mkdir /workspace/made && echo deep > /workspace/made/deep.txt
chmod 0750 /workspace/made
echo "$GREETING" >> /workspace/count.txt
echo bbbb > /workspace/same.txt
rm -r /workspace/tree
rm /workspace/becomes-dir && mkdir /workspace/becomes-dir && echo now > /workspace/becomes-dir/f.txt
ln -s out.txt /workspace/link`
	code, log, err := execLog(t, b, ExecRequest{Image: base, Workspace: ws, Env: []string{"GREETING=once"}, Args: []string{"sh", "-c", script}})
	if err != nil || code != 0 {
		t.Fatalf("Exec(write) = %d, %v, want 0, nil\n%s", code, err, log)
	}
	if log != "from the host\n" {
		t.Errorf("Exec(write) log = %q, want the host's file", log)
	}
	wantFiles(t, ws, map[string]string{
		"in.txt":            "from the host\n",
		"out.txt":           "written\n",
		"sub/keep.txt":      "kept\n",
		"made/deep.txt":     "deep\n",
		"count.txt":         "once\n",
		"same.txt":          "bbbb\n",
		"tree/a/b.txt":      "",
		"becomes-dir/f.txt": "now\n",
		"link":              "written\n",
	})
	if target, err := os.Readlink(filepath.Join(ws, "link")); err != nil || target != "out.txt" {
		t.Errorf("Readlink(link) = %q, %v, want out.txt", target, err)
	}
	if _, err := os.Stat(filepath.Join(ws, "tree")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(tree) = %v, want the deleted directory gone", err)
	}
	if fi, err := os.Stat(filepath.Join(ws, "made")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("made/ = %v, %v, want mode 0750", fi.Mode(), err)
	} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("made/ is owned by %d, want %d (this process)", st.Uid, os.Getuid())
	}

	// A second step sees the first's writes, and runs again even though nothing changed since: its append
	// shows that it ran.
	for i, want := range []string{"written\nonce\nrun\n", "written\nonce\nrun\nrun\n"} {
		code, log, err = execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", "echo run >> /workspace/count.txt; cat /workspace/out.txt /workspace/count.txt"}})
		if err != nil || code != 0 || log != want {
			t.Fatalf("Exec(read %d) = %d, %v, log %q, want 0, nil, %q", i, code, err, log, want)
		}
	}
	wantFiles(t, ws, map[string]string{"count.txt": "once\nrun\nrun\n", "gone.txt": ""})

	// A failing step leaves the workspace as it was.
	code, log, err = execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"sh", "-c", `rm /workspace/in.txt; echo x > /workspace/failed.txt; exit 2`}})
	if code != 2 || proto.ErrorCode(err) != proto.Invalid {
		t.Fatalf("Exec(fail) = %d, %v, want 2 and kind %q\n%s", code, err, proto.Invalid, log)
	}
	wantFiles(t, ws, map[string]string{"in.txt": "from the host\n", "failed.txt": ""})

	// A user other than root writes to the workspace as docker run's would: only where the modes let it. What
	// it writes stays its own on the host when Kiln runs as root, and is Kiln's otherwise.
	code, log, err = execLog(t, b, ExecRequest{Image: app, Workspace: ws, Args: []string{"touch /workspace/user.txt"}})
	if code != 1 || err == nil || !strings.Contains(log, "Permission denied") {
		t.Errorf("Exec(as 1000) = %d, %v, log %q, want 1 and Permission denied", code, err, log)
	}
	if err := os.Mkdir(filepath.Join(ws, "open"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(ws, "open"), 0o777) // past the umask
	code, log, err = execLog(t, b, ExecRequest{Image: app, Workspace: ws, Args: []string{"echo mine > /workspace/open/user.txt"}})
	if code != 0 || err != nil {
		t.Fatalf("Exec(as 1000 in open/) = %d, %v\n%s", code, err, log)
	}
	wantUID := os.Getuid()
	if wantUID == 0 {
		wantUID = 1000
	}
	if fi, err := os.Stat(filepath.Join(ws, "open", "user.txt")); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != wantUID {
		t.Errorf("Stat(open/user.txt) = %v, want owned by %d", err, wantUID)
	}
	code, log, err = execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"stat", "-c", "%u", "/workspace/open/user.txt"}})
	if code != 0 || err != nil || log != strconv.Itoa(wantUID)+"\n" {
		t.Errorf("Exec(stat open/user.txt) = %d, %v, log %q, want owner %d", code, err, log, wantUID)
	}
}

// wantFiles checks the content of files under dir; "" wants the file not to exist.
func wantFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case want == "" && !errors.Is(err, os.ErrNotExist):
			t.Errorf("%s = %q, %v, want no such file", name, b, err)
		case want != "" && (err != nil || string(b) != want):
			t.Errorf("%s = %q, %v, want %q", name, b, err, want)
		}
	}
}
