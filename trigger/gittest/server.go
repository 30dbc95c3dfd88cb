package gittest

import (
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// Server serves the bare repositories under its root over smart HTTP with `git http-backend`, as a forge does.
// Repositories under private/ need its token as the password of HTTP basic authentication.
type Server struct {
	URL   string // the server's base URL: a repository published as name is at URL + "/" + name
	root  string
	token string
}

// NewServer starts a git server that stops when the test ends.
func NewServer(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{root: t.TempDir(), token: token}
	backend := &cgi.Handler{
		Path:   filepath.Join(Git(t, "", "--exec-path"), "git-http-backend"),
		Env:    []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard, // it says "Not a git repository" for the tests that ask for one that is not there
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/private/") {
			_, pass, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(s.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "Invalid username or password.", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Publish serves r's branches and tags as the bare repository name ("private/app.git" needs the token), with
// HEAD on the branch head, and returns its URL. Each later r.Commit pushes there again. Like GitHub, the
// repository lets clients fetch any commit by its ID.
func (s *Server) Publish(r *Repo, name, head string) string {
	r.t.Helper()
	bare := filepath.Join(s.root, name)
	Git(r.t, "", "init", "--quiet", "--bare", "--initial-branch="+head, bare)
	Git(r.t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")
	r.published = append(r.published, bare)
	r.push(bare)
	return s.URL + "/" + name
}

// Refs is a repository PublishRefs made, with a ref of each kind a client resolves: its URL and its commits.
type Refs struct {
	URL     string
	Main    string // the head of main
	Dev     string // the head of dev, one commit past main
	Release string // the first commit of main, which the annotated tag v1 and the lightweight tag light tag
}

// PublishRefs publishes as name a repository with two commits on main (the first tagged v1, with an annotated
// tag, and light, with a lightweight one), one more on dev, the branch feature/x at main, and HEAD on head.
func (s *Server) PublishRefs(t testing.TB, name, head string) Refs {
	t.Helper()
	r := NewRepo(t)
	release := r.Commit(map[string]string{"Dockerfile": "FROM scratch\n"})
	r.Git("tag", "-a", "v1", "-m", "release 1")
	r.Git("tag", "light")
	main := r.Commit(map[string]string{"README": "hello\n"})
	r.Git("branch", "feature/x")
	r.Git("checkout", "--quiet", "-b", "dev")
	dev := r.Commit(map[string]string{"README": "hello, dev\n"})
	return Refs{URL: s.Publish(r, name, head), Main: main, Dev: dev, Release: release}
}
