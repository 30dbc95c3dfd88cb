package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// endHeader is the header of the empty message FinishLog publishes after a run's last chunk.
const endHeader = "Kiln-Log-End"

// idleCheck is how long a cursor waits for a chunk before its reader looks around: a follower checks
// whether the run has finished without a marker reaching it, a catch-up reader whether it is caught up.
const idleCheck = 2 * time.Second

// cursorPrefetch is how many chunks a cursor lets the server push ahead of its reader.
const cursorPrefetch = 64

// errIdle is returned by next when no chunk arrived within its wait.
var errIdle = errors.New("no log chunk arrived")

// logCursor reads the messages on one run's log subject, in order, from the first one still on the stream.
type logCursor struct {
	strm    jetstream.Stream
	cons    jetstream.Consumer
	msgs    jetstream.MessagesContext
	pending uint64 // messages on the subject after the last one next returned, when it was delivered
}

// openLogCursor starts an ordered consumer on the log subject of the run id. The caller closes it.
func (s *Store) openLogCursor(ctx context.Context, id string) (*logCursor, error) {
	cons, err := s.logStrm.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{proto.LogSubject(id)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	c := &logCursor{strm: s.logStrm, cons: cons}
	if info := cons.CachedInfo(); info != nil {
		c.pending = info.NumPending
	} else if err := c.refresh(ctx); err != nil {
		c.close(ctx)
		return nil, err
	}
	c.msgs, err = cons.Messages(jetstream.PullMaxMessages(cursorPrefetch))
	if err != nil {
		c.close(ctx)
		return nil, err
	}
	return c, nil
}

// next returns the next message, waiting at most wait for it; errIdle means none came.
func (c *logCursor) next(ctx context.Context, wait time.Duration) (jetstream.Msg, error) {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	msg, err := c.msgs.Next(jetstream.NextContext(waitCtx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, errIdle
		}
		return nil, err
	}
	meta, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	c.pending = meta.NumPending
	return msg, nil
}

// refresh asks the server how many messages are left to deliver. Called after next was idle, so that no
// message waits on the client, it tells whether the cursor has caught up.
func (c *logCursor) refresh(ctx context.Context) error {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return err
	}
	c.pending = info.NumPending
	return nil
}

// close stops the cursor and deletes its consumer on the server. The consumer would go by itself once
// inactive, so a failure to delete is of no consequence and is not reported.
func (c *logCursor) close(ctx context.Context) {
	if c.msgs != nil {
		c.msgs.Stop()
	}
	info := c.cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = c.strm.DeleteConsumer(ctx, info.Name)
}

// copyTo writes the chunks the cursor delivers to w, stopping at the end marker. Without follow it also
// stops as soon as it has caught up. With follow, each time no chunk arrives for idleCheck it calls idle
// with the number of bytes written so far, and stops if idle says done.
func (c *logCursor) copyTo(ctx context.Context, w io.Writer, follow bool, idle func(ctx context.Context, written int64) (done bool, err error)) error {
	var written int64
	for follow || c.pending > 0 {
		msg, err := c.next(ctx, idleCheck)
		switch {
		case errors.Is(err, errIdle) && follow:
			if done, err := idle(ctx, written); done || err != nil {
				return err
			}
			continue
		case errors.Is(err, errIdle):
			if err := c.refresh(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		if isEndMarker(msg) {
			return nil
		}
		n, err := w.Write(msg.Data())
		written += int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// isEndMarker reports whether msg is the end marker FinishLog publishes.
func isEndMarker(msg jetstream.Msg) bool {
	return msg.Headers().Get(endHeader) != ""
}
