package builder

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// gitServer serves the bare repositories under root over HTTP with the real git http-backend, through
// net/http/cgi, as a git host would, and counts what it is asked and what it answers.
type gitServer struct {
	root string
	URL  string
	// token, when set, is the password every request must bring (HTTP basic authentication, any user name).
	token string
	// requests counts every request, uploadPacks the POSTs to git-upload-pack (one per fetch that wants
	// objects), and bytes the bytes of the answers.
	requests, uploadPacks, bytes atomic.Int64
	srv                          *httptest.Server
}

// newGitServer starts a git server, closed when the test ends. With a token, a request without it, or with
// another one, gets 401 and a body that repeats the credentials it was given, as a careless server might, so
// that a test can check that Fetch keeps them out of its errors and log.
func newGitServer(t *testing.T, token string) *gitServer {
	t.Helper()
	execPath := strings.TrimSpace(runGit(t, "", "--exec-path"))
	s := &gitServer{root: t.TempDir(), token: token}
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  append(gitEnv(), "GIT_PROJECT_ROOT="+s.root, "GIT_HTTP_EXPORT_ALL=1"),
		// git's complaints (not our ref, not a git repository) reach the client in the answer, or as a status.
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			s.uploadPacks.Add(1)
		}
		h := backend
		if s.token != "" {
			user, password, ok := r.BasicAuth()
			if !ok || password != s.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				msg := "no credentials"
				if ok {
					msg = fmt.Sprintf("bad credentials %s:%s", user, password)
				}
				http.Error(w, msg, http.StatusUnauthorized)
				return
			}
			authenticated := *backend
			authenticated.Env = append(slices.Clone(backend.Env), "REMOTE_USER="+user)
			h = &authenticated
		}
		h.ServeHTTP(countingWriter{ResponseWriter: w, n: &s.bytes}, r)
	}))
	t.Cleanup(srv.Close)
	s.URL, s.srv = srv.URL, srv
	return s
}

// close stops the server before the test ends, so that nothing listens at its address.
func (s *gitServer) close() { s.srv.Close() }

// countingWriter counts the bytes of an answer.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// testRepo is a bare repository on a gitServer and a work tree that pushes to it.
type testRepo struct {
	URL, bare, work string
}

// newRepo creates the empty bare repository name.git on s. allowSHA sets uploadpack.allowAnySHA1InWant, which
// lets a client fetch a commit by its hash.
func (s *gitServer) newRepo(t *testing.T, name string, allowSHA bool) *testRepo {
	t.Helper()
	r := &testRepo{URL: s.URL + "/" + name + ".git", bare: filepath.Join(s.root, name+".git"), work: t.TempDir()}
	runGit(t, "", "init", "-q", "--bare", "-b", "main", r.bare)
	if allowSHA {
		runGit(t, r.bare, "config", "uploadpack.allowAnySHA1InWant", "true")
	}
	runGit(t, r.work, "init", "-q", "-b", "main")
	runGit(t, r.work, "remote", "add", "origin", r.bare)
	return r
}

// commit lets edit change the work tree, commits everything and pushes it to ref (a branch name or a full ref
// name), and returns the commit.
func (r *testRepo) commit(t *testing.T, ref string, edit func(work string)) string {
	t.Helper()
	edit(r.work)
	runGit(t, r.work, "add", "-A")
	runGit(t, r.work, "commit", "-q", "--allow-empty", "-m", "change")
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	runGit(t, r.work, "push", "-q", "-f", "origin", "HEAD:"+ref)
	return strings.TrimSpace(runGit(t, r.work, "rev-parse", "HEAD"))
}

// tag makes an annotated tag of the work tree's HEAD and pushes it.
func (r *testRepo) tag(t *testing.T, name string) {
	t.Helper()
	runGit(t, r.work, "tag", "-a", "-m", "release "+name, name)
	runGit(t, r.work, "push", "-q", "origin", "refs/tags/"+name)
}

// runGit runs the git CLI in dir, apart from the machine's and the user's configuration, and returns its output.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gitEnv keeps git away from the machine's configuration and names the author of the tests' commits.
func gitEnv() []string {
	return []string{
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Kiln Test", "GIT_AUTHOR_EMAIL=test@kiln.invalid",
		"GIT_COMMITTER_NAME=Kiln Test", "GIT_COMMITTER_EMAIL=test@kiln.invalid",
	}
}

// listTree describes what is under dir, path by path: "d" for a directory, "-> target" for a symbolic link,
// and the permission bits and content for a file ("-rwxr-xr-x echo hi").
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			got[rel] = "d"
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "-> " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = fi.Mode().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
