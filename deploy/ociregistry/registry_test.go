package ociregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/notifications"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
)

// The user and password of the tests' registries, and the option that gives them to go-containerregistry.
const (
	testUser     = "kiln"
	testPassword = "pass-word"
)

var withTestAuth = remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword})

// start runs a registry on cfg, on a free port when cfg.Addr is empty and with the test user when cfg names
// none, and closes it when the test ends.
func start(t *testing.T, cfg Config) *Registry {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg = withUser(cfg)
	r, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start(%+v) error: %v", cfg, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close() error: %v", err)
		}
	})
	return r
}

// withUser returns cfg with the test user and password, unless it names a user already.
func withUser(cfg Config) Config {
	if cfg.User == "" && cfg.Password == "" {
		cfg.User, cfg.Password = testUser, testPassword
	}
	return cfg
}

// ref parses s as an image reference, failing the test if it is not one.
func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatalf("name.ParseReference(%q) error: %v", s, err)
	}
	return r
}

// push writes a random image to s and returns its digest.
func push(t *testing.T, s string) v1.Hash {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatalf("random.Image error: %v", err)
	}
	if err := remote.Write(ref(t, s), img, remote.WithContext(t.Context()), withTestAuth); err != nil {
		t.Fatalf("remote.Write(%s) error: %v", s, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest() error: %v", err)
	}
	return d
}

// pull reads the image at s, layers included, and returns its digest.
func pull(t *testing.T, s string) v1.Hash {
	t.Helper()
	img, err := remote.Image(ref(t, s), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("remote.Image(%s) error: %v", s, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("Layers() of %s error: %v", s, err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("Compressed() of a layer of %s error: %v", s, err)
		}
		rc.Close()
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest() of %s error: %v", s, err)
	}
	return d
}

func TestPushPull(t *testing.T) {
	r := start(t, Config{Dir: t.TempDir()})
	if host, port, err := net.SplitHostPort(r.Addr()); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and the port actually bound", r.Addr())
	}

	want := push(t, r.Addr()+"/x:1")
	if got := pull(t, r.Addr()+"/x:1"); got != want {
		t.Errorf("pull(%s/x:1) digest = %s, want %s", r.Addr(), got, want)
	}
	if got := pull(t, r.Addr()+"/x@"+want.String()); got != want {
		t.Errorf("pull(%s/x@%s) digest = %s, want %s", r.Addr(), want, got, want)
	}
}

func TestRestartKeepsImages(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(t.Context(), withUser(Config{Dir: dir, Addr: "127.0.0.1:0"}))
	if err != nil {
		t.Fatalf("Start error: %v", err)
	}
	want := push(t, first.Addr()+"/keep/me:v1")
	if err := first.Close(t.Context()); err != nil {
		t.Fatalf("Close() error: %v", err)
	}

	second := start(t, Config{Dir: dir})
	if got := pull(t, second.Addr()+"/keep/me:v1"); got != want {
		t.Errorf("pull(keep/me:v1) after restart digest = %s, want %s", got, want)
	}
}

func TestDeleteIsEnabled(t *testing.T) {
	r := start(t, Config{Dir: t.TempDir()})
	d := push(t, r.Addr()+"/x:1")
	byDigest := ref(t, r.Addr()+"/x@"+d.String())

	if err := remote.Delete(byDigest, remote.WithContext(t.Context()), withTestAuth); err != nil {
		t.Fatalf("remote.Delete(%s) error: %v", byDigest, err)
	}
	if _, err := remote.Head(byDigest, remote.WithContext(t.Context())); err == nil {
		t.Errorf("remote.Head(%s) after delete succeeded, want an error", byDigest)
	}
}

func TestCloseFreesPort(t *testing.T) {
	r, err := Start(t.Context(), withUser(Config{Dir: t.TempDir(), Addr: "127.0.0.1:0"}))
	if err != nil {
		t.Fatalf("Start error: %v", err)
	}
	push(t, r.Addr()+"/x:1") // leaves idle keep-alive connections behind
	if err := r.Close(t.Context()); err != nil {
		t.Fatalf("Close() error: %v", err)
	}

	ln, err := net.Listen("tcp", r.Addr())
	if err != nil {
		t.Fatalf("net.Listen(%s) after Close() error: %v, want the port free", r.Addr(), err)
	}
	ln.Close()
	if _, err := http.Get("http://" + r.Addr() + "/v2/"); err == nil {
		t.Errorf("GET /v2/ after Close() succeeded, want an error")
	}
}

// envelopes is an httptest server that records the events distribution POSTs to it.
type envelopes struct {
	srv    *httptest.Server
	events chan notifications.Event
	errs   chan string
}

func newEnvelopes(t *testing.T) *envelopes {
	t.Helper()
	e := &envelopes{events: make(chan notifications.Event, 100), errs: make(chan string, 100)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if got, want := req.Header.Get("Authorization"), "Bearer kiln"; got != want {
			e.errs <- "Authorization header = " + got + ", want " + want
		}
		if got, want := req.Header.Get("Content-Type"), notifications.EventsMediaType; got != want {
			e.errs <- "Content-Type = " + got + ", want " + want
		}
		var env struct{ Events []notifications.Event }
		if err := json.NewDecoder(req.Body).Decode(&env); err != nil {
			e.errs <- "decoding envelope: " + err.Error()
		}
		for _, ev := range env.Events {
			e.events <- ev
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func TestNotifyDeliversManifestPush(t *testing.T) {
	e := newEnvelopes(t)
	r := start(t, Config{Dir: t.TempDir(), Notify: []Endpoint{{
		Name:    "kiln",
		URL:     e.srv.URL,
		Headers: http.Header{"Authorization": {"Bearer kiln"}},
	}}})

	d := push(t, r.Addr()+"/team/app:1")

	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Action != "push" || ev.Target.Repository != "team/app" || ev.Target.Digest.String() != d.String() {
				continue // a blob push, or the config's
			}
			if ev.Target.Tag != "1" {
				t.Errorf("manifest push event Target.Tag = %q, want %q", ev.Target.Tag, "1")
			}
			return
		case msg := <-e.errs:
			t.Fatalf("webhook: %s", msg)
		case <-deadline:
			t.Fatalf("no manifest push event for team/app@%s within 15s", d)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of logrus.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRegistryIsSilent(t *testing.T) {
	std := logrus.StandardLogger()
	var out syncBuffer
	oldOut, oldLevel := std.Out, std.GetLevel()
	std.SetOutput(&out)
	std.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		std.SetOutput(oldOut)
		std.SetLevel(oldLevel)
	})

	e := newEnvelopes(t)
	r, err := Start(t.Context(), withUser(Config{Dir: t.TempDir(), Addr: "127.0.0.1:0", Notify: []Endpoint{{Name: "kiln", URL: e.srv.URL}}}))
	if err != nil {
		t.Fatalf("Start error: %v", err)
	}
	d := push(t, r.Addr()+"/x:1")
	pull(t, r.Addr()+"/x:1")
	if _, err := remote.Image(ref(t, r.Addr()+"/missing:1"), remote.WithContext(t.Context())); err == nil {
		t.Errorf("remote.Image(missing:1) succeeded, want an error")
	}
	if err := remote.Delete(ref(t, r.Addr()+"/x@"+d.String()), remote.WithContext(t.Context()), withTestAuth); err != nil {
		t.Errorf("remote.Delete error: %v", err)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	if got := out.String(); got != "" {
		t.Errorf("logrus output during start, push, pull, a failed pull, delete and close = %q, want none", got)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen error: %v", err)
	}
	t.Cleanup(func() { busy.Close() })

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no dir", cfg: withUser(Config{Addr: "127.0.0.1:0"})},
		{name: "no user", cfg: Config{Dir: t.TempDir(), Addr: "127.0.0.1:0", Password: testPassword}},
		{name: "no password", cfg: Config{Dir: t.TempDir(), Addr: "127.0.0.1:0", User: testUser}},
		{name: "port in use", cfg: withUser(Config{Dir: t.TempDir(), Addr: busy.Addr().String()})},
		{name: "bad address", cfg: withUser(Config{Dir: t.TempDir(), Addr: "127.0.0.1:http-alt-nope"})},
		{name: "dir is a file", cfg: withUser(Config{Dir: file, Addr: "127.0.0.1:0"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(t.Context(), tt.cfg)
			if err == nil {
				r.Close(t.Context())
				t.Fatalf("Start(%+v) = a registry, want an error", tt.cfg)
			}
			t.Logf("Start(%+v) error: %v", tt.cfg, err)
		})
	}
}
