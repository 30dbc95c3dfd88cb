package api

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/tarentry"
)

// errUploadAborted ends a check whose upload stopped before the end of the context.
var errUploadAborted = errors.New("the upload of the build context stopped before its end")

// checkedReader passes a build context through while checking it: it counts the bytes as sent, and feeds
// them through a pipe to a goroutine that decompresses the archive and walks its tar headers. Read reports
// the end of the context only once that walk has reached the end of the archive and found nothing wrong, so
// whoever stores the context keeps it only when it is good. Close must be called: it stops the goroutine
// when the reader is left before its end.
type checkedReader struct {
	src   io.Reader
	limit int64
	n     int64
	pw    *io.PipeWriter
	done  chan error // the walk's verdict; buffered, so the goroutine never waits on it
	ended bool
	err   error // what Read returns once ended
}

// newCheckedReader returns a reader of src that fails with a proto.Invalid or proto.TooLarge error when src
// is not a tar or gzip-compressed tar archive fit to be a build context of at most limit bytes.
func newCheckedReader(src io.Reader, limit int64) *checkedReader {
	pr, pw := io.Pipe()
	c := &checkedReader{src: src, limit: limit, pw: pw, done: make(chan error, 1)}
	go func() {
		err := checkArchive(pr, limit)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // whatever follows the archive, up to the end of the upload
		}
		pr.CloseWithError(err) // a nil err makes later writes fail with io.ErrClosedPipe
		c.done <- err
	}()
	return c
}

// Read reads from the context, as long as it is still good.
func (c *checkedReader) Read(p []byte) (int, error) {
	if c.ended {
		return 0, c.err
	}
	n, err := c.src.Read(p)
	if n > 0 {
		c.n += int64(n)
		if c.n > c.limit {
			return 0, c.end(proto.Errorf(proto.TooLarge,
				"the build context is over the %s limit (--max-context-size)", byteSize(c.limit)))
		}
		if _, werr := c.pw.Write(p[:n]); werr != nil {
			return 0, c.end(nil) // the walk stopped early: its verdict says why
		}
	}
	switch {
	case err == io.EOF:
		if verdict := c.end(nil); verdict != io.EOF {
			return 0, verdict
		}
		return n, io.EOF
	case err != nil:
		// The upload broke off (or its multipart framing is wrong): the sender's doing, as far as we can tell.
		return 0, c.end(proto.Errorf(proto.Invalid, "reading the build context: %w", err))
	}
	return n, nil
}

// Close stops the check if it is still running. It returns nil.
func (c *checkedReader) Close() error {
	c.end(errUploadAborted)
	return nil
}

// end stops feeding the walk and waits for its verdict. With a nil cause, the upload is over and the verdict
// decides: io.EOF when the context is good. Otherwise cause is the answer, whatever the walk made of it.
func (c *checkedReader) end(cause error) error {
	if c.ended {
		return c.err
	}
	c.ended = true
	if cause == nil {
		c.pw.Close()
	} else {
		c.pw.CloseWithError(cause)
	}
	verdict := <-c.done
	switch {
	case cause != nil:
		c.err = cause
	case verdict != nil:
		c.err = verdict
	default:
		c.err = io.EOF
	}
	return c.err
}

// errNotArchive answers a context that is neither of the formats a build context may have.
var errNotArchive = proto.Errorf(proto.Invalid, "the build context is not a tar or gzip archive")

// checkArchive reads a build context from r to the end of its archive: a tar archive, compressed with gzip or
// not, whose entries all stay inside the context and whose unpacked size is at most limit bytes.
func checkArchive(r io.Reader, limit int64) error {
	br := bufio.NewReaderSize(r, tarBlock)
	head, _ := br.Peek(tarBlock)
	switch {
	case isTar(head):
		return walkTar(br, limit)
	case !bytes.HasPrefix(head, gzipMagic):
		return errNotArchive
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return archiveError("the build context is not a valid gzip archive", err)
	}
	unpacked := &limitedReader{r: zr, limit: limit}
	zbr := bufio.NewReaderSize(unpacked, tarBlock)
	if head, _ := zbr.Peek(tarBlock); !isTar(head) {
		return errNotArchive
	}
	if err := walkTar(zbr, limit); err != nil {
		return err
	}
	// Reading the gzip stream to its end checks its checksum and counts whatever padding follows the tar.
	if _, err := io.Copy(io.Discard, zbr); err != nil {
		return archiveError("the build context is not a valid gzip archive", err)
	}
	return nil
}

// tarBlock is the size of a tar header block.
const tarBlock = 512

var gzipMagic = []byte{0x1f, 0x8b}

// isTar reports whether head, the first block of a stream, starts a tar archive: a ustar, pax or GNU header,
// or the zero block of an empty archive.
func isTar(head []byte) bool {
	if len(head) < tarBlock {
		return false
	}
	return string(head[257:262]) == "ustar" || bytes.Count(head, []byte{0}) == tarBlock
}

// walkTar reads every header of the tar archive in r, checking each entry, and the declared sizes against
// limit. It stops at the end of the archive.
func walkTar(r io.Reader, limit int64) error {
	tr := tar.NewReader(r)
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return archiveError("the build context is not a valid tar archive", err)
		}
		if _, err := tarentry.Check(hdr); err != nil {
			return err
		}
		if total += hdr.Size; hdr.Size < 0 || total > limit {
			return proto.Errorf(proto.TooLarge,
				"the build context is over the %s limit (--max-context-size) once unpacked", byteSize(limit))
		}
	}
}

// archiveError returns err as it is when it already has a kind (a limit passed while reading), and as a
// proto.Invalid error saying what was wrong otherwise.
func archiveError(what string, err error) error {
	var pe *proto.Error
	if errors.As(err, &pe) {
		return err
	}
	return proto.Errorf(proto.Invalid, "%s: %v", what, err)
}

// limitedReader reads r until more than limit bytes came out: a gzip stream that unpacks past the build
// context limit (a gzip bomb) fails with proto.TooLarge.
type limitedReader struct {
	r     io.Reader
	limit int64
	n     int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.n += int64(n); l.n > l.limit {
		return 0, proto.Errorf(proto.TooLarge,
			"the build context is over the %s limit (--max-context-size) once decompressed", byteSize(l.limit))
	}
	return n, err
}

// byteSize writes n bytes the way a person would, in the largest binary unit that divides it.
func byteSize(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
