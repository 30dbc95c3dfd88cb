package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// packed returns the headers of PackContext's archive of dir, after checking it is what the server accepts.
func packed(t *testing.T, dir, dockerfile string) ([]*tar.Header, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := PackContext(t.Context(), dir, dockerfile, &b); err != nil {
		t.Fatalf("PackContext(%s, %q): %v", dir, dockerfile, err)
	}
	if err := checkArchive(bytes.NewReader(b.Bytes()), 1<<30); err != nil {
		t.Fatalf("the server would refuse PackContext's archive: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	var hdrs []*tar.Header
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, b.Bytes()
		}
		if err != nil {
			t.Fatalf("tar Next: %v", err)
		}
		hdrs = append(hdrs, hdr)
	}
}

func names(hdrs []*tar.Header) []string {
	var out []string
	for _, h := range hdrs {
		out = append(out, h.Name)
	}
	return out
}

func TestPackContext(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".dockerignore": "# build output\nDockerfile\n.dockerignore\nbuild\n!build/keep.txt\n*.log\nsecret/\n",
		"Dockerfile":    "FROM scratch\n",
		"app.go":        "package main\n",
		"x.log":         "noise\n",
		"docs/readme":   "hello\n",
		"docs/old.log":  "kept: *.log matches only at the top\n",
		// "build" is excluded but has an exception inside; build/sub cannot hold one.
		"build/a.o":          "obj",
		"build/keep.txt":     "keep me",
		"build/sub/deep.o":   "obj",
		"secret/key":         "hunter2",
		".git/HEAD":          "ref: refs/heads/main\n",
		".git/objects/ab/cd": "blob",
		"vendor/lib/.git":    "gitdir: ../../.git/modules/lib\n",
		"vendor/lib/lib.go":  "package lib\n",
	})
	if err := os.Symlink("app.go", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "app.go"), mtime, mtime); err != nil {
		t.Fatal(err)
	}

	hdrs, first := packed(t, dir, "")
	want := []string{".dockerignore", "Dockerfile", "app.go", "build/keep.txt", "docs/", "docs/old.log", "docs/readme",
		"link", "run.sh", "vendor/", "vendor/lib/", "vendor/lib/lib.go"}
	if got := names(hdrs); !slices.Equal(got, want) {
		t.Errorf("PackContext names = %q, want %q", got, want)
	}
	for _, h := range hdrs {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %s owner = %d:%d (%q:%q), want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		switch h.Name {
		case "link":
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "app.go" {
				t.Errorf("entry link = type %q to %q, want a symlink to app.go", h.Typeflag, h.Linkname)
			}
		case "run.sh":
			if h.Mode&0o777 != 0o755 {
				t.Errorf("entry run.sh mode = %o, want 755", h.Mode&0o777)
			}
		case "app.go":
			if !h.ModTime.Equal(mtime) {
				t.Errorf("entry app.go mtime = %v, want %v, to the nanosecond", h.ModTime, mtime)
			}
		}
	}

	if _, again := packed(t, dir, ""); !bytes.Equal(first, again) {
		t.Error("PackContext twice gave different bytes, want the same")
	}
	linked := filepath.Join(t.TempDir(), "linked")
	if err := os.Symlink(dir, linked); err != nil {
		t.Fatal(err)
	}
	if _, viaLink := packed(t, linked, ""); !bytes.Equal(first, viaLink) {
		t.Error("PackContext of a symlink to the directory differs from PackContext of the directory")
	}
}

func TestPackContextDockerfile(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		dockerfile string
		want       []string
	}{
		{"in an ignored directory", map[string]string{
			".dockerignore": "ci\n", "ci/Dockerfile": "FROM scratch\n", "ci/other": "x", "main.go": "x",
		}, "ci/Dockerfile", []string{".dockerignore", "ci/Dockerfile", "main.go"}},
		{"ignored by a wildcard", map[string]string{
			".dockerignore": "*\n!main.go\n", "Dockerfile.prod": "FROM scratch\n", "main.go": "x", "other": "x",
		}, "Dockerfile.prod", []string{".dockerignore", "Dockerfile.prod", "main.go"}},
		{"no .dockerignore", map[string]string{"Dockerfile": "FROM scratch\n", "a/b": "x"},
			"", []string{"Dockerfile", "a/", "a/b"}},
		{"exception reached through **", map[string]string{
			".dockerignore": "deps\n!**/LICENSE\n", "Dockerfile": "x", "deps/x/LICENSE": "MIT", "deps/x/code": "x",
		}, "", []string{".dockerignore", "Dockerfile", "deps/x/LICENSE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			hdrs, _ := packed(t, dir, tt.dockerfile)
			if got := names(hdrs); !slices.Equal(got, tt.want) {
				t.Errorf("PackContext(%q) names = %q, want %q", tt.dockerfile, got, tt.want)
			}
		})
	}
}

// TestPackContextMissingDockerfile: a context without its Dockerfile is still sent; the run then fails with
// BuildKit's own message, like every other Dockerfile problem.
func TestPackContextMissingDockerfile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.txt": "app"})
	if err := PackContext(t.Context(), dir, "Containerfile", io.Discard); err != nil {
		t.Errorf("PackContext(%s, Containerfile) = %v, want the context packed without it", dir, err)
	}
}

func TestPackContextErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	tests := []struct {
		name, dir, dockerfile string
	}{
		{"Dockerfile outside", dir, "../Dockerfile"},
		{"no such directory", filepath.Join(dir, "nope"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := PackContext(t.Context(), tt.dir, tt.dockerfile, io.Discard)
			if proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("PackContext(%s, %q) = %v, want an invalid error", tt.dir, tt.dockerfile, err)
			}
		})
	}
}
