package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// entry is one archive entry for a test; body is the content of a regular file.
type entry struct {
	hdr  tar.Header
	body string
}

// file, dir, symlink and hardlink make test entries.
func file(name, body string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime}, body: body}
}

func dir(name string, mode int64) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, ModTime: mtime}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: mtime}}
}

// mtime is the modification time of every test entry, to the nanosecond, as PAX headers carry it.
var mtime = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

// tarOf returns a tar archive of entries, in PAX format unless an entry says otherwise.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.hdr.Format == tar.FormatUnknown {
			e.hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipOf compresses b.
func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bomb returns a gzip-compressed tar with one file of size zero bytes, streamed so that the test never holds
// the uncompressed archive.
func bomb(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestExtractRefuses(t *testing.T) {
	// Each archive is extracted into parent/ctx; a name that escapes would land in parent.
	tests := []struct {
		name     string
		archive  func(parent string) []byte
		max      int64
		wantKind proto.Code
		wantMsg  string
	}{
		{
			name:     "dot dot",
			archive:  func(string) []byte { return tarOf(t, file("ok.txt", "ok", 0o644), file("../escaped", "x", 0o644)) },
			wantKind: proto.Invalid, wantMsg: `"../escaped"`,
		},
		{
			name:     "dot dot inside a name",
			archive:  func(string) []byte { return tarOf(t, file("a/../../escaped", "x", 0o644)) },
			wantKind: proto.Invalid, wantMsg: `"a/../../escaped"`,
		},
		{
			name: "absolute name",
			archive: func(parent string) []byte {
				return tarOf(t, file(filepath.Join(parent, "escaped"), "x", 0o644))
			},
			wantKind: proto.Invalid, wantMsg: "absolute name",
		},
		{
			name: "symlink out, then a file through it",
			archive: func(string) []byte {
				return tarOf(t, dir("sub/", 0o755), symlink("sub/up", "../.."), file("sub/up/escaped", "x", 0o644))
			},
			wantKind: proto.Invalid, wantMsg: `"sub/up" to "../.."`,
		},
		{
			name: "absolute symlink",
			archive: func(parent string) []byte {
				return tarOf(t, symlink("abs", parent), file("abs/escaped", "x", 0o644))
			},
			wantKind: proto.Invalid, wantMsg: `symbolic link "abs"`,
		},
		{
			name: "hard link out",
			archive: func(parent string) []byte {
				return tarOf(t, hardlink("passwd", "../outside.txt"))
			},
			wantKind: proto.Invalid, wantMsg: `hard link "passwd"`,
		},
		{
			name:     "hard link to an absolute path",
			archive:  func(string) []byte { return tarOf(t, hardlink("passwd", "/etc/passwd")) },
			wantKind: proto.Invalid, wantMsg: `hard link "passwd" to "/etc/passwd"`,
		},
		{
			name:     "hard link to an entry not seen before",
			archive:  func(string) []byte { return tarOf(t, hardlink("early", "later.txt"), file("later.txt", "x", 0o644)) },
			wantKind: proto.Invalid, wantMsg: `hard link "early" to "later.txt"`,
		},
		{
			name: "character device",
			archive: func(string) []byte {
				return tarOf(t, entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666}})
			},
			wantKind: proto.Invalid, wantMsg: `"null"`,
		},
		{
			name: "fifo",
			archive: func(string) []byte {
				return tarOf(t, entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "pipe", Mode: 0o644}})
			},
			wantKind: proto.Invalid, wantMsg: `"pipe"`,
		},
		{
			name:     "not an archive",
			archive:  func(string) []byte { return []byte(strings.Repeat("this is a Dockerfile, not a tar\n", 40)) },
			wantKind: proto.Invalid, wantMsg: "the build context is not a tar or gzip archive",
		},
		{
			name:     "short text",
			archive:  func(string) []byte { return []byte("FROM scratch\n") },
			wantKind: proto.Invalid, wantMsg: "the build context is not a tar or gzip archive",
		},
		{
			name:     "empty input",
			archive:  func(string) []byte { return nil },
			wantKind: proto.Invalid, wantMsg: "the build context is not a tar or gzip archive",
		},
		{
			name:     "gzip of something else",
			archive:  func(string) []byte { return gzipOf(t, []byte(strings.Repeat("not a tar\n", 100))) },
			wantKind: proto.Invalid, wantMsg: "the build context is not a tar or gzip archive",
		},
		{
			name: "truncated gzip",
			archive: func(string) []byte {
				e := file("a.txt", strings.Repeat("a", 10000), 0o644)
				e.hdr.Format, e.hdr.ModTime = tar.FormatUSTAR, mtime.Truncate(time.Second) // no PAX block first
				return gzipOf(t, tarOf(t, e))[:100]
			},
			wantKind: proto.Invalid, wantMsg: "reading the build context archive",
		},
		{
			name:     "gzip bomb",
			archive:  func(string) []byte { return bomb(t, 64<<20) },
			max:      1 << 20,
			wantKind: proto.TooLarge, wantMsg: "limit of 1048576 bytes",
		},
		{
			name: "many files over the limit",
			archive: func(string) []byte {
				var es []entry
				for i := range 100 {
					es = append(es, file(strings.Repeat("f", i+1), strings.Repeat("x", 10000), 0o644))
				}
				return gzipOf(t, tarOf(t, es...))
			},
			max:      100000,
			wantKind: proto.TooLarge, wantMsg: "limit of 100000 bytes",
		},
		{
			name: "headers alone over the limit",
			archive: func(string) []byte {
				var es []entry
				for i := range 1000 {
					es = append(es, file(strings.Repeat("e", i%200+1)+string(rune('a'+i/200)), "", 0o644))
				}
				return gzipOf(t, tarOf(t, es...))
			},
			max:      100000,
			wantKind: proto.TooLarge, wantMsg: "limit of 100000 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			ctxDir := filepath.Join(parent, "ctx")
			if err := os.Mkdir(ctxDir, 0o755); err != nil {
				t.Fatal(err)
			}
			max := tt.max
			if max == 0 {
				max = 10 << 20
			}
			err := Extract(t.Context(), bytes.NewReader(tt.archive(parent)), ctxDir, max)
			if code := proto.ErrorCode(err); code != tt.wantKind {
				t.Fatalf("Extract() = %v (kind %q), want kind %q", err, code, tt.wantKind)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Extract() = %q, want %q in it", err, tt.wantMsg)
			}
			if names := dirNames(t, parent); len(names) != 1 || names[0] != "ctx" {
				t.Errorf("Extract() left %v beside the context directory, want only [ctx]", names)
			}
			var written int64
			filepath.Walk(ctxDir, func(_ string, fi fs.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					written += fi.Size()
				}
				return nil
			})
			if written > max {
				t.Errorf("Extract() wrote %d bytes, want at most the limit %d", written, max)
			}
		})
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestExtract(t *testing.T) {
	nested := tarOf(t,
		dir("./", 0o755),
		dir("./app/", 0o750),
		dir("./app/src/", 0o755),
		file("./app/src/main.go", "package main\n", 0o640),
		file("./app/run.sh", "#!/bin/sh\necho hi\n", 0o755),
		symlink("./app/current", "src/main.go"),
		symlink("./app/src/up", "../run.sh"),
		hardlink("./app/again.go", "app/src/main.go"),
		file("deep/er/than/listed.txt", "implied dirs\n", 0o600),
		file("Dockerfile", "FROM scratch\n", 0o644),
	)
	tests := []struct {
		name    string
		archive []byte
	}{
		{name: "tar.gz", archive: gzipOf(t, nested)},
		{name: "tar", archive: nested},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			if err := Extract(t.Context(), bytes.NewReader(tt.archive), d, 1<<20); err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			for name, want := range map[string]string{
				"app/src/main.go":         "package main\n",
				"app/run.sh":              "#!/bin/sh\necho hi\n",
				"app/current":             "package main\n",
				"app/src/up":              "#!/bin/sh\necho hi\n",
				"app/again.go":            "package main\n",
				"deep/er/than/listed.txt": "implied dirs\n",
				"Dockerfile":              "FROM scratch\n",
			} {
				got, err := os.ReadFile(filepath.Join(d, name))
				if err != nil || string(got) != want {
					t.Errorf("ReadFile(%s) = %q, %v, want %q", name, got, err, want)
				}
			}
			for name, want := range map[string]fs.FileMode{
				"app":             fs.ModeDir | 0o750,
				"app/src":         fs.ModeDir | 0o755,
				"app/src/main.go": 0o640,
				"app/run.sh":      0o755,
				"Dockerfile":      0o644,
			} {
				fi, err := os.Lstat(filepath.Join(d, name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != want {
					t.Errorf("Lstat(%s).Mode() = %v, want %v", name, fi.Mode(), want)
				}
				if !fi.ModTime().Equal(mtime) {
					t.Errorf("Lstat(%s).ModTime() = %v, want %v", name, fi.ModTime(), mtime)
				}
			}
			if target, err := os.Readlink(filepath.Join(d, "app/current")); err != nil || target != "src/main.go" {
				t.Errorf("Readlink(app/current) = %q, %v, want %q", target, err, "src/main.go")
			}
			a, errA := os.Stat(filepath.Join(d, "app/again.go"))
			b, errB := os.Stat(filepath.Join(d, "app/src/main.go"))
			if errA != nil || errB != nil || a.Sys().(*syscall.Stat_t).Ino != b.Sys().(*syscall.Stat_t).Ino {
				t.Errorf("app/again.go and app/src/main.go are not one hard-linked file (%v, %v)", errA, errB)
			}
		})
	}
}

func TestExtractNeedsAnEmptyDir(t *testing.T) {
	d := t.TempDir()
	writeFiles(t, d, map[string]string{"already": "here"})
	if err := Extract(t.Context(), bytes.NewReader(tarOf(t, file("a", "b", 0o644))), d, 1<<20); err == nil {
		t.Errorf("Extract(into a non-empty dir) = nil, want an error")
	}
}
