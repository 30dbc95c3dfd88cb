package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// The repository benchGitFetch measures on: benchRepoFiles files of random bytes (which do not compress), in
// benchRepoDirs directories, benchRepoBytes in all; each round's new commit rewrites benchRepoChanged of them.
const (
	benchRepoFiles   = 5000
	benchRepoDirs    = 50
	benchRepoBytes   = 50 << 20
	benchRepoChanged = 5
)

// gitFetchResults are the times of the fetches benchGitFetch measures, one per round each.
type gitFetchResults struct {
	ColdGoGit, GitClone, Warm []time.Duration
}

// benchGitFetch generates a repository of about 5,000 files and 50 MB (deterministic pseudo-random content, not compressible), serves it with git http-backend from tmp, and measures, interleaved over rounds: a cold go-git fetch (builder.GitCache on an empty cache dir) against `git clone --depth 1 --single-branch --no-tags` of the same commit into an empty dir; and a warm go-git fetch (the cache already holding the previous commit, one new commit with a few changed files) against the cold go-git fetch.
//
// Every fetch checks the commit out into an empty directory, as a build would: the go-git side through
// GitCache.Fetch (by commit hash, which the repository allows), the git side through git clone's own checkout.
// The order of the three alternates from round to round, so that none always runs on a machine warmed by
// another.
func benchGitFetch(ctx context.Context, tmp string, rounds int) (gitFetchResults, error) {
	var r gitFetchResults
	dir := filepath.Join(tmp, "gitfetch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	repo, err := newBenchRepo(ctx, dir)
	if err != nil {
		return r, err
	}
	url, stop, err := serveGit(filepath.Join(dir, "srv"))
	if err != nil {
		return r, err
	}
	defer stop()
	url += "/repo.git"

	// The first Fetch of a repository keeps none of its files for later checkouts, the second keeps them all:
	// two fetches make the warm cache what it is for a repository built again and again.
	warm := builder.NewGitCache(filepath.Join(dir, "warm-cache"))
	for range 2 {
		if _, err := timeFetch(ctx, warm, url, repo.head, dir); err != nil {
			return r, fmt.Errorf("filling the warm cache: %w", err)
		}
	}
	for i := range rounds {
		commit, err := repo.change(ctx, i)
		if err != nil {
			return r, err
		}
		steps := []func() error{
			func() error {
				d, err := timeFetch(ctx, builder.NewGitCache(filepath.Join(dir, fmt.Sprintf("cold-cache-%d", i))), url, commit, dir)
				r.ColdGoGit = append(r.ColdGoGit, d)
				return err
			},
			func() error {
				d, err := timeClone(ctx, url, commit, dir)
				r.GitClone = append(r.GitClone, d)
				return err
			},
			func() error {
				d, err := timeFetch(ctx, warm, url, commit, dir)
				r.Warm = append(r.Warm, d)
				return err
			},
		}
		for j := range steps {
			if err := steps[(i+j)%len(steps)](); err != nil {
				return r, err
			}
		}
		for _, name := range []string{fmt.Sprintf("cold-cache-%d", i), "dest"} {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// timeFetch times c.Fetch of commit into a new directory dir/dest.
func timeFetch(ctx context.Context, c *builder.GitCache, url, commit, dir string) (time.Duration, error) {
	dest, err := newDest(dir)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	got, err := c.Fetch(ctx, builder.GitRequest{URL: url, Ref: "main", Commit: commit}, dest, io.Discard)
	d := time.Since(start)
	if err == nil && got != commit {
		err = fmt.Errorf("GitCache.Fetch checked out %s, want %s", got, commit)
	}
	return d, err
}

// timeClone times git clone --depth 1 --single-branch --no-tags of main, which is commit, into a new directory.
func timeClone(ctx context.Context, url, commit, dir string) (time.Duration, error) {
	dest, err := newDest(dir)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = benchGit(ctx, "", "clone", "-q", "--depth", "1", "--single-branch", "--no-tags", "--branch", "main", url, dest)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	head, err := benchGit(ctx, dest, "rev-parse", "HEAD")
	if err == nil && strings.TrimSpace(head) != commit {
		err = fmt.Errorf("git clone checked out %s, want %s", strings.TrimSpace(head), commit)
	}
	return d, err
}

// newDest makes dir/dest anew, empty, and flushes what is still to be written of everything before, so that a
// fetch does not pay for the write-back of the one timed before it.
func newDest(dir string) (string, error) {
	dest := filepath.Join(dir, "dest")
	if err := os.RemoveAll(dest); err != nil {
		return "", err
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		return "", err
	}
	syscall.Sync()
	return dest, nil
}

// benchRepo is the generated repository: a work tree that pushes to a bare repository served over HTTP.
type benchRepo struct {
	work, head string
	rnd        *rand.Rand
	files      []string
}

// newBenchRepo writes benchRepoFiles files of random bytes, commits them and pushes them to dir/srv/repo.git,
// which lets a client fetch any commit by its hash.
func newBenchRepo(ctx context.Context, dir string) (*benchRepo, error) {
	r := &benchRepo{work: filepath.Join(dir, "work"), rnd: rand.New(rand.NewPCG(5000, 50))}
	bare := filepath.Join(dir, "srv", "repo.git")
	if _, err := benchGit(ctx, "", "init", "-q", "--bare", "-b", "main", bare); err != nil {
		return nil, err
	}
	if _, err := benchGit(ctx, bare, "config", "uploadpack.allowAnySHA1InWant", "true"); err != nil {
		return nil, err
	}
	if _, err := benchGit(ctx, "", "init", "-q", "-b", "main", r.work); err != nil {
		return nil, err
	}
	if _, err := benchGit(ctx, r.work, "remote", "add", "origin", bare); err != nil {
		return nil, err
	}
	avg := benchRepoBytes / benchRepoFiles
	for i := range benchRepoFiles {
		name := filepath.Join(fmt.Sprintf("dir%02d", i%benchRepoDirs), fmt.Sprintf("file%04d.bin", i))
		r.files = append(r.files, name)
		if err := r.write(name, avg/2+r.rnd.IntN(avg)); err != nil {
			return nil, err
		}
	}
	return r, r.commit(ctx, "generated")
}

// change rewrites benchRepoChanged files, commits and pushes, and returns the new commit.
func (r *benchRepo) change(ctx context.Context, round int) (string, error) {
	for range benchRepoChanged {
		if err := r.write(r.files[r.rnd.IntN(len(r.files))], benchRepoBytes/benchRepoFiles); err != nil {
			return "", err
		}
	}
	return r.head, r.commit(ctx, fmt.Sprintf("round %d", round))
}

// write fills the file name of the work tree with n random bytes.
func (r *benchRepo) write(name string, n int) error {
	p := filepath.Join(r.work, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.rnd.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return os.WriteFile(p, b, 0o644)
}

// commit commits the work tree, pushes it to main and notes the new head.
func (r *benchRepo) commit(ctx context.Context, msg string) error {
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", msg}, {"push", "-q", "origin", "HEAD:refs/heads/main"}} {
		if _, err := benchGit(ctx, r.work, args...); err != nil {
			return err
		}
	}
	head, err := benchGit(ctx, r.work, "rev-parse", "HEAD")
	r.head = strings.TrimSpace(head)
	return err
}

// benchGit runs the git CLI in dir, apart from the machine's configuration, and returns its output.
func benchGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), benchGitEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// benchGitEnv keeps git away from the machine's configuration and names the author of the commits.
func benchGitEnv() []string {
	return []string{
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Kiln Bench", "GIT_AUTHOR_EMAIL=bench@kiln.invalid",
		"GIT_COMMITTER_NAME=Kiln Bench", "GIT_COMMITTER_EMAIL=bench@kiln.invalid",
	}
}

// serveGit serves the repositories under root with git http-backend on a loopback port, and returns its URL
// and how to stop it.
func serveGit(root string) (url string, stop func(), err error) {
	execPath, err := benchGit(context.Background(), "", "--exec-path")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: &cgi.Handler{
		Path:   filepath.Join(strings.TrimSpace(execPath), "git-http-backend"),
		Env:    append(benchGitEnv(), "GIT_PROJECT_ROOT="+root, "GIT_HTTP_EXPORT_ALL=1"),
		Stderr: io.Discard,
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "git server: %v\n", err)
		}
	}, nil
}

// markdown is the "Context fetch from git" section of BENCHMARKS.md.
func (r gitFetchResults) markdown() string {
	var b strings.Builder
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	cold, clone, warm := quantile(r.ColdGoGit, 0.5), quantile(r.GitClone, 0.5), quantile(r.Warm, 0.5)
	coldRatio, warmRatio := float64(cold)/float64(clone), float64(warm)/float64(cold)
	fmt.Fprintf(&b, "## Context fetch from git\n\n")
	fmt.Fprintf(&b, "A generated repository of %d files of random bytes (which do not compress) in %d directories, "+
		"%.0f MB in all, served by `git http-backend` (CGI, on loopback). Each of %d rounds pushes a commit rewriting "+
		"%d files, then times, in an order that rotates from round to round: a cold fetch through `builder.GitCache` "+
		"(go-git, an empty cache directory, fetching the commit by its hash at depth 1), `git clone --depth 1 "+
		"--single-branch --no-tags` of the same commit, and a warm fetch through a `GitCache` that holds the previous "+
		"commit and has fetched the repository at least twice before. Each one ends with the commit checked out into "+
		"an empty directory, as a build needs it: the cold fetch and git clone write every file; the warm fetch writes "+
		"the changed files and hard-links the others from the files its cache kept of earlier checkouts "+
		"(builder/filestore.go; the first fetch of a repository keeps none, the second keeps them all, and pays "+
		"for it about as much again as the cold fetch). Before each one, "+
		"everything still to be written of the one before is flushed (sync), so that none pays for another's "+
		"write-back.\n\n",
		benchRepoFiles, benchRepoDirs, float64(benchRepoBytes)/1e6, len(r.ColdGoGit), benchRepoChanged)
	fmt.Fprintf(&b, "| fetch | median | compared with | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| cold, go-git | %s | git clone, %s | %.2f | ≤ 1.5: %s |\n", ms(cold), ms(clone), coldRatio, verdict(coldRatio <= 1.5))
	fmt.Fprintf(&b, "| warm, go-git | %s | cold go-git, %s | %.2f | ≤ 0.2: %s |\n\n", ms(warm), ms(cold), warmRatio, verdict(warmRatio <= 0.2))
	return b.String()
}
