package ociregistry

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// unauthorized reports whether err is the registry's 401.
func unauthorized(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized
}

func TestAuthOnLoopback(t *testing.T) {
	r := start(t, Config{Dir: t.TempDir()})
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random.Image error: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest() error: %v", err)
	}
	tagged := ref(t, r.Addr()+"/team/app:1")
	byDigest := ref(t, r.Addr()+"/team/app@"+d.String())
	wrong := remote.WithAuth(&authn.Basic{Username: testUser, Password: "guess"})

	if err := remote.Write(tagged, img, remote.WithContext(t.Context())); !unauthorized(err) {
		t.Errorf("remote.Write(%s) anonymous error = %v, want 401 Unauthorized", tagged, err)
	}
	if err := remote.Write(tagged, img, remote.WithContext(t.Context()), wrong); !unauthorized(err) {
		t.Errorf("remote.Write(%s) with a wrong password error = %v, want 401 Unauthorized", tagged, err)
	}
	if err := remote.Write(tagged, img, remote.WithContext(t.Context()), withTestAuth); err != nil {
		t.Fatalf("remote.Write(%s) with the registry's credentials error: %v", tagged, err)
	}
	if got := pull(t, tagged.String()); got != d {
		t.Errorf("anonymous pull(%s) digest = %s, want %s", tagged, got, d)
	}
	if _, err := remote.Head(tagged, remote.WithContext(t.Context()), wrong); !unauthorized(err) {
		t.Errorf("remote.Head(%s) with a wrong password error = %v, want 401 Unauthorized", tagged, err)
	}
	if err := remote.Delete(byDigest, remote.WithContext(t.Context())); !unauthorized(err) {
		t.Errorf("remote.Delete(%s) anonymous error = %v, want 401 Unauthorized", byDigest, err)
	}
	if _, err := remote.Head(byDigest, remote.WithContext(t.Context())); err != nil {
		t.Errorf("remote.Head(%s) after the refused delete error: %v, want the image still there", byDigest, err)
	}
	if err := remote.Delete(byDigest, remote.WithContext(t.Context()), withTestAuth); err != nil {
		t.Errorf("remote.Delete(%s) with the registry's credentials error: %v", byDigest, err)
	}
}

func TestAuthBeyondLoopback(t *testing.T) {
	r := start(t, Config{Dir: t.TempDir(), Addr: "0.0.0.0:0"}) // every address: reached beyond this machine
	_, port, err := net.SplitHostPort(r.Addr())
	if err != nil {
		t.Fatalf("SplitHostPort(%s) error: %v", r.Addr(), err)
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	tagged := ref(t, addr+"/team/app:1")
	d := push(t, tagged.String())

	if _, err := remote.Head(tagged, remote.WithContext(t.Context())); !unauthorized(err) {
		t.Errorf("remote.Head(%s) anonymous error = %v, want 401 Unauthorized", tagged, err)
	}
	desc, err := remote.Head(tagged, remote.WithContext(t.Context()), withTestAuth)
	if err != nil {
		t.Fatalf("remote.Head(%s) with the registry's credentials error: %v", tagged, err)
	}
	if desc.Digest != d {
		t.Errorf("remote.Head(%s).Digest = %s, want %s", tagged, desc.Digest, d)
	}
}

func TestChallenge(t *testing.T) {
	r := start(t, Config{Dir: t.TempDir()})
	tests := []struct {
		name       string
		method     string
		user, pass string
		want       int
	}{
		{name: "anonymous upload", method: http.MethodPost, want: http.StatusUnauthorized},
		{name: "anonymous ping", method: http.MethodGet, want: http.StatusOK},
		{name: "wrong password ping", method: http.MethodGet, user: testUser, pass: "guess", want: http.StatusUnauthorized},
		{name: "wrong user upload", method: http.MethodPost, user: "admin", pass: testPassword, want: http.StatusUnauthorized},
		{name: "upload", method: http.MethodPost, user: testUser, pass: testPassword, want: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "http://" + r.Addr() + "/v2/"
			if tt.method == http.MethodPost {
				u += "team/app/blobs/uploads/"
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s error: %v", tt.method, u, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s status = %d, want %d", tt.method, u, resp.StatusCode, tt.want)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				return
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="kiln"`; got != want {
				t.Errorf("%s %s WWW-Authenticate = %q, want %q", tt.method, u, got, want)
			}
			var body struct{ Errors []struct{ Code string } }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "UNAUTHORIZED" {
				t.Errorf("%s %s body = %+v (%v), want one UNAUTHORIZED error", tt.method, u, body, err)
			}
		})
	}
}
