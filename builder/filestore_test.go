package builder

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitFetchLinksFiles checks the file store behind checkouts: the first checkout of a repository keeps no
// files, the second keeps them, the third links them, two entries of one checkout never share a file, and a
// store file changed through a checkout's link is not handed to the next checkout.
func TestGitFetchLinksFiles(t *testing.T) {
	srv := newGitServer(t, "")
	repo := srv.newRepo(t, "app", true)
	v1 := repo.commit(t, "main", func(work string) {
		writeFiles(t, work, map[string]string{"a.txt": "same\n", "b.txt": "same\n", "run.sh": "echo hi\n", "x.txt": "x\n"})
		if err := os.Chmod(filepath.Join(work, "run.sh"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	want := map[string]string{"a.txt": "-rw-r--r-- same\n", "b.txt": "-rw-r--r-- same\n", "run.sh": "-rwxr-xr-x echo hi\n", "x.txt": "-rw-r--r-- x\n"}
	c := NewGitCache(t.TempDir())
	fetch := func(wantLog string) string {
		t.Helper()
		dest := t.TempDir()
		var log bytes.Buffer
		if _, err := c.Fetch(t.Context(), GitRequest{URL: repo.URL, Commit: v1}, dest, &log); err != nil {
			t.Fatalf("Fetch = %v\n%s", err, log.String())
		}
		if files := listTree(t, dest); !maps.Equal(files, want) {
			t.Errorf("Fetch checked out\n%q\nwant\n%q", files, want)
		}
		if !strings.Contains(log.String(), wantLog) {
			t.Errorf("Fetch logged\n%s\nwant %q", log.String(), wantLog)
		}
		return dest
	}
	same := func(dir1, dir2, name1, name2 string) bool {
		t.Helper()
		fi1, err := os.Stat(filepath.Join(dir1, name1))
		if err != nil {
			t.Fatal(err)
		}
		fi2, err := os.Stat(filepath.Join(dir2, name2))
		if err != nil {
			t.Fatal(err)
		}
		return os.SameFile(fi1, fi2)
	}

	first := fetch("(0 linked from earlier checkouts)")  // the repository's first: the store is left alone
	second := fetch("(0 linked from earlier checkouts)") // the store takes its files
	if same(first, second, "x.txt", "x.txt") {
		t.Errorf("x.txt of the first checkout went into the store: the first of a repository should keep none")
	}
	third := fetch("(3 linked from earlier checkouts)") // a.txt, run.sh and x.txt; b.txt is a copy
	for _, name := range []string{"a.txt", "run.sh", "x.txt"} {
		if !same(second, third, name, name) {
			t.Errorf("%s of the third checkout is not a link to the second's", name)
		}
	}
	for _, dir := range []string{second, third} {
		if same(dir, dir, "a.txt", "b.txt") {
			t.Errorf("a.txt and b.txt of one checkout are one file: BuildKit would send them as hard links")
		}
	}

	// Change two files through the third checkout's links: the fourth must not get them.
	f, err := os.OpenFile(filepath.Join(third, "x.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("changed in place\n")
	f.Close()
	if err := os.Chmod(filepath.Join(third, "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	fourth := fetch("(1 linked from earlier checkouts)") // a.txt only
	for _, name := range []string{"run.sh", "x.txt"} {
		if same(third, fourth, name, name) {
			t.Errorf("%s of the fourth checkout is the file changed through the third", name)
		}
	}
}
