package gitremote

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

func TestResolve(t *testing.T) {
	const token = "ghp_s3cretToken"
	g := gittest.NewServer(t, token)
	pub := g.PublishRefs(t, "acme/app.git", "dev")
	priv := g.PublishRefs(t, "private/app.git", "main")

	tests := []struct {
		name, url, ref, token string
		commit, fullRef       string
	}{
		{"branch", pub.URL, "main", "", pub.Main, "refs/heads/main"},
		{"other branch", pub.URL, "dev", "", pub.Dev, "refs/heads/dev"},
		{"full ref", pub.URL, "refs/heads/main", "", pub.Main, "refs/heads/main"},
		{"default branch", pub.URL, "", "", pub.Dev, "refs/heads/dev"},
		{"annotated tag, peeled", pub.URL, "v1", "", pub.Release, "refs/tags/v1"},
		{"lightweight tag", pub.URL, "light", "", pub.Release, "refs/tags/light"},
		{"private with token", priv.URL, "main", token, priv.Main, "refs/heads/main"},
		{"private default branch", priv.URL, "", token, priv.Main, "refs/heads/main"},
		{"token a public repository ignores", pub.URL, "main", token, pub.Main, "refs/heads/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commit, ref, err := Resolve(t.Context(), tt.url, tt.ref, tt.token)
			if err != nil || commit != tt.commit || ref != tt.fullRef {
				t.Errorf("Resolve(%s, %q) = %s, %s, %v; want %s, %s", tt.url, tt.ref, commit, ref, err, tt.commit, tt.fullRef)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	const token = "ghp_s3cretToken"
	g := gittest.NewServer(t, token)
	pub := g.PublishRefs(t, "acme/app.git", "main")
	priv := g.PublishRefs(t, "private/app.git", "main")
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	t.Cleanup(failing.Close)
	notGit := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>a web page</html>"))
	}))
	t.Cleanup(notGit.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name, url, ref, token string
		code                  proto.Code
		want                  string // in the message
	}{
		{"unknown branch", pub.URL, "nope", "", proto.Invalid, `no branch or tag "nope"`},
		{"unknown full ref", pub.URL, "refs/heads/v1", "", proto.Invalid, `"refs/heads/v1"`},
		{"no repository", g.URL + "/acme/missing.git", "", "", proto.Invalid, "repository not found"},
		{"private without token", priv.URL, "main", "", proto.Invalid, "authentication required"},
		{"private with a wrong token", priv.URL, "main", "ghp_wrong", proto.Invalid, "needs a git token"},
		{"not a git server", notGit.URL + "/app.git", "", "", proto.Invalid, notGit.URL},
		{"server failing", failing.URL + "/app.git", "", "", proto.Unavailable, "502"},
		{"unreachable", closed.URL + "/app.git", "", "", proto.Unavailable, closed.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			commit, _, err := Resolve(ctx, tt.url, tt.ref, tt.token)
			if got := proto.ErrorCode(err); got != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve(%s, %q) = %s, %v (%q); want code %q naming %s", tt.url, tt.ref, commit, err, got, tt.code, tt.want)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("Resolve error %q holds the token", err)
			}
		})
	}
}

func TestPick(t *testing.T) {
	const url = "https://git.example/app.git"
	commit := plumbing.NewHash("1111111111111111111111111111111111111111")
	tagged := plumbing.NewHash("2222222222222222222222222222222222222222")
	main := plumbing.NewHashReference("refs/heads/main", commit)
	tag := plumbing.NewHashReference("refs/tags/v1", plumbing.NewHash("3333333333333333333333333333333333333333"))
	peeled := plumbing.NewHashReference("refs/tags/v1^{}", tagged)
	symHead := plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main")
	hashHead := plumbing.NewHashReference(plumbing.HEAD, commit)

	tests := []struct {
		name     string
		refs     []*plumbing.Reference
		ref      string
		wantName plumbing.ReferenceName
		wantHash plumbing.Hash
		wantErr  string // in the message of a proto.Invalid error
	}{
		{name: "HEAD's branch", refs: []*plumbing.Reference{symHead, main}, wantName: "refs/heads/main", wantHash: commit},
		{name: "HEAD not saying its branch", refs: []*plumbing.Reference{hashHead, main}, wantName: plumbing.HEAD, wantHash: commit},
		{name: "no HEAD", refs: []*plumbing.Reference{main}, wantErr: "has no HEAD"},
		{name: "HEAD on a missing branch", refs: []*plumbing.Reference{symHead}, wantErr: "no branch main, where its HEAD points"},
		{name: "branch before tag", refs: []*plumbing.Reference{tag, plumbing.NewHashReference("refs/heads/v1", commit)},
			ref: "v1", wantName: "refs/heads/v1", wantHash: commit},
		{name: "annotated tag peeled", refs: []*plumbing.Reference{main, tag, peeled}, ref: "v1", wantName: "refs/tags/v1", wantHash: tagged},
		{name: "annotated tag not peeled", refs: []*plumbing.Reference{main, tag}, ref: "refs/tags/v1", wantName: "refs/tags/v1", wantHash: tag.Hash()},
		{name: "a symbolic ref is not a branch", refs: []*plumbing.Reference{main, plumbing.NewSymbolicReference("refs/heads/alias", "refs/heads/main")},
			ref: "alias", wantErr: `no branch or tag "alias"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pick(tt.refs, url, tt.ref)
			if tt.wantErr != "" {
				if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Pick(%q) = %v, %v; want an invalid error naming %s", tt.ref, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Name() != tt.wantName || got.Hash() != tt.wantHash {
				t.Errorf("Pick(%q) = %v, %v; want %s %s", tt.ref, got, err, tt.wantHash, tt.wantName)
			}
		})
	}
}
