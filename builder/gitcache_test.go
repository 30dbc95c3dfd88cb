package builder

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// TestGitFetchIncremental checks that the second build of a repository fetches only what is new: the cache
// keeps the objects of the first, and the second fetch is a small fraction of the first.
func TestGitFetchIncremental(t *testing.T) {
	tests := []struct {
		name     string
		byCommit bool
	}{
		{name: "by commit", byCommit: true},
		{name: "branch head", byCommit: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newGitServer(t, "")
			repo := srv.newRepo(t, "big", true)
			rnd := rand.New(rand.NewPCG(1, 2))
			files := map[string]string{}
			for i := range 200 {
				files[fmt.Sprintf("dir%d/file%d.bin", i%10, i)] = randomText(rnd, 8<<10)
			}
			v1 := repo.commit(t, "main", func(work string) { writeFiles(t, work, files) })
			v2 := ""
			dir := t.TempDir()
			c := NewGitCache(dir)
			fetch := func(want string) (int64, string) {
				t.Helper()
				req := GitRequest{URL: repo.URL, Ref: "main"}
				if tt.byCommit {
					req.Commit = want
				}
				before := srv.bytes.Load()
				dest := t.TempDir()
				var log bytes.Buffer
				got, err := c.Fetch(t.Context(), req, dest, &log)
				if err != nil || got != want {
					t.Fatalf("Fetch(%+v) = %s, %v, want %s\n%s", req, got, err, want, log.String())
				}
				if content := listTree(t, dest)["dir3/file3.bin"]; want == v2 && content != "-rw-r--r-- changed\n" {
					t.Errorf("Fetch(%+v) checked out dir3/file3.bin = %.40q, want the changed file", req, content)
				}
				return srv.bytes.Load() - before, log.String()
			}
			first, _ := fetch(v1)
			v2 = repo.commit(t, "main", func(work string) { writeFiles(t, work, map[string]string{"dir3/file3.bin": "changed\n"}) })
			second, log := fetch(v2)
			t.Logf("bytes from the server: first fetch %d, second %d", first, second)
			if second*20 > first {
				t.Errorf("the second fetch took %d bytes from the server, the first %d: want less than a twentieth", second, first)
			}
			// New: the commit, the root tree, dir3's tree and the file.
			if !strings.Contains(log, "(cache: 4 objects new") {
				t.Errorf("the second fetch logged\n%s\nwant 4 objects new", log)
			}
			cached, err := git.PlainOpen(filepath.Join(dir, cacheKey(repo.URL)+".git"))
			if err != nil {
				t.Fatal(err)
			}
			old, err := cached.CommitObject(plumbing.NewHash(v1))
			if err != nil {
				t.Fatalf("the cache lost the first commit: %v", err)
			}
			f, err := old.File("dir3/file3.bin")
			if err != nil {
				t.Fatalf("the cache lost the first commit's files: %v", err)
			}
			if content, err := f.Contents(); err != nil || content != files["dir3/file3.bin"] {
				t.Errorf("the cache's first dir3/file3.bin = %.20q, %v, want the first content", content, err)
			}
		})
	}
}

// randomText is n bytes of letters that do not compress much.
func randomText(rnd *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('!' + rnd.IntN(94))
	}
	return string(b)
}

// TestGitFetchConcurrent runs eight Fetches of the same commit at once on one cache directory: in one GitCache
// (the lock per repository keeps them apart) and in two, as two processes would share it (only the file lock
// does). All must succeed, and the objects must come over the wire once.
func TestGitFetchConcurrent(t *testing.T) {
	tests := []struct {
		name   string
		caches int
	}{
		{name: "one process", caches: 1},
		{name: "two processes sharing the directory", caches: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newGitServer(t, "")
			repo := srv.newRepo(t, "app", true)
			v1 := repo.commit(t, "main", appV1(t))
			dir := t.TempDir()
			var caches []*GitCache
			for range tt.caches {
				caches = append(caches, NewGitCache(dir))
			}
			dests := make([]string, 8)
			got := make([]string, 8)
			errs := make([]error, 8)
			var wg sync.WaitGroup
			for i := range dests {
				dests[i] = t.TempDir()
				wg.Go(func() {
					got[i], errs[i] = caches[i%len(caches)].Fetch(t.Context(), GitRequest{URL: repo.URL, Ref: "main", Commit: v1}, dests[i], nil)
				})
			}
			wg.Wait()
			for i := range dests {
				if errs[i] != nil || got[i] != v1 {
					t.Errorf("Fetch %d = %s, %v, want %s", i, got[i], errs[i], v1)
					continue
				}
				if files := listTree(t, dests[i]); !maps.Equal(files, v1Files) {
					t.Errorf("Fetch %d checked out\n%q\nwant\n%q", i, files, v1Files)
				}
			}
			if n := srv.uploadPacks.Load(); n != 1 {
				t.Errorf("the server sent objects %d times, want once", n)
			}
		})
	}
}
