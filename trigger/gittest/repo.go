package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a work repository a test commits to and publishes on a Server.
type Repo struct {
	t         testing.TB
	dir       string
	published []string // the bare repositories Publish made of it
}

// NewRepo makes an empty work repository on branch main.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{t: t, dir: t.TempDir()}
	r.Git("init", "--quiet", "--initial-branch=main")
	return r
}

// Commit writes files (path to content; content "" deletes the file), commits them on the current branch,
// pushes to wherever the repository is published and returns the commit.
func (r *Repo) Commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "--all")
	r.Git("commit", "--quiet", "--allow-empty", "-m", "change")
	for _, bare := range r.published {
		r.push(bare)
	}
	return r.Git("rev-parse", "HEAD")
}

// Git runs git in the work tree, as the package-level Git does.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return Git(r.t, r.dir, args...)
}

// push makes the bare repository's branches and tags those of the work tree.
func (r *Repo) push(bare string) {
	r.t.Helper()
	r.Git("push", "--quiet", "--mirror", bare)
}

// Git runs git in dir (the current directory when "") with a config of its own and a fixed author, and returns
// its output, trimmed. It fails the test when git fails.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Kiln Test", "GIT_AUTHOR_EMAIL=test@kiln.invalid",
		"GIT_COMMITTER_NAME=Kiln Test", "GIT_COMMITTER_EMAIL=test@kiln.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
