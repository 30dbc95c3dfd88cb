package builder

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/proto"
)

// writeLayout writes an OCI layout holding each of items (v1.Image or v1.ImageIndex) and returns its directory.
func writeLayout(t *testing.T, items ...any) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		switch it := it.(type) {
		case v1.Image:
			err = p.AppendImage(it)
		case v1.ImageIndex:
			err = p.AppendIndex(it)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// randomImage returns a small random image.
func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushLayouts(t *testing.T) {
	host := newRegistry(t)
	img := randomImage(t)
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	two := writeLayout(t, randomImage(t), randomImage(t))
	twoIndex, err := layout.ImageIndexFromPath(two)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		dir       string
		want      interface{ Digest() (v1.Hash, error) }
		wantIndex bool // the registry must serve an index, not an image
	}{
		{name: "one image", dir: writeLayout(t, img), want: img},
		{name: "one index", dir: writeLayout(t, idx), want: idx, wantIndex: true},
		{name: "several manifests", dir: two, want: twoIndex, wantIndex: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := tt.want.Digest()
			if err != nil {
				t.Fatal(err)
			}
			ref := host + "/push/" + string(rune('a'+i)) + ":1"
			images, err := Push(t.Context(), tt.dir, []string{ref}, nil, PushOptions{})
			if err != nil {
				t.Fatalf("Push(%s) = %v", ref, err)
			}
			if len(images) != 1 || images[0].GetReference() != ref || images[0].GetDigest() != want.String() {
				t.Fatalf("Push(%s) = %v, want [%s@%s]", ref, images, ref, want)
			}
			r, _ := name.ParseReference(ref)
			desc, err := remote.Get(r, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatalf("remote.Get(%s) = %v", ref, err)
			}
			if desc.Digest != want || desc.MediaType.IsIndex() != tt.wantIndex {
				t.Errorf("remote.Get(%s) = %s %s, want %s (index: %v)", ref, desc.MediaType, desc.Digest, want, tt.wantIndex)
			}
		})
	}
}

func TestPushFailures(t *testing.T) {
	dir := writeLayout(t, randomImage(t))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	denying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":[{"code":"DENIED","message":"no pushing here"}]}`))
	}))
	t.Cleanup(denying.Close)
	denied := strings.TrimPrefix(denying.URL, "http://")

	tests := []struct {
		name        string
		dir         string
		refs        []string
		wantMsg     string
		wantRetries int // "retrying" lines in the log
	}{
		{
			name:        "unreachable registry",
			dir:         dir,
			refs:        []string{closed + "/app:1"},
			wantMsg:     "pushing " + closed + "/app:1: registry " + closed + " unreachable after 3 attempts: ",
			wantRetries: 2,
		},
		{
			name:    "registry refuses",
			dir:     dir,
			refs:    []string{denied + "/app:1"},
			wantMsg: "pushing " + denied + "/app:1: registry " + denied + " refused it: ",
		},
		{name: "bad reference", dir: dir, refs: []string{"Not A Ref"}, wantMsg: "Not A Ref"},
		{name: "no reference", dir: dir, wantMsg: "no image references"},
		{name: "no layout", dir: t.TempDir(), refs: []string{closed + "/app:1"}, wantMsg: "reading the OCI layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			start := time.Now()
			_, err := Push(t.Context(), tt.dir, tt.refs, &log, PushOptions{Retries: 2, Backoff: 10 * time.Millisecond})
			if code := proto.ErrorCode(err); code != proto.Invalid {
				t.Fatalf("Push(%v) = %v (kind %q), want kind %q", tt.refs, err, code, proto.Invalid)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Push(%v) = %q, want %q in it", tt.refs, err, tt.wantMsg)
			}
			if got := strings.Count(log.String(), "; retrying in "); got != tt.wantRetries {
				t.Errorf("Push(%v) log = %q, want %d retries in it", tt.refs, log.String(), tt.wantRetries)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Push(%v) took %v, want the test's tiny backoff to keep it under 5s", tt.refs, took)
			}
		})
	}
}
