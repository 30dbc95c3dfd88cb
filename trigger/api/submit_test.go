package api

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

func TestSubmitQueuesRun(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local:5000"})
	ctx := t.Context()
	buildContext := simpleContext(t)

	got := e.submitOK(t, `{
		"dockerfile": "build/Dockerfile",
		"tags": ["app:{{.Run.ID}}", "ghcr.io/acme/app:{{.Run.Date}}", "{{.Run.Registry}}/base:1"],
		"buildArgs": {"VERSION": "1.2"},
		"target": "final",
		"platform": "linux/arm64",
		"push": false,
		"timeout": 600
	}`, buildContext)

	id := got.ID
	wantTags := []string{"registry.local:5000/app:" + id, "ghcr.io/acme/app:20260304-050607z", "registry.local:5000/base:1"}
	if got.Status != "Queued" || got.Trigger != "manual" || got.QueuedAt == nil || !got.QueuedAt.Equal(testNow) {
		t.Errorf("POST /v1/runs = %+v, want Queued, manual, queued at %v", got, testNow)
	}
	if !slices.Equal(got.Request.Tags, wantTags) {
		t.Errorf("POST /v1/runs tags = %q, want %q", got.Request.Tags, wantTags)
	}
	if got.Request.Push == nil || *got.Request.Push || got.Request.Timeout != 600 {
		t.Errorf("POST /v1/runs request = %+v, want push false, timeout 600", got.Request)
	}

	rec, err := e.st.Run(ctx, id)
	if err != nil {
		t.Fatalf("store.Run(%s): %v", id, err)
	}
	wantSpec := &proto.BuildSpec{
		ContextObject:  id,
		Dockerfile:     "build/Dockerfile",
		Tags:           wantTags,
		BuildArgs:      map[string]string{"VERSION": "1.2"},
		Target:         "final",
		Platform:       "linux/arm64",
		Push:           false,
		TimeoutSeconds: 600,
	}
	if !gproto.Equal(rec.GetSpec(), wantSpec) {
		t.Errorf("stored spec = %v, want %v", rec.GetSpec(), wantSpec)
	}
	if rec.GetStatus() != proto.Status_QUEUED || rec.GetTrigger() != proto.Trigger_MANUAL ||
		!rec.GetQueuedAt().AsTime().Equal(testNow) {
		t.Errorf("stored run = %v, want Queued, manual, queued at %v", rec, testNow)
	}

	rc, err := e.st.OpenContext(ctx, id)
	if err != nil {
		t.Fatalf("store.OpenContext(%s): %v", id, err)
	}
	stored, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(stored, buildContext) {
		t.Errorf("stored context = %d bytes (%v), want the %d bytes sent", len(stored), err, len(buildContext))
	}

	runs, err := e.js.Stream(ctx, proto.StreamRuns)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamRuns, err)
	}
	msg, err := runs.GetLastMsgForSubject(ctx, proto.SubjectRunRequested)
	if err != nil {
		t.Fatalf("GetLastMsgForSubject(%s): %v", proto.SubjectRunRequested, err)
	}
	var ev proto.RunRequested
	if err := gproto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatalf("decoding the RunRequested: %v", err)
	}
	if ev.GetRunId() != id || msg.Header.Get(jetstream.MsgIDHeader) != id {
		t.Errorf("event = RunRequested{%s} with Nats-Msg-Id %q, want run %s for both",
			ev.GetRunId(), msg.Header.Get(jetstream.MsgIDHeader), id)
	}
}

func TestSubmitDefaults(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	got := e.submitOK(t, `{"tags":["acme/app:v1","localhost:5000/app:v1"]}`, tarOf(t, file("Dockerfile", "FROM scratch\n")))
	rec, err := e.st.Run(t.Context(), got.ID)
	if err != nil {
		t.Fatalf("store.Run(%s): %v", got.ID, err)
	}
	spec := rec.GetSpec()
	wantTags := []string{"registry.local/acme/app:v1", "localhost:5000/app:v1"}
	if spec.GetDockerfile() != "Dockerfile" || !spec.GetPush() || spec.GetTimeoutSeconds() != 3600 ||
		!slices.Equal(spec.GetTags(), wantTags) {
		t.Errorf("stored spec = %v, want Dockerfile, push, timeout 3600, tags %q", spec, wantTags)
	}
}

func TestSubmitBadRequest(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	good := simpleContext(t)
	tests := []struct {
		name  string
		parts []formPart
		want  string // in the error message
	}{
		{"bad JSON", []formPart{{"request", []byte(`{"tags":`)}, {"context", good}}, "not a valid build request"},
		{"unknown field", []formPart{{"request", []byte(`{"tags":["a:1"],"pushh":true}`)}, {"context", good}}, `"pushh"`},
		{"two values", []formPart{{"request", []byte(`{} {}`)}, {"context", good}}, "more than one JSON value"},
		{"timeout too long", []formPart{{"request", []byte(`{"timeout":86401}`)}, {"context", good}}, "timeout 86401"},
		{"timeout negative", []formPart{{"request", []byte(`{"timeout":-5}`)}, {"context", good}}, "timeout -5"},
		{"dockerfile outside", []formPart{{"request", []byte(`{"dockerfile":"../Dockerfile"}`)}, {"context", good}}, `"../Dockerfile"`},
		{"dockerfile absolute", []formPart{{"request", []byte(`{"dockerfile":"/Dockerfile"}`)}, {"context", good}}, `"/Dockerfile"`},
		{"dockerfile with a NUL", []formPart{{"request", []byte(`{"dockerfile":"Dockerfile\u0000x"}`)}, {"context", good}},
			`dockerfile "Dockerfile\x00x" has the control character U+0000`},
		{"dockerfile with a newline", []formPart{{"request", []byte(`{"dockerfile":"ci/\nDockerfile"}`)}, {"context", good}},
			`dockerfile "ci/\nDockerfile" has the control character U+000A`},
		{"tag with a scheme", []formPart{{"request", []byte(`{"tags":["http://x/y:1"]}`)}, {"context", good}}, `tag "http://x/y:1" is a URL`},
		{"template does not parse", []formPart{{"request", []byte(`{"tags":["app:{{.Run.ID"]}`)}, {"context", good}}, `tag "app:{{.Run.ID"`},
		{"unknown template field", []formPart{{"request", []byte(`{"tags":["app:{{.Run.Commit}}"]}`)}, {"context", good}}, "Commit"},
		{"bad reference", []formPart{{"request", []byte(`{"tags":["app:not a tag"]}`)}, {"context", good}}, `tag "app:not a tag"`},
		{"no tag in reference", []formPart{{"request", []byte(`{"tags":["app"]}`)}, {"context", good}}, `tag "app"`},
		{"context first", []formPart{{"context", good}, {"request", []byte(`{}`)}}, `must be "request"`},
		{"context missing", []formPart{{"request", []byte(`{}`)}}, `no "context" part`},
		{"no parts", nil, "no parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.submit(t, tt.parts...)
			if status != http.StatusBadRequest {
				t.Fatalf("POST /v1/runs = %d %s, want 400", status, body)
			}
			if got := errorOf(t, body); got.Code != proto.Invalid || !strings.Contains(got.Message, tt.want) {
				t.Errorf("POST /v1/runs error = %+v, want invalid naming %s", got, tt.want)
			}
		})
	}

	t.Run("not multipart", func(t *testing.T) {
		status, body := e.request(t, http.MethodPost, "/v1/runs", strings.NewReader(`{}`), "Content-Type", "application/json")
		if status != http.StatusBadRequest || !strings.Contains(errorOf(t, body).Message, "multipart/form-data") {
			t.Errorf("POST /v1/runs as JSON = %d %s, want 400 asking for multipart/form-data", status, body)
		}
	})
	if n := e.streamMsgs(t); n != 0 {
		t.Errorf("the runs stream holds %d events after bad requests, want 0", n)
	}
}

func TestSubmitBadContext(t *testing.T) {
	const limit = 64 << 10
	random := make([]byte, 100<<10)
	rand.Read(random)
	zeros := make([]byte, 1<<20)
	tests := []struct {
		name    string
		context func(t *testing.T) []byte
		status  int
		want    string // in the error message
	}{
		{"not an archive", func(t *testing.T) []byte { return []byte("hello, world\n") }, 400, "not a tar or gzip archive"},
		{"empty", func(t *testing.T) []byte { return nil }, 400, "not a tar or gzip archive"},
		{"gzip of no tar", func(t *testing.T) []byte { return gzipOf(t, bytes.Repeat([]byte("text "), 200)) }, 400, "not a tar or gzip archive"},
		{"dot dot", func(t *testing.T) []byte { return tarOf(t, file("a/../../etc/passwd", "x")) }, 400, `"a/../../etc/passwd"`},
		{"absolute", func(t *testing.T) []byte { return gzipOf(t, tarOf(t, file("/etc/passwd", "x"))) }, 400, `"/etc/passwd"`},
		{"symlink out", func(t *testing.T) []byte { return tarOf(t, dir("a/"), symlink("a/link", "../../etc")) }, 400, `"a/link"`},
		{"absolute symlink", func(t *testing.T) []byte { return tarOf(t, symlink("link", "/etc/passwd")) }, 400, `"link"`},
		{"hardlink out", func(t *testing.T) []byte { return tarOf(t, hardlink("hl", "../outside")) }, 400, `"hl"`},
		{"hardlink through dot dot", func(t *testing.T) []byte {
			return tarOf(t, dir("a/"), file("a/x", "x"), hardlink("hl", "a/../a/x"))
		}, 400, `hard link "hl" to "a/../a/x"`},
		{"hardlink absolute", func(t *testing.T) []byte { return tarOf(t, file("x", "x"), hardlink("hl", "/x")) }, 400, `hard link "hl" to "/x"`},
		{"device", func(t *testing.T) []byte {
			return tarOf(t, tarEntry{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}})
		}, 400, `"null" is a device`},
		{"fifo", func(t *testing.T) []byte {
			return tarOf(t, tarEntry{hdr: tar.Header{Name: "pipe", Typeflag: tar.TypeFifo}})
		}, 400, `"pipe" is a device or a fifo`},
		{"truncated", func(t *testing.T) []byte {
			return tarOf(t, file("Dockerfile", string(random[:4000])))[:2048]
		}, 400, "not a valid tar archive"},
		{"over the limit as sent", func(t *testing.T) []byte { return tarOf(t, file("big", string(random))) }, 413, "over the 64 KiB limit"},
		{"gzip bomb", func(t *testing.T) []byte { return gzipOf(t, tarOf(t, file("big", string(zeros)))) }, 413, "over the 64 KiB limit"},
		{"gzip bomb after the archive", func(t *testing.T) []byte {
			return gzipOf(t, append(tarOf(t, file("Dockerfile", "FROM scratch\n")), zeros...))
		}, 413, "once decompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{DefaultRegistry: "registry.local", MaxContextSize: limit})
			ctx := t.Context()
			status, body := e.submit(t, formPart{"request", []byte(`{"tags":["app:1"]}`)}, formPart{"context", tt.context(t)})
			if status != tt.status {
				t.Fatalf("POST /v1/runs = %d %s, want %d", status, body, tt.status)
			}
			if got := errorOf(t, body); !strings.Contains(got.Message, tt.want) {
				t.Errorf("POST /v1/runs error = %+v, want one naming %s", got, tt.want)
			}
			id := store.FormatRunID(1) // the ID the submission was given before its upload
			if _, err := e.st.Run(ctx, id); proto.ErrorCode(err) != proto.NotFound {
				t.Errorf("store.Run(%s) = %v, want not found: no record of a rejected submission", id, err)
			}
			if rc, err := e.st.OpenContext(ctx, id); proto.ErrorCode(err) != proto.NotFound {
				if rc != nil {
					rc.Close()
				}
				t.Errorf("store.OpenContext(%s) = %v, want not found: no context kept", id, err)
			}
			if n := e.streamMsgs(t); n != 0 {
				t.Errorf("the runs stream holds %d events, want 0", n)
			}
		})
	}
}

func TestSubmitNotEnqueued(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	ctx := t.Context()
	// With no stream to take it, the RunRequested cannot be published.
	if err := e.js.DeleteStream(ctx, proto.StreamRuns); err != nil {
		t.Fatalf("DeleteStream(%s): %v", proto.StreamRuns, err)
	}
	status, body := e.submit(t, formPart{"request", []byte(`{"tags":["app:1"]}`)}, formPart{"context", simpleContext(t)})
	if status != http.StatusServiceUnavailable || errorOf(t, body).Code != proto.Unavailable {
		t.Fatalf("POST /v1/runs = %d %s, want 503 unavailable", status, body)
	}

	id := store.FormatRunID(1)
	rec, err := e.st.Run(ctx, id)
	if err != nil {
		t.Fatalf("store.Run(%s): %v", id, err)
	}
	if rec.GetStatus() != proto.Status_ERROR || rec.GetFinishedAt() == nil ||
		!strings.HasPrefix(rec.GetError(), "could not enqueue the run: ") {
		t.Errorf("stored run = %v, want Error, finished, error \"could not enqueue the run: ...\"", rec)
	}
	logFinished(t, e.st, id)
	if _, err := e.st.OpenContext(ctx, id); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("store.OpenContext(%s) = %v, want not found", id, err)
	}
}

// logFinished fails the test unless the log of run id is finished: following it must end by itself.
func logFinished(t *testing.T, st *store.Store, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := st.ReadLog(ctx, id, true, io.Discard); err != nil {
		t.Errorf("store.ReadLog(%s, follow) = %v, want the log finished", id, err)
	}
}

// decodeRunJSON decodes a run answer.
func decodeRunJSON(t *testing.T, body []byte) *Run {
	t.Helper()
	var run Run
	if err := json.Unmarshal(body, &run); err != nil {
		t.Fatalf("decoding run %s: %v", body, err)
	}
	return &run
}
