package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
)

// testNow is the time every test server queues runs at.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testEnv is a Server on a real in-process NATS server with JetStream and a real store, served over HTTP.
type testEnv struct {
	url string
	st  *store.Store
	js  jetstream.JetStream
	nc  *nats.Conn
}

// newEnv starts NATS, opens the store and serves a Server made with cfg; Now defaults to testNow and ReadBases
// to stubBases. All of it stops when the test ends.
func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	env := storetest.New(t)
	nc, js, st := env.Conn, env.JS, env.Store
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if cfg.ReadBases == nil {
		cfg.ReadBases = stubBases
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	hs := httptest.NewServer(NewServer(cfg, st, js, nc, logger).Handler())
	t.Cleanup(hs.Close)
	return &testEnv{url: hs.URL, st: st, js: js, nc: nc}
}

// stubBaseCommit is the commit stubBases says it read.
const stubBaseCommit = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"

// stubBases is the Config.ReadBases of the tests that are not about base images, whose tasks name
// repositories that do not exist: every Dockerfile builds on alpine:3.20.
func stubBases(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error) {
	return []*proto.BaseDependency{{Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "0"}},
		stubBaseCommit, nil
}

// request sends a request to the server and returns the status and body of its answer. header holds
// name, value pairs.
func (e *testEnv) request(t *testing.T, method, path string, body io.Reader, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, body)
	if err != nil {
		t.Fatalf("http.NewRequest: %v", err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// submit posts a submission made of parts and returns the status and body of the answer.
func (e *testEnv) submit(t *testing.T, parts ...formPart) (int, []byte) {
	t.Helper()
	body, contentType := multipartBody(t, parts...)
	return e.request(t, http.MethodPost, "/v1/runs", body, "Content-Type", contentType)
}

// submitOK submits request with buildContext and returns the run of the 202 answer.
func (e *testEnv) submitOK(t *testing.T, request string, buildContext []byte) *Run {
	t.Helper()
	status, body := e.submit(t, formPart{"request", []byte(request)}, formPart{"context", buildContext})
	if status != http.StatusAccepted {
		t.Fatalf("POST /v1/runs = %d %s, want 202", status, body)
	}
	var run Run
	if err := json.Unmarshal(body, &run); err != nil {
		t.Fatalf("POST /v1/runs: decoding %s: %v", body, err)
	}
	return &run
}

// formPart is one part of a multipart submission.
type formPart struct {
	name string
	body []byte
}

// multipartBody returns a multipart/form-data body of parts and its content type.
func multipartBody(t *testing.T, parts ...formPart) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+p.name+`"`)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatalf("CreatePart: %v", err)
		}
		w.Write(p.body)
	}
	if err := mw.Close(); err != nil {
		t.Fatalf("multipart Close: %v", err)
	}
	return &b, mw.FormDataContentType()
}

// errorOf decodes an error answer.
func errorOf(t *testing.T, body []byte) errorDetail {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("answer %s is not a JSON error (%v)", body, err)
	}
	return eb.Error
}

// tarEntry is one entry of a test archive; a regular file's Size is set from body.
type tarEntry struct {
	hdr  tar.Header
	body string
}

// file, dir, symlink and hardlink make test archive entries.
func file(name, body string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, body: body}
}

func dir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}

// tarOf returns a tar archive of entries.
func tarOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar WriteHeader(%s): %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("tar Write(%s): %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar Close: %v", err)
	}
	return b.Bytes()
}

// gzipOf returns data compressed with gzip.
func gzipOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatalf("gzip Write: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("gzip Close: %v", err)
	}
	return b.Bytes()
}

// simpleContext is a good build context: a tar.gz holding a Dockerfile.
func simpleContext(t *testing.T) []byte {
	t.Helper()
	return gzipOf(t, tarOf(t, file("Dockerfile", "FROM scratch\n")))
}

// streamMsgs returns how many messages the runs stream holds.
func (e *testEnv) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), proto.StreamRuns)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamRuns, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("Stream(%s).Info: %v", proto.StreamRuns, err)
	}
	return info.State.Msgs
}
