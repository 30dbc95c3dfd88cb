package basedeps

import (
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitServer serves the bare repositories under its root over smart HTTP with `git http-backend`, as a forge
// does. Repositories under private/ need its token as the password of HTTP basic authentication.
type gitServer struct {
	root, url, token string
}

// newGitServer starts a git server that stops when the test ends.
func newGitServer(t *testing.T, token string) *gitServer {
	t.Helper()
	execPath := runGit(t, "", "--exec-path")
	g := &gitServer{root: t.TempDir(), token: token}
	backend := &cgi.Handler{
		Path:   filepath.Join(execPath, "git-http-backend"),
		Env:    []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, _ := r.BasicAuth()
		if strings.HasPrefix(r.URL.Path, "/private/") && subtle.ConstantTimeCompare([]byte(pass), []byte(g.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "Invalid username or password.", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// workRepo is a repository being made in a work tree, to be served once published.
type workRepo struct{ dir string }

// newWorkRepo starts an empty repository on branch main.
func newWorkRepo(t *testing.T) *workRepo {
	t.Helper()
	w := &workRepo{dir: t.TempDir()}
	runGit(t, w.dir, "init", "--quiet", "--initial-branch=main")
	return w
}

// commit writes files (path to content) on branch, which it creates from the current one when new, commits
// them and returns the commit.
func (w *workRepo) commit(t *testing.T, branch string, files map[string]string) string {
	t.Helper()
	if runGit(t, w.dir, "branch", "--show-current") != branch {
		runGit(t, w.dir, "checkout", "--quiet", "-B", branch)
	}
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		runGit(t, w.dir, "add", name)
	}
	runGit(t, w.dir, "commit", "--quiet", "--allow-empty", "-m", "change on "+branch)
	return runGit(t, w.dir, "rev-parse", "HEAD")
}

// publish serves the repository as name, with HEAD on head, and returns its URL.
func (g *gitServer) publish(t *testing.T, w *workRepo, name, head string) string {
	t.Helper()
	bare := filepath.Join(g.root, name)
	runGit(t, "", "clone", "--quiet", "--bare", w.dir, bare)
	runGit(t, bare, "symbolic-ref", "HEAD", "refs/heads/"+head)
	return g.url + "/" + name
}

// runGit runs git in dir with a config of its own and returns its output, trimmed.
func runGit(t *testing.T, dir string, args ...string) string {
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
