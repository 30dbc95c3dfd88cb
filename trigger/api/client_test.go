package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// writeFiles writes files (slash path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarNames returns the entry names of a tar.gz archive.
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("tar Next: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

func TestClientRoundTrip(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local", Token: "tok"})
	c := NewClient(e.url+"/", "tok")
	ctx := t.Context()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY main.go /\n", "main.go": "package main\n"})

	// The context streams from PackContext to the server without being held whole.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(PackContext(ctx, dir, "", pw)) }()
	run, err := c.SubmitRun(ctx, BuildRequest{Tags: []string{"app:{{.Run.ID}}"}, BuildArgs: map[string]string{"A": "1"}}, pr)
	if err != nil {
		t.Fatalf("SubmitRun: %v", err)
	}
	if run.Status != "Queued" || !slices.Equal(run.Request.Tags, []string{"registry.local/app:" + run.ID}) ||
		run.Request.BuildArgs["A"] != "1" {
		t.Errorf("SubmitRun = %+v, want a queued run with its tag rendered", run)
	}
	rc, err := e.st.OpenContext(ctx, run.ID)
	if err != nil {
		t.Fatalf("store.OpenContext(%s): %v", run.ID, err)
	}
	if got, want := tarNames(t, rc), []string{"Dockerfile", "main.go"}; !slices.Equal(got, want) {
		t.Errorf("stored context holds %q, want %q", got, want)
	}
	rc.Close()

	got, err := c.Run(ctx, run.ID)
	if err != nil || !reflect.DeepEqual(got, run) {
		t.Errorf("Run(%s) = %+v, %v, want %+v", run.ID, got, err, run)
	}
	list, err := c.ListRuns(ctx, "queued", 10)
	if err != nil || len(list) != 1 || list[0].ID != run.ID {
		t.Errorf("ListRuns(queued, 10) = %v, %v, want [%s]", list, err, run.ID)
	}

	lw := e.st.LogWriter(run.ID)
	io.WriteString(lw, "step 1\n")
	if err := lw.Close(ctx); err != nil {
		t.Fatalf("LogWriter.Close: %v", err)
	}
	var log bytes.Buffer
	if err := c.Log(ctx, run.ID, false, &log); err != nil || log.String() != "step 1\n" {
		t.Errorf("Log(%s) = %q, %v, want %q", run.ID, log.String(), err, "step 1\n")
	}

	canceled, err := c.Cancel(ctx, run.ID)
	if err != nil || canceled.Status != "Canceled" {
		t.Fatalf("Cancel(%s) = %+v, %v, want Canceled", run.ID, canceled, err)
	}
	log.Reset()
	if err := c.Log(ctx, run.ID, true, &log); err != nil || log.String() != "step 1\n" {
		t.Errorf("Log(%s, follow) = %q, %v, want %q and the end of the log", run.ID, log.String(), err, "step 1\n")
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready = %v, want nil", err)
	}
}

func TestClientErrors(t *testing.T) {
	e := newEnv(t, Config{
		DefaultRegistry: "registry.local",
		Token:           "tok",
		Ready:           func(ctx context.Context) error { return errors.New("NATS is not connected") },
	})
	c := NewClient(e.url, "tok")
	ctx := t.Context()
	canceled, err := c.SubmitRun(ctx, BuildRequest{Tags: []string{"app:1"}}, bytes.NewReader(simpleContext(t)))
	if err != nil {
		t.Fatalf("SubmitRun: %v", err)
	}
	if _, err := c.Cancel(ctx, canceled.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}

	tests := []struct {
		name string
		call func() error
		code proto.Code
		want string // in the message
	}{
		{"unknown run", func() error { _, err := c.Run(ctx, "k999"); return err }, proto.NotFound, "k999"},
		{"cancel an ended run", func() error { _, err := c.Cancel(ctx, canceled.ID); return err },
			proto.Conflict, "run " + canceled.ID + " already ended: Canceled"},
		{"bad tag", func() error {
			_, err := c.SubmitRun(ctx, BuildRequest{Tags: []string{"app:{{.Run.Nope}}"}}, bytes.NewReader(simpleContext(t)))
			return err
		}, proto.Invalid, `tag "app:{{.Run.Nope}}"`},
		{"bad context", func() error {
			_, err := c.SubmitRun(ctx, BuildRequest{}, strings.NewReader("not an archive"))
			return err
		}, proto.Invalid, "not a tar or gzip archive"},
		{"bad status", func() error { _, err := c.ListRuns(ctx, "done", 0); return err }, proto.Invalid, `"done"`},
		{"log of an unknown run", func() error { return c.Log(ctx, "k999", false, io.Discard) }, proto.NotFound, "k999"},
		{"wrong token", func() error { _, err := NewClient(e.url, "nope").Run(ctx, "k1"); return err }, proto.Unauthorized, "token"},
		{"not ready", func() error { return c.Ready(ctx) }, proto.Unavailable, "NATS is not connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != tt.code || !strings.Contains(pe.Message, tt.want) {
				t.Errorf("error = %#v, want a *proto.Error %s naming %s", err, tt.code, tt.want)
			}
		})
	}
}

func TestClientOtherAnswers(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/runs/k1" {
			http.Error(w, "upstream connect error", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<html>nothing here</html>")
	}))
	t.Cleanup(proxy.Close)
	ctx := t.Context()

	tests := []struct {
		name   string
		server string
		id     string
		code   proto.Code
		want   string // in the message
	}{
		{"unreachable", gone.URL, "k1", proto.Unavailable, "cannot reach the Kiln server at " + gone.URL + ": "},
		{"a proxy's error", proxy.URL, "k1", proto.Unavailable, "502 Bad Gateway: upstream connect error"},
		{"an HTML page", proxy.URL, "k2", proto.NotFound, "answered 404 Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.server, "").Run(ctx, tt.id)
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != tt.code || !strings.Contains(pe.Message, tt.want) {
				t.Errorf("Run(%s) = %v, want a *proto.Error %s naming %q", tt.id, err, tt.code, tt.want)
			}
		})
	}

	t.Run("the context fails to read", func(t *testing.T) {
		e := newEnv(t, Config{DefaultRegistry: "registry.local"})
		broken := errors.New("disk on fire")
		_, err := NewClient(e.url, "").SubmitRun(ctx, BuildRequest{Tags: []string{"app:1"}},
			&failingReader{data: simpleContext(t)[:20], err: broken})
		if !errors.Is(err, broken) {
			t.Errorf("SubmitRun with a failing context = %v, want the context's error", err)
		}
	})
}
