package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// registryToken is the token the test registries send.
const registryToken = "kiln-registry-token"

// observedAt is the time the test handlers observe every event at.
var observedAt = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// trackedSet is a webhook.TrackedRefs that tracks the references it holds.
type trackedSet map[string]bool

func (s trackedSet) Tracks(ref string) bool { return s[ref] }

// track returns the trackedSet of refs.
func track(refs ...string) trackedSet {
	s := make(trackedSet)
	for _, r := range refs {
		s[r] = true
	}
	return s
}

// registryEnv is a RegistryHandler on a real in-process NATS server with JetStream, whose streams the store
// created, served over HTTP.
type registryEnv struct {
	url string // the handler's endpoint, /v1/webhooks/registry
	hs  *httptest.Server
	js  jetstream.JetStream
}

// newRegistryEnv starts NATS, opens the store and serves a RegistryHandler made with cfg, observing events at
// observedAt, that publishes pushes of tracked. All of it stops when the test ends.
func newRegistryEnv(t *testing.T, cfg webhook.RegistryConfig, tracked webhook.TrackedRefs) *registryEnv {
	t.Helper()
	env := storetest.New(t)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return observedAt }
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	hs := httptest.NewServer(webhook.NewRegistryHandler(cfg, tracked, env.JS, logger))
	t.Cleanup(hs.Close)
	return &registryEnv{url: hs.URL + "/v1/webhooks/registry", hs: hs, js: env.JS}
}

// registryReply is a registry webhook answer, decoded.
type registryReply struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Ignored    int               `json:"ignored"`
	Skipped    map[string]string `json:"skipped"`
	Error      *struct {
		Code    proto.Code `json:"code"`
		Message string     `json:"message"`
	} `json:"error"`
}

// notify POSTs body to the endpoint with query appended to its URL, as distribution 3 does: its events media
// type and the token as a bearer token. header (name, value pairs) overrides those; an empty value removes a
// header. It returns the status and the decoded answer.
func (e *registryEnv) notify(t *testing.T, query string, body io.Reader, header ...string) (int, registryReply) {
	t.Helper()
	u := e.url
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
	req.Header.Set("Authorization", "Bearer "+registryToken)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of POST %s: %v", u, err)
	}
	var r registryReply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("POST %s answered %d with %q: %v", u, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

// image is an ImagePushed as the tests compare it: what the handler chose, and the message ID it was
// published under.
type image struct {
	Ref, Digest, MsgID string
}

// images returns, in order, every ImagePushed on the images stream, checking the fields every one of them
// shares: subject, source and time observed. It leaves them on the stream.
func images(t *testing.T, js jetstream.JetStream) []image {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, proto.StreamImages)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamImages, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var got []image
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		var ev proto.ImagePushed
		if err := gproto.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatalf("decoding an ImagePushed: %v", err)
		}
		if msg.Subject != proto.SubjectImagePushed {
			t.Errorf("ImagePushed on subject %s, want %s", msg.Subject, proto.SubjectImagePushed)
		}
		if ev.GetSource() != "notification" || ev.GetRunId() != "" {
			t.Errorf("ImagePushed source %q run %q, want source notification and no run", ev.GetSource(), ev.GetRunId())
		}
		if at := ev.GetObservedAt().AsTime(); !at.Equal(observedAt) {
			t.Errorf("ImagePushed observed at %v, want %v", at, observedAt)
		}
		got = append(got, image{Ref: ev.GetReference(), Digest: ev.GetDigest(), MsgID: msg.Header.Get(jetstream.MsgIDHeader)})
	}
	return got
}

// registryEvent loads the i-th event of a real envelope from testdata/registry (copied unchanged; see
// testdata/README.md) and applies edits to it.
func registryEvent(t *testing.T, file string, i int, edits ...func(m map[string]any)) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "registry", file))
	if err != nil {
		t.Fatalf("reading envelope: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var env struct{ Events []map[string]any }
	if err := d.Decode(&env); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	if i >= len(env.Events) {
		t.Fatalf("%s has %d events, not an event %d", file, len(env.Events), i)
	}
	ev := env.Events[i]
	for _, edit := range edits {
		edit(ev)
	}
	return ev
}

// envelope returns the JSON of an envelope holding events.
func envelope(t *testing.T, events ...any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		t.Fatalf("encoding an envelope: %v", err)
	}
	return b
}

// del returns an edit that removes the field at path (keys separated by '.').
func del(path string) func(m map[string]any) {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		delete(m, keys[len(keys)-1])
	}
}
