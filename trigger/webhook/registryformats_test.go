package webhook_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// What the real samples of the other senders in testdata/registry tell of.
const (
	// acr.push.json: busybox:v1 pushed to the ACR registry test.azurecr.io, with a redacted digest.
	acrFile = "acr.push.json"
	acrID   = "9a5f8995-dbab-4c2b-b06c-0c29c23e759e"
	acrRef  = "test.azurecr.io/busybox:v1"

	// harbor.push_artifact.json: mynamespace/myapp:master-491-6bac849 pushed to harbor.mydomain.lan.
	harborFile   = "harbor.push_artifact.json"
	harborRef    = "harbor.mydomain.lan/mynamespace/myapp:master-491-6bac849"
	harborDigest = "sha256:fd49e9a1a36d28c54520d89bb23f07365802c5c75108c7eaca4400ed60bb19a5"
	harborID     = "harbor:1713095086:" + harborRef + "@" + harborDigest

	// dockerhub.push.json: goliatone/hello-rabbit:latest pushed to Docker Hub at 1466026222, with no digest.
	dockerHubFile = "dockerhub.push.json"
	dockerHubRef  = "index.docker.io/goliatone/hello-rabbit:latest"
)

// lookups is a webhook.TagLookup that asks a real registry, go-containerregistry's in-process one, through a
// real basepoll.Poller: a reference of any registry is looked up under the same repository and tag there, so
// that Docker Hub's tags are found without Docker Hub. It counts what it was asked.
type lookups struct {
	host   string // the in-process registry's host:port
	poller *basepoll.Poller

	mu    sync.Mutex
	asked []string
}

// newLookups starts a registry in-process and a Poller to look its tags up with.
func newLookups(t *testing.T) *lookups {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	env := storetest.New(t)
	return &lookups{
		host:   strings.TrimPrefix(srv.URL, "http://"),
		poller: &basepoll.Poller{Store: env.Store, Publisher: env.JS, Tags: track()},
	}
}

func (l *lookups) Digest(ctx context.Context, ref string) (string, error) {
	l.mu.Lock()
	l.asked = append(l.asked, ref)
	l.mu.Unlock()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", err
	}
	return l.poller.Digest(ctx, l.host+"/"+tag.RepositoryStr()+":"+tag.TagStr())
}

// Refs implements basepoll.Tags for the Poller: it polls nothing.
func (s trackedSet) Refs() []string { return nil }

// push puts a new random image at repo:tag on the in-process registry and returns its digest.
func (l *lookups) push(t *testing.T, repo, tag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(l.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("remote.Write(%s): %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func (l *lookups) askedFor() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.asked)
}

// harborResource0 returns an edit that sets the field key of a Harbor body's first resource.
func harborResource0(key string, v any) func(map[string]any) {
	return func(m map[string]any) {
		rs := m["event_data"].(map[string]any)["resources"].([]any)
		rs[0].(map[string]any)[key] = v
	}
}

// TestRegistryFormats: the real ACR, Harbor and Docker Hub samples, as they came or with only the fields a case
// is about rewritten, become the ImagePushed of the tag they name, mapped to the reference the index of tracked
// tags uses; Docker Hub's, which has no digest, at the digest its tag has in the registry.
func TestRegistryFormats(t *testing.T) {
	lk := newLookups(t)
	helloDigest := lk.push(t, "goliatone/hello-rabbit", "latest")
	busyboxDigest := lk.push(t, "library/busybox", "latest")
	acrDigest := lk.push(t, "busybox", "v1")

	tests := []struct {
		name         string
		body         []byte
		query        string
		header       []string // more headers, name then value; an empty value removes one
		tracked      []string
		want         int // the status
		wantAccepted int
		wantIgnored  int
		wantSkipped  []string
		wantError    string // in the error's message, when want is not 202
		wantLookups  []string
		wantImages   []image
	}{
		{
			name: "ACR sample, whose digest is redacted", body: file(t, acrFile), tracked: []string{acrRef},
			want: http.StatusBadRequest, wantSkipped: []string{acrID}, wantError: "no valid digest",
		},
		{
			name: "ACR sample with a real digest", body: payload(t, "registry/"+acrFile, set("target.digest", acrDigest)), tracked: []string{acrRef},
			want: http.StatusAccepted, wantAccepted: 1, wantImages: []image{{Ref: acrRef, Digest: acrDigest, MsgID: acrID}},
		},
		{
			name: "ACR delete", body: payload(t, "registry/"+acrFile, set("action", "delete"), set("target.digest", acrDigest)), tracked: []string{acrRef},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "ACR push of an untracked tag", body: payload(t, "registry/"+acrFile, set("target.digest", acrDigest)), tracked: []string{"test.azurecr.io/busybox:v2"},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "ACR ping", body: []byte(`{"id":"p1","timestamp":"2023-10-11T14:45:59Z","action":"ping"}`), tracked: []string{acrRef},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "ACR push with no login server", body: payload(t, "registry/"+acrFile, set("target.digest", acrDigest), del("request.host")),
			tracked: []string{acrRef}, want: http.StatusBadRequest, wantSkipped: []string{acrID}, wantError: "?registry=HOST",
		},
		{
			name: "Harbor sample", body: file(t, harborFile), tracked: []string{harborRef},
			want: http.StatusAccepted, wantAccepted: 1, wantImages: []image{{Ref: harborRef, Digest: harborDigest, MsgID: harborID}},
		},
		{
			name: "Harbor sample, registry query", body: file(t, harborFile), query: "registry=harbor.kiln.test:8443",
			tracked: []string{"harbor.kiln.test:8443/mynamespace/myapp:master-491-6bac849"}, want: http.StatusAccepted, wantAccepted: 1,
			wantImages: []image{{Ref: "harbor.kiln.test:8443/mynamespace/myapp:master-491-6bac849", Digest: harborDigest,
				MsgID: "harbor:1713095086:harbor.kiln.test:8443/mynamespace/myapp:master-491-6bac849@" + harborDigest}},
		},
		{
			name: "Harbor pull", body: payload(t, "registry/"+harborFile, set("type", "PULL_ARTIFACT")), tracked: []string{harborRef},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "Harbor push by digest", body: payload(t, "registry/"+harborFile, harborResource0("tag", "")), tracked: []string{harborRef},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "Harbor push of a bad digest", body: payload(t, "registry/"+harborFile, harborResource0("digest", "sha256:fd49")), tracked: []string{harborRef},
			want: http.StatusBadRequest, wantSkipped: []string{"event_data.resources[0]"}, wantError: "no valid digest",
		},
		{
			name: "Harbor push with no resources", body: payload(t, "registry/"+harborFile, set("event_data.resources", []any{})), tracked: []string{harborRef},
			want: http.StatusBadRequest, wantError: "event_data.resources",
		},
		{
			name: "Harbor push, resource_url without a host", body: payload(t, "registry/"+harborFile, harborResource0("resource_url", "myapp:1")),
			tracked: []string{harborRef}, want: http.StatusBadRequest, wantSkipped: []string{"event_data.resources[0]"}, wantError: "?registry=HOST",
		},
		{
			name: "Docker Hub sample", body: file(t, dockerHubFile), tracked: []string{dockerHubRef},
			want: http.StatusAccepted, wantAccepted: 1, wantLookups: []string{dockerHubRef},
			wantImages: []image{{Ref: dockerHubRef, Digest: helloDigest, MsgID: "dockerhub:1466026222:" + dockerHubRef}},
		},
		{
			name: "Docker Hub official image", body: payload(t, "registry/"+dockerHubFile, set("repository.repo_name", "library/busybox")),
			tracked: []string{"index.docker.io/library/busybox:latest"}, want: http.StatusAccepted, wantAccepted: 1,
			wantLookups: []string{"index.docker.io/library/busybox:latest"},
			wantImages: []image{{Ref: "index.docker.io/library/busybox:latest", Digest: busyboxDigest,
				MsgID: "dockerhub:1466026222:index.docker.io/library/busybox:latest"}},
		},
		{
			name: "Docker Hub, token in the URL", body: file(t, dockerHubFile), query: "token=" + registryToken,
			header: []string{"Authorization", ""}, tracked: []string{dockerHubRef},
			want: http.StatusAccepted, wantAccepted: 1, wantLookups: []string{dockerHubRef},
			wantImages: []image{{Ref: dockerHubRef, Digest: helloDigest, MsgID: "dockerhub:1466026222:" + dockerHubRef}},
		},
		{
			name: "Docker Hub, wrong token in the URL", body: file(t, dockerHubFile), query: "token=" + registryToken + "x",
			header: []string{"Authorization", ""}, tracked: []string{dockerHubRef},
			want: http.StatusUnauthorized, wantError: "token",
		},
		{
			name: "Docker Hub push of an untracked tag, not looked up", body: file(t, dockerHubFile), tracked: []string{"index.docker.io/goliatone/hello-rabbit:1"},
			want: http.StatusAccepted, wantIgnored: 1,
		},
		{
			name: "Docker Hub push of a tag the registry does not have", body: payload(t, "registry/"+dockerHubFile, set("push_data.tag", "gone")),
			tracked: []string{"index.docker.io/goliatone/hello-rabbit:gone"}, want: http.StatusServiceUnavailable,
			wantError: "index.docker.io/goliatone/hello-rabbit:gone", wantLookups: []string{"index.docker.io/goliatone/hello-rabbit:gone"},
		},
		{
			name: "Docker Hub push with no tag", body: payload(t, "registry/"+dockerHubFile, del("push_data.tag")), tracked: []string{dockerHubRef},
			want: http.StatusBadRequest, wantSkipped: []string{"push_data"}, wantError: "push_data.tag",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(lk.askedFor())
			e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken, Lookup: lk}, track(tt.tracked...))
			header := append([]string{"Content-Type", "application/json"}, tt.header...)
			status, rep := e.notify(t, tt.query, bytes.NewReader(tt.body), header...)
			if status != tt.want {
				t.Fatalf("notification = %d %+v, want %d", status, rep, tt.want)
			}
			if tt.want == http.StatusAccepted && rep.Error != nil {
				t.Errorf("answer has error %+v, want none", rep.Error)
			}
			if tt.want != http.StatusAccepted && (rep.Error == nil || !strings.Contains(rep.Error.Message, tt.wantError)) {
				t.Errorf("answer error %+v, want a message with %q", rep.Error, tt.wantError)
			}
			if rep.Accepted != tt.wantAccepted || rep.Ignored != tt.wantIgnored {
				t.Errorf("answer accepted %d ignored %d, want accepted %d ignored %d", rep.Accepted, rep.Ignored, tt.wantAccepted, tt.wantIgnored)
			}
			if got := slices.Sorted(maps.Keys(rep.Skipped)); !slices.Equal(got, tt.wantSkipped) {
				t.Errorf("skipped %v, want %v", rep.Skipped, tt.wantSkipped)
			}
			if got := lk.askedFor()[before:]; !slices.Equal(got, tt.wantLookups) {
				t.Errorf("looked up %v, want %v", got, tt.wantLookups)
			}
			if got := images(t, e.js); !slices.Equal(got, tt.wantImages) {
				t.Errorf("ImagePushed = %+v, want %+v", got, tt.wantImages)
			}
		})
	}
}

// TestRegistryLookupRetryAfter: a Docker Hub push whose tag cannot be looked up answers 503 with a Retry-After,
// the registry's own when it asked to wait, so that the sender tries again; once the tag is there, the same
// body is accepted.
func TestRegistryLookupRetryAfter(t *testing.T) {
	lk := newLookups(t)
	e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken, Lookup: lk}, track(dockerHubRef))
	post := func() *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url, bytes.NewReader(file(t, dockerHubFile)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+registryToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("Docker Hub push of a tag not yet in the registry = %d, Retry-After %q; want 503, Retry-After 30",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	d := lk.push(t, "goliatone/hello-rabbit", "latest")
	if resp := post(); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("Docker Hub push sent again once the tag is there = %d, want 202", resp.StatusCode)
	}
	want := []image{{Ref: dockerHubRef, Digest: d, MsgID: "dockerhub:1466026222:" + dockerHubRef}}
	if got := images(t, e.js); !slices.Equal(got, want) {
		t.Errorf("ImagePushed = %+v, want %+v", got, want)
	}
}

// TestRegistryUnknownShape: a body of no format Kiln reads is refused, naming what each format would have had,
// rather than answered 202 with nothing done.
func TestRegistryUnknownShape(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		want        []string // in the message
	}{
		{name: "empty object", body: `{}`, contentType: "application/json",
			want: []string{"`events`", "ACR", "`event_data`", "`push_data`"}},
		{name: "some other webhook", body: `{"ref":"refs/heads/main","after":"abc"}`, contentType: "application/json",
			want: []string{"`events`", "ACR", "`event_data`", "`push_data`"}},
		{name: "null events", body: `{"events":null}`, contentType: "application/json", want: []string{"`events`"}},
		{name: "empty object as distribution's envelope", body: `{}`, contentType: eventsV2, want: []string{"`events`"}},
		{name: "a JSON string", body: `"events"`, contentType: "application/json", want: []string{"JSON object"}},
		{name: "Harbor event_data not an object", body: `{"type":"PUSH_ARTIFACT","event_data":[1]}`, contentType: "application/json",
			want: []string{"Harbor"}},
		{name: "Docker Hub push_data not an object", body: `{"push_data":"x"}`, contentType: "application/json",
			want: []string{"Docker Hub"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRegistryEnv(t, webhook.RegistryConfig{Token: registryToken, Lookup: newLookups(t)}, track(golangRef))
			status, rep := e.notify(t, "", strings.NewReader(tt.body), "Content-Type", tt.contentType)
			if status != http.StatusBadRequest || rep.Error == nil || rep.Error.Code != proto.Invalid {
				t.Fatalf("notification %s = %d %+v, want 400 invalid", tt.body, status, rep)
			}
			for _, w := range tt.want {
				if !strings.Contains(rep.Error.Message, w) {
					t.Errorf("error %q does not name %s", rep.Error.Message, w)
				}
			}
		})
	}
}
