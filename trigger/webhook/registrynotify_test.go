package webhook_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/deploy/ociregistry"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// These tests run the embedded registry (distribution 3 as a library) with the handler as its notification
// endpoint, so that the envelopes are what distribution really sends: one event per envelope, Content-Type
// application/vnd.docker.distribution.events.v2+json, target.tag set on a manifest pushed by tag, and
// request.host the Host the client pushed to. Each takes one to a few seconds.

// registryPassword is the embedded registry's password for the user kiln.
const registryPassword = "kiln-registry-password"

// notified is the embedded registry notifying a RegistryHandler served over HTTP, with JetStream behind it.
type notified struct {
	reg *ociregistry.Registry
	js  jetstream.JetStream

	mu           sync.Mutex
	contentTypes []string // of each envelope the handler got
	statuses     []int    // of each of its answers
	tracked      string   // the reference the handler tracks
}

// newNotified starts NATS with the store's streams, a RegistryHandler and the embedded registry that notifies
// it, all stopped when the test ends.
func newNotified(t *testing.T) *notified {
	t.Helper()
	env := storetest.New(t)
	n := &notified{js: env.JS}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := webhook.NewRegistryHandler(webhook.RegistryConfig{Token: registryToken, Now: func() time.Time { return observedAt }},
		n, env.JS, logger)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		n.mu.Lock()
		defer n.mu.Unlock()
		n.contentTypes = append(n.contentTypes, r.Header.Get("Content-Type"))
		n.statuses = append(n.statuses, rec.status)
	}))
	t.Cleanup(hs.Close)

	reg, err := ociregistry.Start(t.Context(), ociregistry.Config{
		Dir:      t.TempDir(),
		Addr:     "127.0.0.1:0",
		User:     "kiln",
		Password: registryPassword,
		Notify: []ociregistry.Endpoint{{
			Name:    "kiln",
			URL:     hs.URL + "/v1/webhooks/registry",
			Headers: http.Header{"Authorization": {"Bearer " + registryToken}},
		}},
	})
	if err != nil {
		t.Fatalf("ociregistry.Start: %v", err)
	}
	t.Cleanup(func() { // before the handler's server closes: cleanups run last first
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := reg.Close(ctx); err != nil {
			t.Errorf("closing the registry: %v", err)
		}
	})
	n.reg = reg
	return n
}

// Tracks makes notified a webhook.TrackedRefs.
func (n *notified) Tracks(ref string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return ref == n.tracked
}

// track makes ref the reference the handler tracks.
func (n *notified) track(ref string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tracked = ref
}

// answered returns the statuses the handler answered with so far, and the Content-Types it was sent.
func (n *notified) answered() (statuses []int, contentTypes []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.statuses), slices.Clone(n.contentTypes)
}

// push writes a random image to the registry as repo:tag, or by its digest when tag is "", and returns its
// digest.
func (n *notified) push(t *testing.T, repo, tag string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatalf("random.Image: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	s := n.reg.Addr() + "/" + repo + ":" + tag
	if tag == "" {
		s = n.reg.Addr() + "/" + repo + "@" + d.String()
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatalf("ParseReference(%s): %v", s, err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "kiln", Password: registryPassword})
	if err := remote.Write(ref, img, remote.WithContext(t.Context()), auth); err != nil {
		t.Fatalf("remote.Write(%s): %v", s, err)
	}
	return d.String()
}

// waitImages waits up to 15 seconds for an ImagePushed on the images stream and returns them all.
func (n *notified) waitImages(t *testing.T) []image {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got := images(t, n.js); len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			statuses, _ := n.answered()
			t.Fatalf("no ImagePushed within 15s; the handler answered %v", statuses)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEmbeddedRegistryNotifiesPush: of an untracked push, a push by digest and a push by tag of a tracked
// image, the last alone becomes an ImagePushed, under its registry's address and with its digest.
func TestEmbeddedRegistryNotifiesPush(t *testing.T) {
	n := newNotified(t)
	want := n.reg.Addr() + "/team/base:3" // already normalized: an IP and port is a registry
	n.track(want)

	n.push(t, "team/other", "1")
	n.push(t, "team/base", "")
	digest := n.push(t, "team/base", "3")
	// distribution sends the events of an endpoint one at a time and in order: when the tag push is on the
	// stream, every event before it has been answered.
	got := n.waitImages(t)
	if len(got) != 1 || got[0].Ref != want || got[0].Digest != digest || got[0].MsgID == "" {
		t.Errorf("ImagePushed = %+v, want one of %s@%s under the event's ID", got, want, digest)
	}
	statuses, contentTypes := n.answered()
	for i, ct := range contentTypes {
		if ct != "application/vnd.docker.distribution.events.v2+json" {
			t.Errorf("envelope %d has Content-Type %q, want distribution 3's events v2", i, ct)
		}
		if statuses[i] != http.StatusAccepted {
			t.Errorf("envelope %d answered %d, want 202", i, statuses[i])
		}
	}
	// An image of one layer is a layer, a config and a manifest: three pushes each, or the manifest alone.
	if len(contentTypes) < 7 {
		t.Errorf("the handler got %d envelopes, want one for each of the 7 or more pushes", len(contentTypes))
	}
}

// TestEmbeddedRegistryRetriesUntilAccepted: a 503, JetStream being down, makes distribution send the envelope
// again until it is accepted, and the push is not lost.
func TestEmbeddedRegistryRetriesUntilAccepted(t *testing.T) {
	n := newNotified(t)
	want := n.reg.Addr() + "/team/base:3"
	n.track(want)
	ctx := t.Context()
	s, err := n.js.Stream(ctx, proto.StreamImages)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamImages, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if err := n.js.DeleteStream(ctx, proto.StreamImages); err != nil {
		t.Fatalf("DeleteStream(%s): %v", proto.StreamImages, err)
	}

	digest := n.push(t, "team/base", "3")
	deadline := time.Now().Add(15 * time.Second)
	for statuses, _ := n.answered(); !slices.Contains(statuses, http.StatusServiceUnavailable); statuses, _ = n.answered() {
		if time.Now().After(deadline) {
			t.Fatalf("no 503 within 15s; the handler answered %v", statuses)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := n.js.CreateStream(ctx, jetstream.StreamConfig{Name: info.Config.Name, Subjects: info.Config.Subjects}); err != nil {
		t.Fatalf("CreateStream(%s): %v", proto.StreamImages, err)
	}

	got := n.waitImages(t)
	if len(got) != 1 || got[0].Ref != want || got[0].Digest != digest {
		t.Errorf("ImagePushed = %+v, want one of %s@%s", got, want, digest)
	}
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
