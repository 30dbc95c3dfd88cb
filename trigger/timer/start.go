package timer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// Bounds and names of starting a timer's run.
const (
	resolveTimeout = 10 * time.Second
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

// start queues the run of o's task, built from the head of its branch, and returns its ID. For a task that
// builds only the latest run of a branch, the run is then recorded as its branch's newest; a failure to record
// it only costs the builds of older queued runs, and is logged.
func (s *Scheduler) start(ctx context.Context, o occurrence, now time.Time) (string, error) {
	task, name := o.task, o.task.GetName()
	src := task.GetSource()
	ref, commit := src.GetRef(), ""
	if s.ResolveRef != nil {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		c, full, err := s.ResolveRef(rctx, src.GetUrl(), src.GetRef(), task.GetGitToken())
		cancel()
		if err != nil {
			s.Logger.WarnContext(ctx, "resolving a task's branch; the worker builds its head", "task", name, "err", err)
		} else {
			commit, ref = c, full
		}
	}
	id, err := s.Store.NextRunID(ctx)
	if err != nil {
		return "", fmt.Errorf("taking a run ID: %w", err)
	}
	rendered, err := tags.Render(task.GetTags(), tags.Run{
		ID: id, Commit: commit, Branch: branchName(ref), TaskName: name, TriggeredBy: triggeredBy, Queued: now,
	}, s.DefaultRegistry)
	if err != nil {
		return "", fmt.Errorf("rendering the tags of task %s: %w", name, err)
	}
	run := &proto.Run{
		Id:       id,
		Trigger:  proto.Trigger_TIMER,
		QueuedAt: timestamppb.New(now),
		TaskName: name,
		Git:      &proto.GitTrigger{Repository: src.GetUrl(), Ref: ref, Commit: commit},
		Timer:    &proto.TimerTrigger{Name: o.timer, ScheduledAt: timestamppb.New(o.at)},
		Spec:     queue.TaskSpec(task, ref, commit, rendered),
	}
	if _, err := s.Queue.Enqueue(ctx, run); err != nil {
		return "", err
	}
	if task.GetLatestOnly() && ref != "" {
		if err := s.Store.SetLatest(ctx, name, branchName(ref), id); err != nil {
			s.Logger.WarnContext(ctx, "could not record a task's latest run: older queued runs will be built",
				"task", name, "run", id, "err", err)
		}
	}
	return id, nil
}

// branchName is the branch a ref names: "main" for refs/heads/main and for main.
func branchName(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// stamp formats an occurrence's time for logs and errors.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
