package baseimage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// readBasesTimeout bounds reading a task's Dockerfile again after a run.
const readBasesTimeout = 30 * time.Second

// handleRunStatus learns from each run of a task that succeeded which digest of each base it built on, and,
// when the run built a commit other than the one the task's bases were read from, reads them again.
func (w *Watcher) handleRunStatus(ctx context.Context, msg jetstream.Msg) {
	ev := new(proto.RunStatusChanged)
	if err := gproto.Unmarshal(msg.Data(), ev); err != nil || ev.GetStatus() != proto.Status_SUCCEEDED {
		_ = msg.Ack()
		return
	}
	run, err := w.Store.Run(ctx, ev.GetRunId())
	if err != nil {
		if proto.ErrorCode(err) == proto.NotFound {
			_ = msg.Ack()
			return
		}
		w.Logger.Warn("reading a run that succeeded; it will be tried again", "run", ev.GetRunId(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if err := w.recordBuilt(ctx, run); err != nil {
		w.Logger.Warn("recording the bases a run built on; it will be tried again", "run", run.GetId(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
	select {
	case w.refreshes <- run:
	default: // a backlog of reads: this task's next run reads its bases again
		w.Logger.Warn("too many tasks' bases to read again; skipping one", "task", run.GetTaskName(), "run", run.GetId())
	}
}

// refreshQueue bounds the runs waiting for their task's bases to be read again.
const refreshQueue = 256

// refreshLoop reads tasks' bases again, one run at a time, until ctx ends: a git fetch that may take seconds
// must not hold up the runs whose outcomes the status consumer records.
func (w *Watcher) refreshLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case run := <-w.refreshes:
			w.refreshBases(ctx, run)
		}
	}
}

// recordBuilt records, for run's task, the digest of each base the run built on.
func (w *Watcher) recordBuilt(ctx context.Context, run *proto.Run) error {
	task := run.GetTaskName()
	if task == "" || len(run.GetBases()) == 0 || w.Index.Task(task) == nil {
		return nil
	}
	started := run.GetStartedAt().AsTime()
	_, err := w.Store.UpdateTaskBases(ctx, task, func(tb *proto.TaskBases) error {
		changed := false
		for _, b := range run.GetBases() {
			ref, err := basedeps.Normalize(b.GetReference())
			if err != nil {
				continue
			}
			changed = built(tb, ref, b.GetDigest(), run.GetId(), started) || changed
		}
		if !changed {
			return errNoChange
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("recording the bases run %s built on: %w", run.GetId(), err)
	}
	return nil
}

// refreshBases reads the bases of run's task again when the run built its branch at a commit other than the
// one they were read from: a new commit may have changed the Dockerfile. A failure is recorded on the task.
func (w *Watcher) refreshBases(ctx context.Context, run *proto.Run) {
	task := w.Index.Task(run.GetTaskName())
	commit := run.GetGit().GetCommit()
	if w.ReadBases == nil || task == nil || commit == "" || commit == task.GetBasesCommit() {
		return
	}
	switch run.GetTrigger() {
	case proto.Trigger_COMMIT, proto.Trigger_MANUAL, proto.Trigger_BASE_IMAGE:
	default:
		return // a pull request's or a tag's Dockerfile is not the branch's
	}
	rctx, cancel := context.WithTimeout(ctx, readBasesTimeout)
	bases, read, err := w.ReadBases(rctx, task)
	cancel()
	now := timestamppb.New(w.Now())
	_, uerr := w.Store.UpdateTask(ctx, task.GetName(), func(t *proto.Task) error {
		if !t.GetUpdatedAt().AsTime().Equal(task.GetUpdatedAt().AsTime()) {
			return errNoChange // the task was saved meanwhile, and its save read the bases
		}
		t.BasesReadAt = now
		if err != nil {
			t.BasesError = err.Error()
			return nil
		}
		t.Bases, t.BasesCommit, t.BasesError = bases, read, ""
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errNoChange) {
		w.Logger.Warn("recording a task's bases", "task", task.GetName(), "err", uerr)
	}
}
