package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/trigger/gittest"
)

// TestBuildFromURL: kiln build takes a git URL (#ref:subdir) or a tarball URL as its context, as az acr build
// does, and builds what they hold.
func TestBuildFromURL(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	df := "FROM " + reg + "/base/busybox:1\nCOPY v.txt /v.txt\n"
	g := gittest.NewServer(t, "")
	r := gittest.NewRepo(t)
	first := r.Commit(map[string]string{"svc/Dockerfile": df, "svc/v.txt": "from git\n", "README": "root\n"})
	url := g.Publish(r, "team/mono.git", "main")

	tarball := gzipOf(t, tarOf(t, map[string]string{"Dockerfile": df, "v.txt": "from a tarball\n"}))
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/ctx.tar.gz" {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(tarball)
	}))
	t.Cleanup(files.Close)

	tests := []struct {
		name, context, tag, want string
	}{
		{"git URL with ref and subdir", url + "#main:svc", "fromgit:1", "from git\n"},
		{"tarball URL", files.URL + "/ctx.tar.gz", "fromtar:1", "from a tarball\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := k.cli(t, "build", "-t", tt.tag, tt.context)
			if code != 0 {
				t.Fatalf("kiln build %s = exit %d\n%s%s", tt.context, code, out, errOut)
			}
			if got, _ := imageFile(t, reg+"/"+tt.tag, "/v.txt"); got != tt.want {
				t.Errorf("/v.txt in %s = %q, want %q", tt.tag, got, tt.want)
			}
		})
	}

	t.Run("git URL records the resolved commit", func(t *testing.T) {
		out, _, code := k.cli(t, "build", "--no-wait", "-t", "pinned:1", url+"#main:svc")
		m := queuedLine.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("kiln build --no-wait = exit %d:\n%s", code, out)
		}
		run := k.waitDone(t, m[1])
		if run.Status != "Succeeded" || run.Request.Commit != first {
			t.Errorf("run %s = %s, request commit %q, want Succeeded on %s", run.ID, run.Status, run.Request.Commit, first)
		}
	})
	t.Run("missing tarball fails the run", func(t *testing.T) {
		out, _, code := k.cli(t, "build", "-t", "nothing:1", files.URL+"/missing.tar.gz")
		if code != 1 || !strings.Contains(out, "404") {
			t.Errorf("kiln build of a missing tarball = exit %d, want 1 naming the 404:\n%s", code, out)
		}
	})
}
