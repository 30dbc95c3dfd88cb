package gitremote

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
	root  string
	url   string
	token string
}

// newGitServer starts a git server that stops when the test ends.
func newGitServer(t *testing.T, token string) *gitServer {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	g := &gitServer{root: t.TempDir(), token: token}
	backend := &cgi.Handler{
		Path:   filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:    []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard, // it says "Not a git repository" for the test that asks for one that is not there
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/private/") {
			_, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(g.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "Invalid username or password.", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// testRepo is what newRepo made: the URL of the repository and its commits.
type testRepo struct {
	url     string
	main    string // the head of main
	dev     string // the head of dev, one commit past main
	release string // the commit the annotated tag v1 tags: the first commit of main
}

// newRepo creates the bare repository name ("private/app.git" needs the token) with two commits on main (the
// first tagged v1, with an annotated tag, and lightweight-tagged light), one more on dev, the branch feature/x
// at main, and HEAD on head.
func (g *gitServer) newRepo(t *testing.T, name, head string) testRepo {
	t.Helper()
	work := t.TempDir()
	runGit(t, work, "init", "--quiet", "--initial-branch=main")
	commit := func(file, content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		runGit(t, work, "add", file)
		runGit(t, work, "commit", "--quiet", "-m", "change "+file)
		return runGit(t, work, "rev-parse", "HEAD")
	}
	r := testRepo{url: g.url + "/" + name}
	r.release = commit("Dockerfile", "FROM scratch\n")
	runGit(t, work, "tag", "-a", "v1", "-m", "release 1")
	runGit(t, work, "tag", "light")
	r.main = commit("README", "hello\n")
	runGit(t, work, "branch", "feature/x")
	runGit(t, work, "checkout", "--quiet", "-b", "dev")
	r.dev = commit("README", "hello, dev\n")

	bare := filepath.Join(g.root, name)
	runGit(t, "", "clone", "--quiet", "--bare", work, bare)
	runGit(t, bare, "symbolic-ref", "HEAD", "refs/heads/"+head)
	return r
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
