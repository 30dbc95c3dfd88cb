package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// objectReadTimeout bounds reading one object when the caller's ctx has no deadline. Without one the NATS
// client would allow only its default request timeout (5s) for the whole object.
const objectReadTimeout = time.Hour

// PutContext stores the build context archive r reads under name, streaming it into the object store, and
// returns the number of bytes stored. A context already stored under name is replaced. If r returns an
// error, or ctx is done before the end, nothing is kept (an earlier context under name stays as it was) and
// the error is returned wrapped, so errors.As still finds a *proto.Error in it.
//
// The object store writes the chunks before the object that names them, and deletes them itself when the
// upload fails, with the context it was given: a canceled one would leave them behind, unnamed, until the
// bucket's max age (a client that hangs up mid-upload cancels its request's context). So the store's work runs
// on a context of its own, with no deadline (each of its NATS requests has the client's default timeout), and
// ctx stops the upload through the reader instead.
func (s *Store) PutContext(ctx context.Context, name string, r io.Reader) (int64, error) {
	if name == "" {
		return 0, proto.Errorf(proto.Invalid, "storing context: empty name")
	}
	src := &errReader{r: fillReader{&ctxReader{ctx: ctx, r: r}}}
	info, err := s.contexts.Put(context.WithoutCancel(ctx), jetstream.ObjectMeta{Name: name}, src)
	if readErr := src.err(); readErr != nil {
		return 0, fmt.Errorf("reading context %s: %w", name, readErr)
	}
	if err != nil {
		return 0, wrap(err, "storing context %s", name)
	}
	return int64(info.Size), nil
}

// OpenContext returns the context stored under name, or a proto.NotFound error. The caller closes it.
// Reading uses ctx: it fails once ctx is done, and when ctx has no deadline it must end within an hour.
func (s *Store) OpenContext(ctx context.Context, name string) (io.ReadCloser, error) {
	if name == "" {
		return nil, proto.Errorf(proto.Invalid, "opening context: empty name")
	}
	rc, err := openObject(ctx, s.contexts, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, proto.Errorf(proto.NotFound, "no context named %q", name)
	}
	if err != nil {
		return nil, wrap(err, "opening context %s", name)
	}
	return rc, nil
}

// DeleteContext removes the context stored under name. A context that is not there is not an error.
func (s *Store) DeleteContext(ctx context.Context, name string) error {
	if name == "" {
		return proto.Errorf(proto.Invalid, "deleting context: empty name")
	}
	err := s.contexts.Delete(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return wrap(err, "deleting context %s", name)
	}
	return nil
}

// openObject opens the object name in obs for reading, giving it objectReadTimeout when ctx has no
// deadline of its own.
func openObject(ctx context.Context, obs jetstream.ObjectStore, name string) (io.ReadCloser, error) {
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, objectReadTimeout)
	}
	res, err := obs.Get(ctx, name)
	if err != nil {
		cancel()
		return nil, err
	}
	return &objectReader{ReadCloser: res, cancel: cancel}, nil
}

// objectReader is an object being read, with the cancel of the deadline openObject gave it.
type objectReader struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the object and releases its deadline.
func (r *objectReader) Close() error {
	err := r.ReadCloser.Close()
	r.cancel()
	return err
}

// errReader remembers the first error other than io.EOF that its reader returned, so that a caller can
// tell the source's failure from the store's.
type errReader struct {
	r     io.Reader
	first error
}

// Read reads from the source and remembers its first failure.
func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.first == nil {
		e.first = err
	}
	return n, err
}

// err returns the first error the reader returned, if any.
func (e *errReader) err() error { return e.first }

// fillReader fills each Read's buffer whole unless its source ends or fails first. The object store keeps
// what one Read returns as one chunk, each written to disk before it is acknowledged: a request body read
// straight would make a chunk, and a disk sync, of every few KiB that came off the network.
type fillReader struct{ r io.Reader }

// Read reads from the source until p is full, the source ends, or it fails. Like any reader, it may return
// bytes with io.EOF or an error.
func (f fillReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := f.r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ctxReader reads from r until ctx is done, and then fails with ctx's cause.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Read reads from the source unless ctx is done.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}
