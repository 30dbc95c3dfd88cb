package builder

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// sameTime is the modification time every file of the isolation tests' contexts gets, so that BuildKit's file
// sync cannot tell their files apart by time.
var sameTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// writeContext writes files into a new directory and gives every path in it the time sameTime.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, sameTime, sameTime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// layoutFile returns the content of path in the flattened filesystem of the single image of the OCI layout dir.
func layoutFile(t *testing.T, dir, path string) string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("layout.FromPath(%s) = %v", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("the layout %s holds %d images (%v), want 1", dir, len(m.Manifests), err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("the image in %s has no %s", dir, path)
		}
		if err != nil {
			t.Fatalf("reading the image in %s: %v", dir, err)
		}
		if strings.TrimPrefix(hdr.Name, "/") == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// TestBuildSeesOnlyItsOwnContext builds, one after the other, two contexts whose files have the same names,
// sizes, modes and times but not the same content, which is all BuildKit's file sync compares to decide that a
// file it holds from an earlier transfer need not be sent again. Each image must hold its own context's files.
func TestBuildSeesOnlyItsOwnContext(t *testing.T) {
	b := newBuilder(t)
	both := map[string]string{"a/Dockerfile": "FROM scratch\nCOPY x /a\n", "b/Dockerfile": "FROM scratch\nCOPY x /b\n", "x": "x\n"}
	tests := []struct {
		name         string
		first, again map[string]string // the two contexts, built in this order
		dockerfiles  [2]string         // their Request.Dockerfile
		key          string            // the Request.ContextKey of both
		path, want   string            // what the second image must hold at path
	}{
		{
			name:  "context file",
			first: map[string]string{"Dockerfile": "FROM scratch\nCOPY .env /.env\n", ".env": "TOKEN=first-secret\n"},
			again: map[string]string{"Dockerfile": "FROM scratch\nCOPY .env /.env\n", ".env": "TOKEN=again-secret\n"},
			path:  ".env", want: "TOKEN=again-secret\n",
		},
		{
			name:  "Dockerfile",
			first: map[string]string{"Dockerfile": "FROM scratch\nCOPY a /out\n", "a": "from a\n", "b": "from b\n"},
			again: map[string]string{"Dockerfile": "FROM scratch\nCOPY b /out\n", "a": "from a\n", "b": "from b\n"},
			path:  "out", want: "from b\n",
		},
		{
			name:  "one key, another Dockerfile",
			first: both, again: both, dockerfiles: [2]string{"a/Dockerfile", "b/Dockerfile"}, key: "same content",
			path: "b", want: "x\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, files := range []map[string]string{tt.first, tt.again} {
				req := Request{ContextDir: writeContext(t, files), OutputDir: filepath.Join(t.TempDir(), "oci"),
					Dockerfile: tt.dockerfiles[i], ContextKey: tt.key}
				var log syncBuffer
				if _, err := b.Build(t.Context(), req, &log); err != nil {
					t.Fatalf("Build(context %d) = %v\n%s", i+1, err, log.String())
				}
				if i == 1 {
					if got := layoutFile(t, req.OutputDir, tt.path); got != tt.want {
						t.Errorf("Build(second context): the image's %s = %q, want %q", tt.path, got, tt.want)
					}
				}
			}
		})
	}
}

// TestBuildContextKeyShares builds a context of 4 MB twice, from two directories of the same files, under one
// ContextKey: the second build sends none of the data again.
func TestBuildContextKeyShares(t *testing.T) {
	b := newBuilder(t)
	files := map[string]string{"Dockerfile": "FROM scratch\nCOPY big /big\n", "big": strings.Repeat("0123456789abcdef", 1<<18)}
	for i, wantMB := range []bool{true, false} {
		req := Request{ContextDir: writeContext(t, files), OutputDir: filepath.Join(t.TempDir(), "oci"), ContextKey: t.Name()}
		var log syncBuffer
		if _, err := b.Build(t.Context(), req, &log); err != nil {
			t.Fatalf("Build(%d) = %v\n%s", i+1, err, log.String())
		}
		sent := regexp.MustCompile(`transferring context: [0-9.]+MB`).FindString(log.String())
		if (sent != "") != wantMB {
			t.Errorf("Build(%d) sent %q, want megabytes sent: %v\n%s", i+1, sent, wantMB, log.String())
		}
	}
}

// TestExecWorkspaceSeesOnlyItsOwnFiles runs a command on a workspace, removes it, and runs one on another
// directory made at the same path, whose file has the same name, size, mode and time but not the same content,
// as a run whose directory is named as an earlier run's would: the command must read its own file.
func TestExecWorkspaceSeesOnlyItsOwnFiles(t *testing.T) {
	b := newBuilder(t)
	base, _ := pushBase(t, b, newRegistry(t))
	ws := filepath.Join(t.TempDir(), "workspace")
	for _, content := range []string{"TOKEN=first-secret", "TOKEN=again-secret"} {
		if err := os.RemoveAll(ws); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(writeContext(t, map[string]string{".env": content}), ws); err != nil {
			t.Fatal(err)
		}
		code, log, err := execLog(t, b, ExecRequest{Image: base, Workspace: ws, Args: []string{"cat", "/workspace/.env"}})
		if code != 0 || err != nil {
			t.Fatalf("Exec(cat .env) = %d, %v\n%s", code, err, log)
		}
		if !strings.Contains(log, content) {
			t.Errorf("Exec(cat .env) printed %q, want %q", log, content)
		}
	}
}

func TestGitContextKey(t *testing.T) {
	const url, commit = "https://git.example/app.git", "0123456789abcdef0123456789abcdef01234567"
	key := GitContextKey(url, commit, "")
	tests := []struct {
		name                string
		url, commit, subdir string
		same                bool // whether the key is key's
	}{
		{name: "the same checkout", url: url, commit: commit, same: true},
		{name: "another repository", url: "https://git.example/other.git", commit: commit},
		{name: "another commit", url: url, commit: "1123456789abcdef0123456789abcdef01234567"},
		{name: "a directory of it", url: url, commit: commit, subdir: "app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GitContextKey(tt.url, tt.commit, tt.subdir)
			if got == "" || (got == key) != tt.same {
				t.Errorf("GitContextKey(%q, %q, %q) = %q, want it the same as %q: %v", tt.url, tt.commit, tt.subdir, got, key, tt.same)
			}
		})
	}
	if got := GitContextKey(url, "", ""); got != "" {
		t.Errorf("GitContextKey(%q, \"\", \"\") = %q, want \"\" (no commit: no key to share)", url, got)
	}
}

// TestDirContextKey: the key of a directory stays the same while it changes, and a directory made again at the
// same path, or another one, has another key.
func TestDirContextKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "workspace")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := DirContextKey(dir)
	if err != nil || key == "" {
		t.Fatalf("DirContextKey(%s) = %q, %v", dir, key, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := DirContextKey(dir); again != key || err != nil {
		t.Errorf("DirContextKey(%s) after a file was written = %q, %v, want %q", dir, again, err, key)
	}
	if other, err := DirContextKey(t.TempDir()); other == key || err != nil {
		t.Errorf("DirContextKey(another directory) = %q, %v, want a key other than %q", other, err, key)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if remade, err := DirContextKey(dir); remade == key || err != nil {
		t.Errorf("DirContextKey(%s) made again = %q, %v, want a key other than %q", dir, remade, err, key)
	}
	if _, err := DirContextKey(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("DirContextKey(a missing directory) = nil error, want one")
	}
}
