package store

import (
	"context"
	"errors"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// FinishLog keeps the log of the run id for good once the run has ended, however it ended: it copies all
// the chunks on the run's subject, in order, into one object named id in kiln_logs, then publishes the end
// marker (an empty message with the header Kiln-Log-End: 1) that tells followers to stop. Close the run's
// LogWriter first.
//
// FinishLog is idempotent: once the object exists it is not written again, and the marker is published only
// if it is not already the subject's last message. A run that never logged (canceled while queued, say) gets
// an empty object and the marker all the same.
func (s *Store) FinishLog(ctx context.Context, id string) error {
	if !validID(id) {
		return proto.Errorf(proto.Invalid, "finishing log: %q is not a run ID", id)
	}
	_, err := s.logs.GetInfo(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		if err := s.storeLog(ctx, id); err != nil {
			return wrap(err, "storing log of run %s", id)
		}
	case err != nil:
		return wrap(err, "looking for the log of run %s", id)
	}

	ended, err := s.logEnded(ctx, id)
	if err != nil {
		return wrap(err, "looking for the end of the log of run %s", id)
	}
	if ended {
		return nil
	}
	m := nats.NewMsg(proto.LogSubject(id))
	m.Header.Set(endHeader, "1")
	// The message ID makes the stream drop a second marker from a FinishLog running at the same time.
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(id+".end")); err != nil {
		return wrap(err, "ending log of run %s", id)
	}
	return nil
}

// storeLog copies the chunks now on the log subject of the run id into the object id, streaming them.
func (s *Store) storeLog(ctx context.Context, id string) error {
	cur, err := s.openLogCursor(ctx, id)
	if err != nil {
		return err
	}
	defer cur.close(ctx)

	pr, pw := io.Pipe()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		pw.CloseWithError(cur.copyTo(ctx, pw, false, nil))
	}()
	_, err = s.logs.Put(ctx, jetstream.ObjectMeta{Name: id, Description: "log of run " + id}, pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the copy if Put stopped reading early
	<-copied
	return err
}

// logEnded reports whether the last message on the log subject of the run id is the end marker.
func (s *Store) logEnded(ctx context.Context, id string) (bool, error) {
	msg, err := s.logStrm.GetLastMsgForSubject(ctx, proto.LogSubject(id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return msg.Header.Get(endHeader) != "", nil
}
