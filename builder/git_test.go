package builder

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// appV1 and appV2 are the two commits of the test application: v1 with an executable script, a symbolic link and
// a subdirectory, v2 changing the Dockerfile and adding a file.
func appV1(t *testing.T) func(string) {
	return func(work string) {
		writeFiles(t, work, map[string]string{
			"Dockerfile":       "FROM scratch\nCOPY . /\n",
			"run.sh":           "#!/bin/sh\necho hi\n",
			"app/main.go":      "package main\n",
			"app/sub/data.txt": "data\n",
		})
		if err := os.Chmod(filepath.Join(work, "run.sh"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("app/main.go", filepath.Join(work, "main.go")); err != nil {
			t.Fatal(err)
		}
	}
}

func appV2(t *testing.T) func(string) {
	return func(work string) {
		writeFiles(t, work, map[string]string{"Dockerfile": "FROM scratch\nCOPY app /\n", "NEW": "new\n"})
	}
}

// v1Files and v2Files are what a checkout of appV1 and appV2 holds.
var v1Files = map[string]string{
	"Dockerfile":       "-rw-r--r-- FROM scratch\nCOPY . /\n",
	"run.sh":           "-rwxr-xr-x #!/bin/sh\necho hi\n",
	"main.go":          "-> app/main.go",
	"app":              "d",
	"app/main.go":      "-rw-r--r-- package main\n",
	"app/sub":          "d",
	"app/sub/data.txt": "-rw-r--r-- data\n",
}

var v2Files = func() map[string]string {
	m := maps.Clone(v1Files)
	m["Dockerfile"] = "-rw-r--r-- FROM scratch\nCOPY app /\n"
	m["NEW"] = "-rw-r--r-- new\n"
	return m
}()

func TestGitFetch(t *testing.T) {
	srv := newGitServer(t, "")
	repo := srv.newRepo(t, "app", true)
	v1 := repo.commit(t, "main", appV1(t))
	repo.tag(t, "v1")
	v2 := repo.commit(t, "main", appV2(t))
	pr := repo.commit(t, "refs/pull/7/head", func(work string) { writeFiles(t, work, map[string]string{"PR": "pr\n"}) })
	prFiles := maps.Clone(v2Files)
	prFiles["PR"] = "-rw-r--r-- pr\n"

	tests := []struct {
		name       string
		req        GitRequest
		wantCommit string
		want       map[string]string
	}{
		{name: "commit", req: GitRequest{Ref: "main", Commit: v1}, wantCommit: v1, want: v1Files},
		{name: "commit in capitals", req: GitRequest{Ref: "main", Commit: strings.ToUpper(v1)}, wantCommit: v1, want: v1Files},
		{name: "branch head", req: GitRequest{Ref: "main"}, wantCommit: v2, want: v2Files},
		{name: "full branch name", req: GitRequest{Ref: "refs/heads/main"}, wantCommit: v2, want: v2Files},
		{name: "remote HEAD", req: GitRequest{}, wantCommit: v2, want: v2Files},
		{name: "annotated tag", req: GitRequest{Ref: "refs/tags/v1"}, wantCommit: v1, want: v1Files},
		{name: "tag by short name", req: GitRequest{Ref: "v1"}, wantCommit: v1, want: v1Files},
		{name: "pull request ref", req: GitRequest{Ref: "refs/pull/7/head"}, wantCommit: pr, want: prFiles},
		{name: "subdir", req: GitRequest{Ref: "main", Commit: v1, Subdir: "app"}, wantCommit: v1,
			want: map[string]string{"main.go": "-rw-r--r-- package main\n", "sub": "d", "sub/data.txt": "-rw-r--r-- data\n"}},
		{name: "nested subdir, untidy", req: GitRequest{Ref: "main", Commit: v1, Subdir: "./app/sub/"}, wantCommit: v1,
			want: map[string]string{"data.txt": "-rw-r--r-- data\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cache := range []string{"cold", "warm"} {
				c := NewGitCache(filepath.Join(t.TempDir(), "cache"))
				if cache == "warm" {
					// The cache already holds the other commit of main, which must not leak into this checkout.
					other := v2
					if tt.wantCommit == v2 {
						other = v1
					}
					if _, err := c.Fetch(t.Context(), GitRequest{URL: repo.URL, Ref: "main", Commit: other}, t.TempDir(), nil); err != nil {
						t.Fatalf("filling the cache: %v", err)
					}
				}
				req := tt.req
				req.URL = repo.URL
				dest := t.TempDir()
				var log bytes.Buffer
				got, err := c.Fetch(t.Context(), req, dest, &log)
				if err != nil {
					t.Fatalf("%s cache: Fetch(%+v) = %v\n%s", cache, req, err, log.String())
				}
				if got != tt.wantCommit {
					t.Errorf("%s cache: Fetch(%+v) = %s, want %s", cache, req, got, tt.wantCommit)
				}
				if files := listTree(t, dest); !maps.Equal(files, tt.want) {
					t.Errorf("%s cache: Fetch(%+v) checked out\n%q\nwant\n%q", cache, req, files, tt.want)
				}
				if !strings.Contains(log.String(), "Fetching "+repo.URL+" ") || !strings.Contains(log.String(), "Checked out ") {
					t.Errorf("%s cache: Fetch(%+v) logged\n%s\nwant the fetch and the checkout", cache, req, log.String())
				}
			}
		})
	}
}

// TestGitFetchPinsCommit checks that a branch that moved on after a push still builds the commit pushed, whether
// the server lets a commit be fetched by its hash or Fetch has to look for it in the branch's history.
func TestGitFetchPinsCommit(t *testing.T) {
	tests := []struct {
		name     string
		allowSHA bool
		wantLog  string
	}{
		{name: "by hash", allowSHA: true, wantLog: "cache: "},
		{name: "deepening the branch", allowSHA: false, wantLog: "in the history of main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newGitServer(t, "")
			repo := srv.newRepo(t, "app", tt.allowSHA)
			v1 := repo.commit(t, "main", appV1(t))
			c := NewGitCache(t.TempDir())
			if got, err := c.Fetch(t.Context(), GitRequest{URL: repo.URL, Ref: "main"}, t.TempDir(), nil); err != nil || got != v1 {
				t.Fatalf("Fetch(main) = %s, %v, want %s", got, err, v1)
			}
			repo.commit(t, "main", appV2(t))
			v3 := repo.commit(t, "main", func(work string) { writeFiles(t, work, map[string]string{"Dockerfile": "FROM scratch\n"}) })

			for _, cache := range []*GitCache{c, NewGitCache(t.TempDir())} {
				dest := t.TempDir()
				var log bytes.Buffer
				got, err := cache.Fetch(t.Context(), GitRequest{URL: repo.URL, Ref: "main", Commit: v1}, dest, &log)
				if err != nil || got != v1 {
					t.Fatalf("Fetch(main at v1) = %s, %v, want %s\n%s", got, err, v1, log.String())
				}
				if files := listTree(t, dest); !maps.Equal(files, v1Files) {
					t.Errorf("Fetch(main at v1) checked out\n%q\nwant\n%q", files, v1Files)
				}
				if cache != c && !strings.Contains(log.String(), tt.wantLog) {
					t.Errorf("Fetch(main at v1) logged\n%s\nwant %q", log.String(), tt.wantLog)
				}
			}
			if got, err := c.Fetch(t.Context(), GitRequest{URL: repo.URL, Ref: "main"}, t.TempDir(), nil); err != nil || got != v3 {
				t.Errorf("Fetch(main) = %s, %v, want the head %s", got, err, v3)
			}
		})
	}
}

func TestGitFetchErrors(t *testing.T) {
	srv := newGitServer(t, "")
	repo := srv.newRepo(t, "app", true)
	v1 := repo.commit(t, "main", appV1(t))
	strict := srv.newRepo(t, "strict", false)
	strict.commit(t, "main", appV1(t))
	gone := newGitServer(t, "")
	goneURL := gone.URL + "/app.git"
	gone.newRepo(t, "app", true) // closed below: nothing listens at its address any more
	unknown := strings.Repeat("ab", 20)

	tests := []struct {
		name string
		req  GitRequest
		want string // in the error's message
	}{
		{name: "missing subdir", req: GitRequest{URL: repo.URL, Commit: v1, Subdir: "nope/deeper"}, want: `the directory "nope/deeper" is not in commit`},
		{name: "subdir is a file", req: GitRequest{URL: repo.URL, Commit: v1, Subdir: "run.sh"}, want: `"run.sh" is not a directory`},
		{name: "subdir climbs out", req: GitRequest{URL: repo.URL, Subdir: "app/../../etc"}, want: "not a relative path"},
		{name: "unknown repository", req: GitRequest{URL: srv.URL + "/nope.git"}, want: "repository not found"},
		{name: "unknown ref", req: GitRequest{URL: repo.URL, Ref: "nope"}, want: `couldn't find remote ref "nope"`},
		{name: "unknown commit", req: GitRequest{URL: repo.URL, Ref: "main", Commit: unknown}, want: "commit " + unknown + " is not in the history of main"},
		{name: "unknown commit, no fetch by hash", req: GitRequest{URL: strict.URL, Ref: "main", Commit: unknown}, want: "commit " + unknown + " is not in the history of main"},
		{name: "commit not a hash", req: GitRequest{URL: repo.URL, Commit: "main"}, want: "not 40 hexadecimal digits"},
		{name: "ref with a colon", req: GitRequest{URL: repo.URL, Ref: "main:refs/heads/x"}, want: "not a valid ref name"},
		{name: "server unreachable", req: GitRequest{URL: goneURL}, want: "connect"},
		{name: "file URL", req: GitRequest{URL: "file://" + repo.bare}, want: "not an https://"},
		{name: "path", req: GitRequest{URL: repo.bare}, want: "not an https://"},
		{name: "credentials in the URL", req: GitRequest{URL: strings.Replace(repo.URL, "://", "://user:hunter2@", 1)}, want: "has credentials in it"},
	}
	gone.close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			got, err := NewGitCache(t.TempDir()).Fetch(t.Context(), tt.req, t.TempDir(), &log)
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Fetch(%+v) = %q, %v (%s), want kind invalid and %q", tt.req, got, err, proto.ErrorCode(err), tt.want)
			}
			if !strings.Contains(log.String(), err.Error()) {
				t.Errorf("Fetch(%+v) logged\n%s\nwant the error %q", tt.req, log.String(), err)
			}
			if strings.Contains(err.Error()+log.String(), "hunter2") {
				t.Errorf("Fetch(%+v) told the URL's password: %v\n%s", tt.req, err, log.String())
			}
		})
	}
}

// TestGitFetchSubmodule checks that a submodule is left an empty directory, as git leaves it without
// --recurse-submodules, with a line in the log.
func TestGitFetchSubmodule(t *testing.T) {
	srv := newGitServer(t, "")
	repo := srv.newRepo(t, "app", true)
	v1 := repo.commit(t, "main", func(work string) {
		writeFiles(t, work, map[string]string{"Dockerfile": "FROM scratch\n", "vendor/lib/lib.go": "package lib\n"})
		lib := filepath.Join(work, "vendor", "lib")
		runGit(t, lib, "init", "-q")
		runGit(t, lib, "add", "-A")
		runGit(t, lib, "commit", "-q", "-m", "lib")
	})
	dest := t.TempDir()
	var log bytes.Buffer
	got, err := NewGitCache(t.TempDir()).Fetch(t.Context(), GitRequest{URL: repo.URL, Commit: v1}, dest, &log)
	if err != nil || got != v1 {
		t.Fatalf("Fetch = %s, %v, want %s\n%s", got, err, v1, log.String())
	}
	want := map[string]string{"Dockerfile": "-rw-r--r-- FROM scratch\n", "vendor": "d", "vendor/lib": "d"}
	if files := listTree(t, dest); !maps.Equal(files, want) {
		t.Errorf("Fetch checked out\n%q\nwant\n%q", files, want)
	}
	if !strings.Contains(log.String(), "Skipping submodule vendor/lib (commit ") {
		t.Errorf("Fetch logged\n%s\nwant the submodule skipped", log.String())
	}
}

// TestGitFetchCanceled checks that a Fetch its caller gave up on is kind proto.Unavailable, so that the run goes
// back to the queue.
func TestGitFetchCanceled(t *testing.T) {
	srv := newGitServer(t, "")
	repo := srv.newRepo(t, "app", true)
	v1 := repo.commit(t, "main", appV1(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := NewGitCache(t.TempDir()).Fetch(ctx, GitRequest{URL: repo.URL, Commit: v1}, t.TempDir(), nil)
	if proto.ErrorCode(err) != proto.Unavailable {
		t.Errorf("Fetch(canceled) = %v (%s), want kind unavailable", err, proto.ErrorCode(err))
	}
}
