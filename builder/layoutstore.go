package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// layoutStore is a read-only content store over the blobs of the OCI image layout in dir: what BuildKit's OCI
// layout source reads an image from, through the session, when Exec runs an image of a layout. containerd's
// local store would do as well, but it probes for fsverity by writing into the layout, and logs a warning
// through containerd's process-wide logger on filesystems without it.
type layoutStore struct {
	dir string
}

var _ content.Store = layoutStore{}

// errReadOnly is what layoutStore answers to any change.
var errReadOnly = fmt.Errorf("the OCI layout is read-only: %w", cerrdefs.ErrNotImplemented)

func (s layoutStore) blob(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: %v", cerrdefs.ErrInvalidArgument, err)
	}
	return filepath.Join(s.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// Info returns the size of blob d.
func (s layoutStore) Info(_ context.Context, d digest.Digest) (content.Info, error) {
	p, err := s.blob(d)
	if err != nil {
		return content.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return content.Info{}, notFound(d, err)
	}
	return content.Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}, nil
}

// ReaderAt opens the blob desc names.
func (s layoutStore) ReaderAt(_ context.Context, desc ocispecs.Descriptor) (content.ReaderAt, error) {
	p, err := s.blob(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(desc.Digest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return blobReader{File: f, size: fi.Size()}, nil
}

func notFound(d digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, cerrdefs.ErrNotFound)
	}
	return err
}

type blobReader struct {
	*os.File
	size int64
}

func (r blobReader) Size() int64 { return r.size }

func (layoutStore) Update(context.Context, content.Info, ...string) (content.Info, error) {
	return content.Info{}, errReadOnly
}

func (layoutStore) Walk(context.Context, content.WalkFunc, ...string) error { return errReadOnly }

func (layoutStore) Delete(context.Context, digest.Digest) error { return errReadOnly }

func (layoutStore) Status(context.Context, string) (content.Status, error) {
	return content.Status{}, cerrdefs.ErrNotFound
}

func (layoutStore) ListStatuses(context.Context, ...string) ([]content.Status, error) {
	return nil, nil
}

func (layoutStore) Abort(context.Context, string) error { return errReadOnly }

func (layoutStore) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, errReadOnly
}
