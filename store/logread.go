package store

import (
	"context"
	"errors"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// ReadLog writes the log of the run id to w.
//
// A finished run's log is one object, copied whole. Otherwise ReadLog reads the chunks on the run's subject
// from the first one: without follow it returns once it has caught up; with follow it goes on until the end
// marker FinishLog publishes, or until ctx is done. As a safeguard, a follower that receives nothing for two
// seconds checks whether the run's record is terminal and its log object exists, and if so finishes from the
// object, so that it never waits forever on a run whose marker it missed.
//
// A run ID with neither a record nor a log is a proto.NotFound. After each chunk, if w has a Flush method
// (http.Flusher has), ReadLog calls it, so that the log can be streamed over HTTP.
func (s *Store) ReadLog(ctx context.Context, id string, follow bool, w io.Writer) error {
	if !validID(id) {
		return proto.Errorf(proto.NotFound, "no run with ID %q", id)
	}
	out := flushing(w)

	if done, err := s.copyLogObject(ctx, id, 0, out); done || err != nil {
		return err
	}
	cur, err := s.openLogCursor(ctx, id)
	if err != nil {
		return wrap(err, "reading log of run %s", id)
	}
	defer cur.close(ctx)

	if cur.pending == 0 {
		// Nothing on the stream: the run has not logged yet, or never will, or its chunks have expired.
		if _, err := s.Run(ctx, id); err != nil {
			return err
		}
		// The run may have finished between the first look for its object and the cursor's start.
		if done, err := s.copyLogObject(ctx, id, 0, out); done || err != nil {
			return err
		}
	}
	err = cur.copyTo(ctx, out, follow, func(ctx context.Context, written int64) (bool, error) {
		return s.finishedElsewhere(ctx, id, written, out)
	})
	if err != nil {
		return wrap(err, "reading log of run %s", id)
	}
	return nil
}

// finishedElsewhere is a follower's safeguard: if the run id has ended and its log object exists, it writes
// the object to w past the written bytes the follower already has, and reports done.
func (s *Store) finishedElsewhere(ctx context.Context, id string, written int64, w io.Writer) (bool, error) {
	r, err := s.Run(ctx, id)
	if proto.ErrorCode(err) == proto.NotFound {
		return false, nil // chunks without a record: keep following
	}
	if err != nil {
		return false, err
	}
	if !proto.Terminal(r.GetStatus()) {
		return false, nil
	}
	return s.copyLogObject(ctx, id, written, w)
}

// copyLogObject writes the log object of the run id to w, less its first skip bytes, and reports whether
// the object exists.
func (s *Store) copyLogObject(ctx context.Context, id string, skip int64, w io.Writer) (bool, error) {
	rc, err := openObject(ctx, s.logs, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "opening log of run %s", id)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, skip); err != nil && err != io.EOF {
		return true, wrap(err, "reading log of run %s", id)
	}
	if _, err := io.Copy(w, rc); err != nil {
		return true, wrap(err, "copying log of run %s", id)
	}
	return true, nil
}

// flusher is what ReadLog calls after each chunk when the writer has it, as http.ResponseWriter does.
type flusher interface{ Flush() }

// flushWriter calls Flush after every Write.
type flushWriter struct {
	w io.Writer
	f flusher
}

// flushing returns w, or w wrapped to flush after every Write when it can.
func flushing(w io.Writer) io.Writer {
	if f, ok := w.(flusher); ok {
		return flushWriter{w: w, f: f}
	}
	return w
}

// Write writes p and flushes.
func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if n > 0 {
		fw.f.Flush()
	}
	return n, err
}
