package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/tarentry"
)

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// errNotArchive is the message for input that is neither a tar nor a gzip stream.
const errNotArchive = "the build context is not a tar or gzip archive"

// Extract unpacks a build context archive (tar, or gzip-compressed tar: detect by magic bytes) from r into dir,
// which must exist and be empty.
//
// Every write goes through an os.Root opened on dir, so that even a crafted archive cannot write outside it. An
// entry that would escape dir is refused with kind proto.Invalid naming it: a name with a ".." element or an
// absolute name, a symbolic link that is absolute or whose target, resolved from the link's directory, lies
// outside dir, a hard link to outside dir or to an entry not seen before, and device and fifo entries. Permission
// bits and modification times are kept (setuid, setgid and sticky bits are dropped, owners are not kept, and a
// symbolic link keeps the time of its extraction, since os.Root cannot change a link's own times).
//
// maxBytes bounds the uncompressed archive, file contents and tar headers alike, counted as it streams, so that a
// gzip bomb stops at the limit with kind proto.TooLarge; 0 or less means no limit. Input that is neither tar nor
// gzip is kind proto.Invalid. A read error of r itself is returned wrapped, keeping its kind.
func Extract(ctx context.Context, r io.Reader, dir string, maxBytes int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("extracting the build context: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("extracting the build context: %s is not empty", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extracting the build context: %w", err)
	}
	defer root.Close()

	src := &sourceReader{r: r}
	br := bufio.NewReader(src)
	stream := io.Reader(br)
	if magic, _ := br.Peek(len(gzipMagic)); bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return archiveError(src, err)
		}
		defer zr.Close()
		stream = zr
	}
	limited := &limitReader{r: stream, left: maxBytes, unlimited: maxBytes <= 0}
	x := &extractor{root: root, seen: map[string]bool{}}
	tr := tar.NewReader(limited)
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("extracting the build context: %w", context.Cause(ctx))
		}
		hdr, err := tr.Next()
		if err == io.EOF && first && src.n == 0 {
			return proto.Errorf(proto.Invalid, errNotArchive)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if first && src.err == nil && !limited.over {
				return proto.Errorf(proto.Invalid, errNotArchive)
			}
			return archiveErrorLimit(src, limited, maxBytes, err)
		}
		if hdr.Typeflag == tar.TypeReg && !limited.fits(hdr.Size) {
			return tooLarge(maxBytes)
		}
		if err := x.entry(ctx, hdr, tr); err != nil {
			var re *readError
			if errors.As(err, &re) {
				return archiveErrorLimit(src, limited, maxBytes, re.err)
			}
			return err
		}
	}
	return x.finish()
}

// extractor writes the entries of one archive below root.
type extractor struct {
	root *os.Root
	// seen holds the cleaned names of the non-directory entries written so far, for hard links.
	seen map[string]bool
	// dirs are the directories to give their mode and mtime once everything inside them is written.
	dirs []*tar.Header
}

// entry writes one archive entry whose content, for a regular file, is read from content.
func (x *extractor) entry(ctx context.Context, hdr *tar.Header, content io.Reader) error {
	name, err := tarentry.Check(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir:
		if name == "." {
			return nil
		}
		if err := x.replace(name, true); err != nil {
			return err
		}
		if err := x.root.MkdirAll(name, 0o755); err != nil {
			return fmt.Errorf("extracting %s: %w", hdr.Name, err)
		}
		x.dirs = append(x.dirs, hdr)
		return nil
	}
	if err := x.parent(name); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		err = x.file(ctx, name, hdr, content)
	case tar.TypeSymlink:
		err = x.symlink(name, hdr)
	case tar.TypeLink:
		err = x.link(name, hdr)
	}
	if err != nil {
		return err
	}
	x.seen[name] = true
	return nil
}

// file writes a regular file and gives it the entry's mode and mtime.
func (x *extractor) file(ctx context.Context, name string, hdr *tar.Header, content io.Reader) error {
	if err := x.replace(name, false); err != nil {
		return err
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	if err := copyContext(ctx, f, content); err != nil {
		f.Close()
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	return x.attributes(name, hdr)
}

// symlink creates a symbolic link, whose target tarentry.Check found inside the root.
func (x *extractor) symlink(name string, hdr *tar.Header) error {
	if err := x.replace(name, false); err != nil {
		return err
	}
	if err := x.root.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	return nil
}

// link creates a hard link to an entry extracted before.
func (x *extractor) link(name string, hdr *tar.Header) error {
	old := tarentry.LinkTarget(hdr)
	if !x.seen[old] {
		return proto.Errorf(proto.Invalid, "the build context has a hard link %q to %q, which is not an earlier entry of the archive", hdr.Name, hdr.Linkname)
	}
	if old == name {
		return nil
	}
	if err := x.replace(name, false); err != nil {
		return err
	}
	if err := x.root.Link(old, name); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	return nil
}

// parent creates the directories above name that the archive did not list.
func (x *extractor) parent(name string) error {
	if dir := path.Dir(name); dir != "." {
		return x.root.MkdirAll(dir, 0o755)
	}
	return nil
}

// replace removes what is at name unless both it and the new entry are directories, so that a later entry
// replaces an earlier one as tar does, and a file is never written through an earlier symbolic link.
func (x *extractor) replace(name string, dir bool) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("extracting %s: %w", name, err)
	}
	if dir && fi.IsDir() {
		return nil
	}
	if err := x.root.RemoveAll(name); err != nil {
		return fmt.Errorf("extracting %s: %w", name, err)
	}
	delete(x.seen, name)
	return nil
}

// attributes gives name the permission bits and modification time of hdr.
func (x *extractor) attributes(name string, hdr *tar.Header) error {
	if err := x.root.Chmod(name, fs.FileMode(hdr.Mode)&fs.ModePerm); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	mtime := hdr.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	if err := x.root.Chtimes(name, atime, mtime); err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	return nil
}

// finish gives the directories their modes and times, deepest first, now that nothing more is written in them.
func (x *extractor) finish() error {
	for _, hdr := range slices.Backward(x.dirs) {
		name := path.Clean(hdr.Name)
		fi, err := x.root.Lstat(name)
		if err != nil || !fi.IsDir() {
			continue // replaced by a later entry
		}
		if err := x.attributes(name, hdr); err != nil {
			return err
		}
	}
	return nil
}

// errLimit is what limitReader returns once the limit is passed.
var errLimit = errors.New("size limit passed")

// limitReader fails with errLimit once more than left bytes have been read.
type limitReader struct {
	r         io.Reader
	left      int64
	unlimited bool
	over      bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.unlimited {
		return l.r.Read(p)
	}
	if l.left < 0 {
		l.over = true
		return 0, errLimit
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed tells "over" from "exactly at"
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return n, errLimit
	}
	return n, err
}

// fits reports whether n more bytes stay within the limit.
func (l *limitReader) fits(n int64) bool {
	return l.unlimited || n <= l.left
}

// copyContext copies src to dst until EOF, checking ctx between chunks.
func copyContext(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 128<<10)
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &readError{err}
		}
	}
}

// readError is a failure to read the archive, as opposed to a failure to write what it holds.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader counts the bytes of the caller's reader and remembers its error, to tell it apart from a
// malformed archive.
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// archiveError says why reading the archive failed: the caller's reader, or a malformed archive.
func archiveError(src *sourceReader, err error) error {
	if src.err != nil {
		return fmt.Errorf("reading the build context: %w", src.err)
	}
	if errors.Is(err, gzip.ErrHeader) {
		return proto.Errorf(proto.Invalid, errNotArchive)
	}
	return proto.Errorf(proto.Invalid, "reading the build context archive: %v", err)
}

// archiveErrorLimit is archiveError that also reports a passed size limit.
func archiveErrorLimit(src *sourceReader, l *limitReader, maxBytes int64, err error) error {
	if l.over || errors.Is(err, errLimit) {
		return tooLarge(maxBytes)
	}
	return archiveError(src, err)
}

// tooLarge is the error for a context past maxBytes.
func tooLarge(maxBytes int64) error {
	return proto.Errorf(proto.TooLarge, "the build context is larger than the limit of %d bytes uncompressed", maxBytes)
}
