package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
)

// contextTime is the modification time of every file of the isolation tests' contexts: BuildKit tells the files
// of a context it holds from the ones it is sent by name, size, mode and time alone, so these contexts differ
// from each other only in what their files hold.
var contextTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// contextDir writes files into a new directory and gives every path in it the time contextTime.
func contextDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, contextTime, contextTime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildContexts submits every context as a run tagged with its tag, all at once, and waits for each to succeed.
func buildContexts(t *testing.T, k *kiln, dirs, tags []string) {
	t.Helper()
	runs := make([]string, len(dirs))
	var wg sync.WaitGroup
	errs := make([]error, len(dirs))
	for i := range dirs {
		wg.Go(func() {
			run, err := k.submitDir(t, dirs[i], api.BuildRequest{Tags: []string{tags[i]}})
			if err == nil {
				runs[i] = run.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, id := range runs {
		if errs[i] != nil {
			t.Fatalf("SubmitRun(%s) = %v", tags[i], errs[i])
		}
		if r := k.waitDone(t, id); r.Status != "Succeeded" {
			t.Fatalf("run %s (%s) is %s: %s\n%s", id, tags[i], r.Status, r.Error, k.logOf(t, id))
		}
	}
}

// TestBuildSeesOnlyItsOwnContext: a build's image holds its own context's files, never those of another build
// whose files have the same names, sizes, modes and times, whether the builds come one after the other or
// together. Slow-ish: 52 builds, 10 at a time.
func TestBuildSeesOnlyItsOwnContext(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 10 })
	reg := k.RegistryAddr()
	const dockerfile = "FROM scratch\nCOPY . /ctx/\n"

	t.Run("one after the other", func(t *testing.T) {
		for i, env := range []string{"TOKEN=first-secret\n", "TOKEN=again-secret\n"} { // one size
			tag := fmt.Sprintf("iso/env:%d", i+1)
			buildContexts(t, k, []string{contextDir(t, map[string]string{"Dockerfile": dockerfile, ".env": env})}, []string{tag})
			if got, _ := imageFile(t, reg+"/"+tag, "/ctx/.env"); got != env {
				t.Errorf("/ctx/.env in %s = %q, want %q", tag, got, env)
			}
		}
	})

	t.Run("50 at once", func(t *testing.T) {
		const n = 50
		dirs, tags := make([]string, n), make([]string, n)
		for i := range n {
			dirs[i] = contextDir(t, map[string]string{"Dockerfile": dockerfile, "f.txt": fmt.Sprintf("build %03d\n", i)})
			tags[i] = fmt.Sprintf("iso/many:%d", i)
		}
		buildContexts(t, k, dirs, tags)
		mixed := 0
		for i := range n {
			want := fmt.Sprintf("build %03d\n", i)
			if got, _ := imageFile(t, reg+"/"+tags[i], "/ctx/f.txt"); got != want {
				mixed++
				t.Errorf("/ctx/f.txt in %s = %q, want %q", tags[i], got, want)
			}
		}
		t.Logf("%d of %d images hold another build's f.txt", mixed, n)
	})
}
