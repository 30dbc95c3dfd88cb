package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// TestBuildFailures: builds that cannot succeed end Failed, with BuildKit's message in the log and a one-line
// cause in the record.
func TestBuildFailures(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	from := "FROM " + reg + "/base/busybox:1\n"
	tests := []struct {
		name       string
		files      map[string]string
		dockerfile string
		wantError  string // in the record's one-line error
		wantLog    string // in the stored log
	}{
		{"no Dockerfile", map[string]string{"a.txt": "a"}, "", "Dockerfile", "ERROR"},
		{"Dockerfile elsewhere", map[string]string{"Dockerfile": from}, "build/Dockerfile.prod", "Dockerfile.prod", "Dockerfile.prod"},
		{"syntax error", map[string]string{"Dockerfile": from + "NOPE this\n"}, "", "unknown instruction", "NOPE"},
		{"unknown base", map[string]string{"Dockerfile": "FROM nosuch.invalid/x:1\n"}, "", "nosuch.invalid/x:1", "nosuch.invalid"},
		{"failing RUN", map[string]string{"Dockerfile": from + "RUN echo about to fail && exit 3\n"}, "", "exit code: 3", "about to fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := k.submitFiles(t, tt.files, api.BuildRequest{Dockerfile: tt.dockerfile, Tags: []string{"fails:1"}})
			r := k.waitDone(t, run.ID)
			if r.Status != "Failed" {
				t.Fatalf("run %s = %s (%q), want Failed", r.ID, r.Status, r.Error)
			}
			if !strings.Contains(r.Error, tt.wantError) || strings.Contains(r.Error, "\n") {
				t.Errorf("run %s error = %q, want one line containing %q", r.ID, r.Error, tt.wantError)
			}
			if log := k.logOf(t, r.ID); !strings.Contains(log, tt.wantLog) {
				t.Errorf("log of %s lacks %q:\n%s", r.ID, tt.wantLog, log)
			}
		})
	}

	t.Run("kiln build exits 1", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "Dockerfile", from+"RUN exit 7\n")
		out, _, code := k.cli(t, "build", "--no-push", dir)
		if code != 1 || !strings.Contains(out, "failed after") || !strings.Contains(out, "exit code: 7") {
			t.Errorf("kiln build of a failing RUN = exit %d, want 1 and the cause:\n%s", code, out)
		}
	})
}

// TestBadSubmissions: bad uploads and requests get a clear 4xx and leave nothing behind: no run, no event.
func TestBadSubmissions(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.MaxContextSize = 1 << 20 })
	dockerfile := map[string]string{"Dockerfile": "FROM scratch\n"}
	tests := []struct {
		name     string
		req      api.BuildRequest
		body     []byte
		wantCode proto.Code
		wantMsg  string
	}{
		{"not an archive", api.BuildRequest{}, []byte("just some text, not a tar"), proto.Invalid, "not a tar or gzip"},
		{"over the limit", api.BuildRequest{}, tarOf(t, map[string]string{"big": strings.Repeat("x", 2<<20)}), proto.TooLarge, "limit"},
		{"gzip bomb", api.BuildRequest{}, gzipOf(t, tarOf(t, map[string]string{"zeros": strings.Repeat("\x00", 64<<20)})), proto.TooLarge, "limit"},
		{"dot-dot entry", api.BuildRequest{}, tarWith(t, &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}), proto.Invalid, "../evil"},
		{"absolute entry", api.BuildRequest{}, tarWith(t, &tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644}), proto.Invalid, "/etc/evil"},
		{"symlink out", api.BuildRequest{}, tarWith(t, &tar.Header{Name: "passwd", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}), proto.Invalid, "passwd"},
		{"bad tag", api.BuildRequest{Tags: []string{"Not A Tag"}}, tarOf(t, dockerfile), proto.Invalid, "Not A Tag"},
		{"bad template", api.BuildRequest{Tags: []string{"app:{{.Run.ID"}}, tarOf(t, dockerfile), proto.Invalid, "app:{{.Run.ID"},
		{"unknown template field", api.BuildRequest{Tags: []string{"app:{{.Run.Nope}}"}}, tarOf(t, dockerfile), proto.Invalid, "Nope"},
		{"timeout out of range", api.BuildRequest{Timeout: -5}, tarOf(t, dockerfile), proto.Invalid, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.api.SubmitRun(context.Background(), tt.req, bytes.NewReader(tt.body))
			var e *proto.Error
			if !errors.As(err, &e) || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("SubmitRun() = %v, want %s naming %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	runs, err := k.api.ListRuns(context.Background(), "", 100)
	if err != nil || len(runs) != 0 {
		t.Errorf("ListRuns() = %d runs, %v; want none after only bad submissions", len(runs), err)
	}
}

// TestRegistryUnreachable: a push to a registry that does not answer is retried, then fails naming it.
func TestRegistryUnreachable(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN true\n"},
		api.BuildRequest{Tags: []string{"127.0.0.1:1/nowhere:1"}})
	r := k.waitDone(t, run.ID)
	if r.Status != "Failed" || !strings.Contains(r.Error, "127.0.0.1:1") {
		t.Fatalf("run %s = %s %q, want Failed naming 127.0.0.1:1", r.ID, r.Status, r.Error)
	}
	if log := k.logOf(t, r.ID); !strings.Contains(log, "retrying") {
		t.Errorf("log of %s shows no retry:\n%s", r.ID, log)
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var hs []*tar.Header
	var bodies []string
	for name, content := range files {
		hs = append(hs, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		bodies = append(bodies, content)
	}
	return tarFrom(t, hs, bodies)
}

func tarWith(t *testing.T, h *tar.Header) []byte {
	t.Helper()
	return tarFrom(t, []*tar.Header{{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: 13}, h}, []string{"FROM scratch\n", ""})
}

func tarFrom(t *testing.T, hs []*tar.Header, bodies []string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(bodies[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
