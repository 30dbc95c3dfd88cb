package timer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// Bounds and names of starting a timer's run.
const (
	// markSource is the namespace of the store's marks of occurrences (store.MarkDelivery).
	markSource  = "timer"
	triggeredBy = "timer"
)

// markID is the ID under which the store marks occurrence o as started: task and timer names hold no '/'.
func markID(o occurrence) string {
	return o.task.GetName() + "/" + o.timer + "/" + strconv.FormatInt(o.at.Unix()/60, 10)
}

// fire starts the run of o unless another Scheduler has, and returns its ID ("" when it was started already).
// retry says that the run could not be queued for a reason that may pass (the store or JetStream down), and
// that the occurrence is left unmarked for a later tick. A failure that would fail again (a tag that does not
// render) is returned without retry.
func (s *Scheduler) fire(ctx context.Context, o occurrence, now time.Time) (id string, retry bool, err error) {
	first, err := s.Store.MarkDelivery(ctx, markSource, markID(o))
	if err != nil {
		return "", true, fmt.Errorf("marking timer %s of task %s at %s: %w", o.timer, o.task.GetName(), stamp(o.at), err)
	}
	if !first {
		return "", false, nil
	}
	id, err = s.start(ctx, o, now)
	if err != nil {
		if uerr := s.Store.UnmarkDelivery(context.WithoutCancel(ctx), markSource, markID(o)); uerr != nil {
			s.Logger.ErrorContext(ctx, "an occurrence whose run was not queued stays marked: it will not start",
				"task", o.task.GetName(), "timer", o.timer, "scheduled_at", stamp(o.at), "err", uerr)
		}
		err = fmt.Errorf("starting timer %s of task %s at %s: %w", o.timer, o.task.GetName(), stamp(o.at), err)
		return "", proto.ErrorCode(err) != proto.Invalid, err
	}
	s.Logger.InfoContext(ctx, "a timer started a run", "task", o.task.GetName(), "timer", o.timer,
		"scheduled_at", stamp(o.at), "run", id)
	return id, false, nil
}

// start queues the run of o's task, built from the head of its branch, and returns its ID.
func (s *Scheduler) start(ctx context.Context, o occurrence, now time.Time) (string, error) {
	return s.Runs.Start(ctx, o.task, proto.Trigger_TIMER, triggeredBy, now, func(r *proto.Run) {
		r.Timer = &proto.TimerTrigger{Name: o.timer, ScheduledAt: timestamppb.New(o.at)}
	})
}

// stamp formats an occurrence's time for logs and errors.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
