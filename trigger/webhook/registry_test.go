package webhook_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// What testdata/registry/distribution.push.manifest.json, captured from a real registry:2, tells of: a push of
// golang:1.12.4 to the registry a client reached as 127.0.0.1:52854.
const (
	golangFile   = "distribution.push.manifest.json"
	golangID     = "c405c239-0e47-436e-8677-ad138e14e224"
	golangDigest = "sha256:85032fa900cd979127f344c594f714b59e147c6ecbab83bd1ed0ad3ca2e64441"
	golangRef    = "127.0.0.1:52854/golang:1.12.4"
)

// The envelopes of distribution's own TestEventEnvelopeJSONFormat: a manifest pushed by digest (no tag) and two
// layer pushes, to registrycluster.local.
const (
	eventTestV3  = "distribution.push.envelope.event_test.v3.json"
	eventTestV28 = "distribution.push.envelope.event_test.v2.8.3.json"
)

// The media types of notification envelopes.
const (
	eventsV1 = "application/vnd.docker.distribution.events.v1+json"
	eventsV2 = "application/vnd.docker.distribution.events.v2+json"
)

// file returns a vendored envelope from testdata/registry, unchanged.
func file(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "registry", name))
	if err != nil {
		t.Fatalf("reading envelope: %v", err)
	}
	return b
}

func TestRegistryNotification(t *testing.T) {
	golang := func(edits ...func(map[string]any)) map[string]any {
		return registryEvent(t, golangFile, 0, edits...)
	}
	// A mixed envelope, built from the vendored events with only the fields that make each case rewritten:
	// distribution's own untagged manifest and layers, then the captured push, pulled, deleted, pushed to
	// another repository that is tracked and to one that is not, and pushed under names that make no reference.
	mixed := envelope(t,
		registryEvent(t, eventTestV3, 0), registryEvent(t, eventTestV3, 1), registryEvent(t, eventTestV3, 2),
		golang(),
		golang(set("id", "pull-1"), set("action", "pull"), set("request.method", "GET")),
		golang(set("id", "delete-1"), set("action", "delete"), set("target", map[string]any{"repository": "golang", "tag": "1.12.4"})),
		golang(set("id", "push-base"), set("target.repository", "team/base"), set("target.tag", "2")),
		golang(set("id", "push-untracked"), set("target.repository", "team/other")),
		golang(set("id", "bare-host"), set("request.host", "registry")),
		golang(set("id", "bad-tag"), set("target.tag", "not a tag")),
		golang(set("id", "bad-digest"), set("target.digest", "sha256:0123")),
		map[string]any{"id": 7, "action": "push"}, // not an event distribution could send: skipped by position
	)

	tests := []struct {
		name         string
		body         []byte
		contentType  string
		query        string
		tracked      []string
		wantAccepted int
		wantIgnored  int
		wantSkipped  []string // the events skipped, by key
		want         []image  // the ImagePushed published, in order
	}{
		{
			name: "registry 2.x media type", body: file(t, golangFile), contentType: eventsV1, tracked: []string{golangRef},
			wantAccepted: 1, want: []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "registry 3.x media type", body: file(t, golangFile), contentType: eventsV2, tracked: []string{golangRef},
			wantAccepted: 1, want: []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "plain JSON", body: file(t, golangFile), contentType: "application/json; charset=utf-8", tracked: []string{golangRef},
			wantAccepted: 1, want: []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "distribution 3's own envelope: untagged manifest and layers", body: file(t, eventTestV3), contentType: eventsV2,
			tracked: []string{"registrycluster.local/library/test:latest"}, wantIgnored: 3,
		},
		{
			name: "distribution 2.8.3's own envelope: untagged schema 1 manifest and layers", body: file(t, eventTestV28), contentType: eventsV1,
			tracked: []string{"registrycluster.local/library/test:latest"}, wantIgnored: 3,
		},
		{
			name: "mixed envelope", body: mixed, contentType: eventsV2,
			tracked:      []string{golangRef, "127.0.0.1:52854/team/base:2"},
			wantAccepted: 2, wantIgnored: 6, wantSkipped: []string{"bare-host", "bad-tag", "bad-digest", "events[11]"},
			want: []image{
				{Ref: golangRef, Digest: golangDigest, MsgID: golangID},
				{Ref: "127.0.0.1:52854/team/base:2", Digest: golangDigest, MsgID: "push-base"},
			},
		},
		{
			name: "untracked", body: file(t, golangFile), contentType: eventsV2, tracked: []string{"127.0.0.1:52854/golang:1.13"},
			wantIgnored: 1,
		},
		{
			name: "registry query overrides request.host", body: file(t, golangFile), contentType: eventsV2,
			query: "registry=docker.io", tracked: []string{"index.docker.io/library/golang:1.12.4"},
			wantAccepted: 1, want: []image{{Ref: "index.docker.io/library/golang:1.12.4", Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "registry query with a port, lowercased", body: file(t, golangFile), contentType: eventsV2,
			query: "registry=Registry.Kiln.Test:5000", tracked: []string{"registry.kiln.test:5000/golang:1.12.4"},
			wantAccepted: 1, want: []image{{Ref: "registry.kiln.test:5000/golang:1.12.4", Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "no request.host", body: envelope(t, golang(del("request.host"))), contentType: eventsV2, tracked: []string{golangRef},
			wantSkipped: []string{golangID},
		},
		{
			name: "no request.host, registry query", body: envelope(t, golang(del("request.host"))), contentType: eventsV2,
			query: "registry=127.0.0.1:52854", tracked: []string{golangRef},
			wantAccepted: 1, want: []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}},
		},
		{
			name: "event without an ID", body: envelope(t, golang(del("id"))), contentType: eventsV2, tracked: []string{golangRef},
			wantAccepted: 1, want: []image{{Ref: golangRef, Digest: golangDigest}},
		},
		{
			name: "empty envelope", body: []byte(`{"events": []}`), contentType: eventsV2, tracked: []string{golangRef},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken}, track(tt.tracked...))
			status, rep := e.notify(t, tt.query, bytes.NewReader(tt.body), "Content-Type", tt.contentType)
			if status != http.StatusAccepted || rep.Error != nil {
				t.Fatalf("notification = %d %+v, want 202", status, rep)
			}
			if rep.Accepted != tt.wantAccepted || rep.Ignored != tt.wantIgnored || rep.Duplicates != 0 {
				t.Errorf("answer accepted %d ignored %d duplicates %d, want accepted %d ignored %d duplicates 0",
					rep.Accepted, rep.Ignored, rep.Duplicates, tt.wantAccepted, tt.wantIgnored)
			}
			skipped := slices.Sorted(maps.Keys(rep.Skipped))
			if want := slices.Sorted(slices.Values(tt.wantSkipped)); !slices.Equal(skipped, want) {
				t.Errorf("skipped %v, want %v", rep.Skipped, want)
			}
			for key, why := range rep.Skipped {
				if why == "" {
					t.Errorf("skipped %s says no reason", key)
				}
			}
			if got := images(t, e.js); !slices.Equal(got, tt.want) {
				t.Errorf("ImagePushed = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRegistrySkipReasons: a tag push that makes no reference says what is wrong with it.
func TestRegistrySkipReasons(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(map[string]any)
		query string
		want  string // in the reason
	}{
		{name: "no host", edit: del("request.host"), want: "?registry=HOST"},
		{name: "a bare host reads as Docker Hub", edit: set("request.host", "registry"), want: "index.docker.io"},
		{name: "a bare registry query reads as Docker Hub", edit: set("request.host", "registry"), query: "registry=mirror",
			want: "index.docker.io"},
		{name: "no repository", edit: del("target.repository"), want: "no repository"},
		{name: "bad repository", edit: set("target.repository", "Golang"), want: "not an image reference"},
		{name: "bad tag", edit: set("target.tag", "1.12.4@sha256:85032fa900cd979127f344c594f714b59e147c6ecbab83bd1ed0ad3ca2e64441"),
			want: "not an image reference"},
		{name: "bad digest", edit: set("target.digest", "latest"), want: "digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken}, track(golangRef))
			body := envelope(t, registryEvent(t, golangFile, 0, tt.edit))
			status, rep := e.notify(t, tt.query, bytes.NewReader(body))
			if status != http.StatusAccepted || rep.Accepted != 0 || len(rep.Skipped) != 1 {
				t.Fatalf("notification = %d %+v, want 202 with the event skipped", status, rep)
			}
			if why := rep.Skipped[golangID]; !strings.Contains(why, tt.want) {
				t.Errorf("skipped %s because %q, want a reason with %q", golangID, why, tt.want)
			}
			if got := images(t, e.js); len(got) != 0 {
				t.Errorf("ImagePushed = %+v, want none", got)
			}
		})
	}
}

func TestRegistryRefuses(t *testing.T) {
	good := file(t, golangFile)
	big := payload(t, "registry/"+golangFile, set("padding", strings.Repeat("x", 1<<20)))
	tests := []struct {
		name     string
		noToken  bool // the handler has no token
		body     []byte
		chunked  bool
		query    string
		header   []string
		want     int
		wantCode proto.Code
	}{
		{name: "no Authorization", body: good, header: []string{"Authorization", ""},
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "wrong token", body: good, header: []string{"Authorization", "Bearer " + registryToken + "x"},
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "token as Basic", body: good, header: []string{"Authorization", "Basic " + registryToken},
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "token without scheme", body: good, header: []string{"Authorization", registryToken},
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "no token configured, none sent", noToken: true, body: good, header: []string{"Authorization", "Bearer "},
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "no token configured, one sent", noToken: true, body: good,
			want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "text/plain", body: good, header: []string{"Content-Type", "text/plain"},
			want: http.StatusUnsupportedMediaType, wantCode: proto.Invalid},
		{name: "form", body: good, header: []string{"Content-Type", "application/x-www-form-urlencoded"},
			want: http.StatusUnsupportedMediaType, wantCode: proto.Invalid},
		{name: "no Content-Type", body: good, header: []string{"Content-Type", ""},
			want: http.StatusUnsupportedMediaType, wantCode: proto.Invalid},
		{name: "malformed JSON", body: good[:len(good)/2],
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "events not a list", body: []byte(`{"events": {"id": "x"}}`),
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "a JSON array", body: []byte(`[{"events": []}]`),
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "registry query with a scheme", body: good, query: "registry=https://registry.kiln.test",
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "over 1 MB with Content-Length", body: big,
			want: http.StatusRequestEntityTooLarge, wantCode: proto.TooLarge},
		{name: "over 1 MB chunked", body: big, chunked: true,
			want: http.StatusRequestEntityTooLarge, wantCode: proto.TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := webhook.RegistryConfig{Token: registryToken}
			if tt.noToken {
				cfg.Token = ""
			}
			e := newRegistryEnv(t, cfg, track(golangRef))
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: the request goes chunked
			}
			status, rep := e.notify(t, tt.query, body, tt.header...)
			if status != tt.want || rep.Error == nil || rep.Error.Code != tt.wantCode || rep.Error.Message == "" {
				t.Errorf("notification = %d %+v, want %d with code %s", status, rep, tt.want, tt.wantCode)
			}
			if rep.Error != nil && strings.Contains(rep.Error.Message, registryToken) {
				t.Errorf("answer %q shows the token", rep.Error.Message)
			}
			if got := images(t, e.js); len(got) != 0 {
				t.Errorf("ImagePushed = %+v, want none", got)
			}
		})
	}
}

// TestRegistryBodyLimit: RegistryConfig.MaxBody sets the limit, which a body of exactly its size is within.
func TestRegistryBodyLimit(t *testing.T) {
	body := file(t, golangFile)
	tests := []struct {
		name string
		max  int64
		want int
	}{
		{name: "exactly the limit", max: int64(len(body)), want: http.StatusAccepted},
		{name: "one byte over", max: int64(len(body)) - 1, want: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken, MaxBody: tt.max}, track(golangRef))
			if status, rep := e.notify(t, "", bytes.NewReader(body)); status != tt.want {
				t.Errorf("body of %d bytes, limit %d = %d %+v, want %d", len(body), tt.max, status, rep, tt.want)
			}
		})
	}
}

// TestRegistryRedelivery: distribution sends an envelope again when it got no 2xx, with the same event IDs;
// JetStream keeps one ImagePushed.
func TestRegistryRedelivery(t *testing.T) {
	e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken}, track(golangRef))
	body := file(t, golangFile)
	if status, rep := e.notify(t, "", bytes.NewReader(body)); status != http.StatusAccepted || rep.Accepted != 1 || rep.Duplicates != 0 {
		t.Fatalf("first delivery = %d %+v, want 202 with one accepted", status, rep)
	}
	if status, rep := e.notify(t, "", bytes.NewReader(body)); status != http.StatusAccepted || rep.Accepted != 1 || rep.Duplicates != 1 {
		t.Fatalf("redelivery = %d %+v, want 202 with one accepted, a duplicate", status, rep)
	}
	want := []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}}
	if got := images(t, e.js); !slices.Equal(got, want) {
		t.Errorf("ImagePushed = %+v, want %+v", got, want)
	}
}

// TestRegistryPublishFailure: when JetStream cannot take the events the answer is 503, so that distribution
// sends the envelope again; once JetStream is back, the redelivery is accepted.
func TestRegistryPublishFailure(t *testing.T) {
	e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken}, track(golangRef))
	ctx := t.Context()
	s, err := e.js.Stream(ctx, proto.StreamImages)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamImages, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if err := e.js.DeleteStream(ctx, proto.StreamImages); err != nil {
		t.Fatalf("DeleteStream(%s): %v", proto.StreamImages, err)
	}

	body := file(t, golangFile)
	status, rep := e.notify(t, "", bytes.NewReader(body))
	if status != http.StatusServiceUnavailable || rep.Error == nil || rep.Error.Code != proto.Unavailable || rep.Accepted != 0 {
		t.Fatalf("notification without the images stream = %d %+v, want 503 unavailable with none accepted", status, rep)
	}
	if !strings.Contains(rep.Error.Message, golangRef) {
		t.Errorf("error %q does not say which image it could not publish", rep.Error.Message)
	}

	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: info.Config.Name, Subjects: info.Config.Subjects}); err != nil {
		t.Fatalf("CreateStream(%s): %v", proto.StreamImages, err)
	}
	if status, rep := e.notify(t, "", bytes.NewReader(body)); status != http.StatusAccepted || rep.Accepted != 1 {
		t.Fatalf("redelivery with the stream back = %d %+v, want 202 with one accepted", status, rep)
	}
	want := []image{{Ref: golangRef, Digest: golangDigest, MsgID: golangID}}
	if got := images(t, e.js); !slices.Equal(got, want) {
		t.Errorf("ImagePushed = %+v, want %+v", got, want)
	}
}

func TestRegistryRoutes(t *testing.T) {
	e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken}, track())
	tests := []struct {
		method, path string
		want         int
	}{
		{method: http.MethodGet, path: "/v1/webhooks/registry", want: http.StatusMethodNotAllowed},
		{method: http.MethodPost, path: "/v1/webhooks/registry/", want: http.StatusNotFound},
		{method: http.MethodPost, path: "/v1/webhooks/registries", want: http.StatusNotFound},
		{method: http.MethodPost, path: "/v1/webhooks/github", want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, e.hs.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
}
