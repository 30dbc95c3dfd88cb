// Package queue puts runs on Kiln's queue. Every trigger (an HTTP submission, a webhook, a task's manual run)
// starts a run the same way: record it as Queued, then publish its RunRequested on JetStream, and only then
// answer. A run whose event cannot be published ends Error at once, so nothing waits in Queued for an event that
// will never come.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// Store is what the queue needs of the store.
type Store interface {
	CreateRun(ctx context.Context, r *proto.Run) error
	Run(ctx context.Context, id string) (*proto.Run, error)
	UpdateRun(ctx context.Context, id string, fn func(r *proto.Run) error) (*proto.Run, error)
	FinishLog(ctx context.Context, id string) error
	DeleteContext(ctx context.Context, name string) error
}

// Publisher publishes on JetStream; jetstream.JetStream is one.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Queue records runs and publishes their events.
type Queue struct {
	st  Store
	pub Publisher
	log *slog.Logger
	now func() time.Time
}

// New returns a Queue; a nil logger discards.
func New(st Store, pub Publisher, logger *slog.Logger) *Queue {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Queue{st: st, pub: pub, log: logger, now: time.Now}
}

// errPickedUp stops marking a run whose event seemed lost, when a worker has started it after all.
var errPickedUp = errors.New("the run left the queue")

// Enqueue records run as Queued (QueuedAt is set if empty) and publishes its RunRequested, returning the run as
// it then is. When the run cannot be recorded its uploaded context, if any, is deleted; when its event cannot
// be published the run ends Error and the error is proto.Unavailable.
func (q *Queue) Enqueue(ctx context.Context, run *proto.Run) (*proto.Run, error) {
	id := run.GetId()
	run.Status = proto.Status_QUEUED
	if run.QueuedAt == nil {
		run.QueuedAt = timestamppb.New(q.now())
	}
	if err := q.st.CreateRun(ctx, run); err != nil {
		q.dropContext(ctx, run)
		return nil, fmt.Errorf("recording run %s: %w", id, err)
	}
	data, err := gproto.Marshal(&proto.RunRequested{RunId: id})
	if err != nil {
		return nil, fmt.Errorf("encoding the RunRequested of run %s: %w", id, err)
	}
	_, perr := q.pub.Publish(ctx, proto.SubjectRunRequested, data, jetstream.WithMsgID(id))
	if perr == nil {
		return run, nil
	}

	reason := fmt.Sprintf("could not enqueue the run: %v", perr)
	finished := timestamppb.New(q.now())
	_, err = q.st.UpdateRun(ctx, id, func(r *proto.Run) error {
		if r.GetStatus() != proto.Status_QUEUED {
			return errPickedUp
		}
		r.Status = proto.Status_ERROR
		r.Error = reason
		r.FinishedAt = finished
		return nil
	})
	switch {
	case errors.Is(err, errPickedUp):
		// The event did reach the stream (only its acknowledgement was lost): a worker has the run.
		run, err := q.st.Run(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading run %s: %w", id, err)
		}
		return run, nil
	case err != nil:
		q.log.ErrorContext(ctx, "could not end a run whose event was not published", "run", id, "publish_err", perr, "err", err)
	default:
		if err := q.st.FinishLog(ctx, id); err != nil {
			q.log.ErrorContext(ctx, "could not finish the log of a run", "run", id, "err", err)
		}
		q.dropContext(ctx, run)
	}
	return nil, proto.Errorf(proto.Unavailable, "could not enqueue run %s: %w", id, perr)
}

// dropContext deletes the run's uploaded context, if it has one. A failure is logged: a leftover object wastes
// space but harms nothing, and it expires.
func (q *Queue) dropContext(ctx context.Context, run *proto.Run) {
	name := run.GetSpec().GetContextObject()
	if name == "" {
		return
	}
	err := q.st.DeleteContext(context.WithoutCancel(ctx), name)
	if err != nil && proto.ErrorCode(err) != proto.NotFound {
		q.log.ErrorContext(ctx, "could not delete a build context", "name", name, "err", err)
	}
}
