package builder

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestBlobStore: builds exporting into a shared blob store make layouts that push as they should; a warm
// rebuild adds nothing to the store; and emptying the store past its limit leaves each build's layout whole.
func TestBlobStore(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		wantEmpty bool // the store is emptied after each build
	}{
		{"kept", 1 << 30, false},
		{"trimmed at every build", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "blobs")
			b, err := New(t.Context(), buildkitdAddr, WithBlobStore(dir, tt.limit))
			if err != nil {
				t.Fatalf("New(WithBlobStore) = %v", err)
			}
			t.Cleanup(func() { b.Close() })
			reg := newRegistry(t)
			base, _ := pushBase(t, b, reg)
			files := map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo blob > /blob.txt\n"}

			var counts []int
			for i := range 2 {
				res, layout, log, err := build(t, b, files, Request{})
				if err != nil {
					t.Fatalf("Build #%d = %v\n%s", i+1, err, log)
				}
				counts = append(counts, countBlobs(t, dir))
				ref := reg + "/app:blob"
				imgs, err := Push(t.Context(), layout, []string{ref}, io.Discard, PushOptions{})
				if err != nil {
					t.Fatalf("Push(#%d) = %v", i+1, err)
				}
				if imgs[0].Digest != res.Digest {
					t.Errorf("pushed digest %s, built %s", imgs[0].Digest, res.Digest)
				}
				if got := readImageFile(t, ref, res.Digest, "blob.txt"); got != "blob\n" {
					t.Errorf("/blob.txt = %q, want %q", got, "blob\n")
				}
			}
			switch {
			case tt.wantEmpty && (counts[0] != 0 || counts[1] != 0):
				t.Errorf("blob store holds %v blobs after each build, want it emptied past its limit", counts)
			case !tt.wantEmpty && (counts[0] == 0 || counts[1] != counts[0]):
				t.Errorf("blob store holds %v blobs after each build, want the same non-zero count: a warm build adds nothing", counts)
			}
		})
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
