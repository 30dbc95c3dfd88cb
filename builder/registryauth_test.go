package builder

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// newPrivateRegistry starts go-containerregistry's registry behind HTTP Basic authentication with user and
// password, for every request, reads included, and returns its host:port.
func newPrivateRegistry(t *testing.T, user, password string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestBuildPullsWithRegistryCredentials(t *testing.T) {
	host := newPrivateRegistry(t, "kiln", "pass-word")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random.Image = %v", err)
	}
	if img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH}); err != nil {
		t.Fatalf("mutate.ConfigFile = %v", err)
	}
	base := host + "/private/base:1"
	auth := remote.WithAuth(&authn.Basic{Username: "kiln", Password: "pass-word"})
	ref, err := name.ParseReference(base)
	if err != nil {
		t.Fatalf("name.ParseReference(%s) = %v", base, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context()), auth); err != nil {
		t.Fatalf("remote.Write(%s) = %v", base, err)
	}
	files := map[string]string{"Dockerfile": "FROM " + base + "\nLABEL built=yes\n"}

	tests := []struct {
		name  string
		creds RegistryCredentials
		ok    bool
	}{
		{name: "no credentials"},
		{name: "another host's", creds: func(_ context.Context, h string) (string, string, bool) {
			return "kiln", "pass-word", h == "elsewhere:5000"
		}},
		{name: "the registry's", creds: func(_ context.Context, h string) (string, string, bool) {
			return "kiln", "pass-word", h == host
		}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.creds != nil {
				opts = append(opts, WithRegistryCredentials(tt.creds))
			}
			b, err := New(t.Context(), buildkitdAddr, opts...)
			if err != nil {
				t.Fatalf("New(%s) = %v", buildkitdAddr, err)
			}
			t.Cleanup(func() { b.Close() })
			_, _, out, err := build(t, b, files, Request{})
			if got := err == nil; got != tt.ok {
				t.Errorf("Build(FROM %s) error = %v, want success %v\n%s", base, err, tt.ok, out)
			}
			if err != nil && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
				t.Errorf("Build(FROM %s) error = %v, want the registry's 401 Unauthorized", base, err)
			}
			if strings.Contains(out, "pass-word") {
				t.Errorf("Build(FROM %s) log holds the password:\n%s", base, out)
			}
		})
	}
}
