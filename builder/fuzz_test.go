package builder

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// FuzzExtract unpacks arbitrary bytes as a build context. Whatever they hold, Extract does not panic, writes
// nothing outside its directory, leaves no symbolic link there that points outside it, writes no more than its
// limit, and refuses what it refuses with an error of kind Invalid or TooLarge, or one that says which entry
// the filesystem would not take.
func FuzzExtract(f *testing.F) {
	const limit = 1 << 20
	for _, seed := range [][]entry{
		{file("Dockerfile", "FROM scratch\n", 0o644)},
		{dir("a/", 0o755), file("a/x", "x", 0o644), symlink("a/up", "../b"), symlink("a/self", "."), hardlink("hl", "a/x")},
		{file("./..data", "x", 0o644), file("a/.../b", "x", 0o600), dir("./", 0o700)},
		{file("../escaped", "x", 0o644)},
		{dir("sub/", 0o755), symlink("sub/up", "../.."), file("sub/up/escaped", "x", 0o644)},
		{symlink("abs", "/tmp"), file("abs/escaped", "x", 0o644)},
		{file("x", "x", 0o644), hardlink("hl", "a/../x"), hardlink("hl2", "/etc/passwd")},
		{hardlink("early", "later"), file("later", "x", 0o644)},
		{symlink("l", "target"), file("l", "replaces the link", 0o644), dir("l/", 0o755)},
		{entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o644}}},
		{entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}}},
			file("é/ü\tname", "odd", 0o4755)},
	} {
		b := tarOf(f, seed...)
		f.Add(b)
		f.Add(gzipOf(f, b))
	}
	f.Add([]byte("FROM scratch\n"))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "ctx")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		err := Extract(t.Context(), bytes.NewReader(data), dir, limit)
		if err != nil {
			switch proto.ErrorCode(err) {
			case proto.Invalid, proto.TooLarge:
			default:
				if !strings.HasPrefix(err.Error(), "extracting ") {
					t.Errorf("Extract() = %v (kind %q), want kind invalid or too large, or an error naming the entry", err, proto.ErrorCode(err))
				}
			}
		}
		if names := dirNames(t, parent); len(names) != 1 || names[0] != "ctx" {
			t.Fatalf("Extract() left %v beside the context directory, want only [ctx]", names)
		}
		var written int64
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			switch {
			case fi.Mode().IsRegular():
				written += fi.Size()
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					t.Fatal(err)
				}
				if filepath.IsAbs(target) {
					t.Errorf("Extract() left %s, a symbolic link to the absolute %q", p, target)
				} else if rel, err := filepath.Rel(dir, filepath.Join(filepath.Dir(p), target)); err != nil || !filepath.IsLocal(rel) && rel != "." {
					t.Errorf("Extract() left %s, a symbolic link to %q, outside the context", p, target)
				}
			}
			return nil
		})
		if written > limit {
			t.Errorf("Extract() wrote %d bytes of files, over its limit of %d", written, limit)
		}
	})
}
