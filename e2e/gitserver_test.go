package e2e

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitServer serves the bare repositories under its root over HTTP with `git http-backend`, as a forge would.
// Repositories under private/ need the token as the password of HTTP basic auth.
type gitServer struct {
	root  string
	url   string
	token string
}

func newGitServer(t *testing.T, token string) *gitServer {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	g := &gitServer{root: t.TempDir(), token: token}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/private/") {
			_, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(g.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// repo is a bare repository on a gitServer and a work tree the test commits from.
type repo struct {
	t    *testing.T
	URL  string
	work string
}

// newRepo creates the bare repository name (like "team/app.git") with a first commit of files on main.
func (g *gitServer) newRepo(t *testing.T, name string, files map[string]string) (*repo, string) {
	t.Helper()
	bare := filepath.Join(g.root, name)
	git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", bare)
	// Let clients fetch a commit by its ID, as GitHub does.
	git(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")
	r := &repo{t: t, URL: g.url + "/" + name, work: t.TempDir()}
	git(t, r.work, "init", "--quiet", "--initial-branch=main")
	git(t, r.work, "remote", "add", "origin", bare)
	return r, r.commit(files)
}

// commit writes files (content "" deletes), commits them on main, pushes, and returns the commit's ID.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
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
	git(r.t, r.work, "add", "-A")
	git(r.t, r.work, "commit", "--quiet", "-m", "change")
	git(r.t, r.work, "push", "--quiet", "origin", "HEAD:main")
	return strings.TrimSpace(git(r.t, r.work, "rev-parse", "HEAD"))
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Kiln Test", "GIT_AUTHOR_EMAIL=test@kiln.invalid",
		"GIT_COMMITTER_NAME=Kiln Test", "GIT_COMMITTER_EMAIL=test@kiln.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
