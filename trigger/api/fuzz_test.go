package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/tarentry"
)

// FuzzArchiveCheck checks arbitrary bytes as an uploaded build context. Whatever they hold, checkArchive does
// not panic and answers nil, or an error of kind Invalid or TooLarge; and what it accepts, read again as a
// tar archive, holds only entries the shared rule (tarentry.Check) accepts, within the limit.
func FuzzArchiveCheck(f *testing.F) {
	const limit = 64 << 10
	for _, seed := range [][]tarEntry{
		{file("Dockerfile", "FROM scratch\n")},
		{dir("./a/"), file("a/x", "x"), symlink("a/up", "../b"), symlink("a/self", "."), symlink("a/down", "x"), hardlink("hl", "a/x")},
		{file("./..data", "x"), file("a/.../b", "x")},
		{file("a/../../etc/passwd", "x")},
		{file("/etc/passwd", "x")},
		{dir("a/"), symlink("a/link", "../../etc")},
		{file("x", "x"), hardlink("hl", "a/../x")},
		{hardlink("hl", "/x")},
		{tarEntry{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
		{tarEntry{hdr: tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "c0ffee"}}}, file("a", "b")},
		{file("big", strings.Repeat("x", limit+1))},
	} {
		b := tarOf(f, seed...)
		f.Add(b)
		f.Add(gzipOf(f, b))
	}
	f.Add([]byte("hello, world\n"))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkArchive(bytes.NewReader(data), limit)
		if err != nil {
			if code := proto.ErrorCode(err); code != proto.Invalid && code != proto.TooLarge {
				t.Fatalf("checkArchive = %v (kind %q), want kind invalid or too large", err, code)
			}
			return
		}
		tr := tar.NewReader(tarStream(t, data))
		var total int64
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
				t.Fatalf("checkArchive accepted an archive that archive/tar cannot read: %v", err)
			}
			if _, err := tarentry.Check(hdr); err != nil {
				t.Fatalf("checkArchive accepted an entry the shared rule refuses: %v", err)
			}
			if total += hdr.Size; total > limit {
				t.Fatalf("checkArchive accepted %d bytes of entries, over its limit of %d", total, limit)
			}
		}
	})
}

// tarStream returns data, which checkArchive accepted, as a tar stream: decompressed when it is gzip.
func tarStream(t *testing.T, data []byte) io.Reader {
	t.Helper()
	if !bytes.HasPrefix(data, gzipMagic) {
		return bytes.NewReader(data)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("checkArchive accepted a gzip stream that does not open: %v", err)
	}
	return zr
}

// FuzzContextURL parses arbitrary strings as the context URL of a build (kiln build URL): a git repository
// (https://host/repo.git#ref:subdir) or an archive. Whatever they hold, the parsers do not panic; a refusal is
// of kind Invalid and never repeats a password the URL held; an accepted git context is http or https with a
// host and no credentials, its subdirectory inside the repository, and formats back to a string that parses to
// the same context.
func FuzzContextURL(f *testing.F) {
	for _, s := range []string{
		"https://github.com/acme/app.git",
		"https://github.com/acme/app.git#main",
		"https://github.com/acme/app.git#v1.2:docker/web",
		"https://github.com/acme/app.git#:sub",
		"https://github.com/acme/app.git#refs/pull/1/head",
		"http://127.0.0.1:8080/repo.git#a..b",
		"https://me:ghp_secret@github.com/acme/app.git",
		"https://github.com/acme/app.git#main:../../etc",
		"https://github.com/acme/app.git?x=1#main",
		"https://example.com/context.tar.gz",
		"git@github.com:acme/app.git",
		"file:///etc/passwd",
		"https:///nohost.git",
		" https://github.com/acme/app.git#main:/abs ",
		"https://[::1]:9/x.git#-main",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = isGitContextURL(s)
		password := "" // the password of the URL's userinfo, when there is one long enough to look for
		if i := strings.Index(s, "://"); i >= 0 && isScheme(strings.TrimSpace(s[:i])) {
			authority := s[i+3:]
			if end := strings.IndexAny(authority, "/?#"); end >= 0 {
				authority = authority[:end]
			}
			if at := strings.LastIndex(authority, "@"); at >= 0 {
				if _, p, ok := strings.Cut(authority[:at], ":"); ok && len(p) >= 4 {
					password = p
				}
			}
		}
		refused := func(what string, err error) {
			t.Helper()
			if proto.ErrorCode(err) != proto.Invalid {
				t.Fatalf("%s(%q) = %v (kind %q), want kind invalid", what, s, err, proto.ErrorCode(err))
			}
			if password != "" && strings.Contains(err.Error(), password) {
				t.Fatalf("%s(%q) = %q, which repeats the URL's password", what, s, err)
			}
		}
		if _, err := checkContextURL(s, "context URL"); err != nil {
			refused("checkContextURL", err)
		}
		g, err := ParseGitContext(s)
		if err != nil {
			refused("ParseGitContext", err)
			return
		}
		u, err := checkContextURL(g.GetUrl(), "git context")
		if err != nil || u.User != nil {
			t.Fatalf("ParseGitContext(%q) = URL %q, which checkContextURL refuses (%v)", s, g.GetUrl(), err)
		}
		if sub := g.GetSubdir(); sub != "" && (strings.HasPrefix(sub, "/") || sub == ".." || strings.HasPrefix(sub, "../")) {
			t.Fatalf("ParseGitContext(%q) = subdirectory %q, outside the repository", s, sub)
		}
		again, err := ParseGitContext(formatGitContext(g))
		if err != nil {
			t.Fatalf("ParseGitContext(formatGitContext(%v) = %q) = %v, want it to parse", g, formatGitContext(g), err)
		}
		if again.GetUrl() != g.GetUrl() || again.GetRef() != g.GetRef() || again.GetSubdir() != g.GetSubdir() {
			t.Fatalf("ParseGitContext(%q) = %v, and again from %q = %v, want the same", s, g, formatGitContext(g), again)
		}
	})
}

// isScheme reports whether s is a URL scheme: a letter, then letters, digits, '+', '-' or '.'.
func isScheme(s string) bool {
	for i, c := range s {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}
