package builder

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// TestGitFetchPrivate fetches from a server that wants a token. The server repeats the credentials it refuses in
// its answer, as a careless one might, so the wrong token reaches go-git's error and Fetch must take it out.
func TestGitFetchPrivate(t *testing.T) {
	const token, wrong = "kiln-right-token-1234", "kiln-wrong-token-5678"
	srv := newGitServer(t, token)
	repo := srv.newRepo(t, "private", true)
	v1 := repo.commit(t, "main", appV1(t))

	tests := []struct {
		name  string
		token string
		// cached fills the cache with the right token first: a cached commit must not dodge the server's check.
		cached  bool
		wantErr string // "" for success
	}{
		{name: "right token", token: token},
		{name: "no token", token: "", wantErr: "authentication required: no credentials"},
		{name: "wrong token", token: wrong, wantErr: "authentication required: bad credentials x-access-token:[token]"},
		{name: "no token, commit cached", token: "", cached: true, wantErr: "authentication required"},
		{name: "wrong token, commit cached", token: wrong, cached: true, wantErr: "authentication required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewGitCache(t.TempDir())
			if tt.cached {
				if _, err := c.Fetch(t.Context(), GitRequest{URL: repo.URL, Commit: v1, Token: token}, t.TempDir(), nil); err != nil {
					t.Fatalf("filling the cache: %v", err)
				}
			}
			req := GitRequest{URL: repo.URL, Ref: "main", Commit: v1, Token: tt.token}
			dest := t.TempDir()
			var log bytes.Buffer
			got, err := c.Fetch(t.Context(), req, dest, &log)
			if tt.wantErr == "" {
				if err != nil || got != v1 {
					t.Fatalf("Fetch(token %s) = %s, %v, want %s\n%s", tt.name, got, err, v1, log.String())
				}
				if files := listTree(t, dest); !maps.Equal(files, v1Files) {
					t.Errorf("Fetch(token %s) checked out\n%q\nwant\n%q", tt.name, files, v1Files)
				}
			} else {
				if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch(%s) = %v (%s), want kind invalid and %q", tt.name, err, proto.ErrorCode(err), tt.wantErr)
				}
				if !strings.Contains(log.String(), err.Error()) {
					t.Errorf("Fetch(%s) logged\n%s\nwant the error", tt.name, log.String())
				}
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), wrong) || strings.Contains(e.Error(), token) {
					t.Errorf("Fetch(%s) = %v, which tells a token", tt.name, e)
				}
			}
			if strings.Contains(log.String(), wrong) || strings.Contains(log.String(), token) {
				t.Errorf("Fetch(%s) logged a token:\n%s", tt.name, log.String())
			}
		})
	}
}
