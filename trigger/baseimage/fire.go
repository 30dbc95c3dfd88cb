package baseimage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// fireParallel bounds the runs one process queues at once when many tasks fall due together (one base with
// many dependents).
const fireParallel = 16

// fireLoop follows every task's base state through a watch of the store, and when a task's pending changes
// fall due (or a firing stalls), queues its run. Every process runs one; the claim's compare-and-swap lets
// exactly one of them queue each run.
func (w *Watcher) fireLoop(ctx context.Context) error {
	updates, err := w.Store.WatchTaskBases(ctx)
	if err != nil {
		return err
	}
	due := make(map[string]time.Time)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(w.untilNext(due))
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return proto.Errorf(proto.Unavailable, "watching the base images of tasks: the watch ended")
			}
			if u.Task == "" {
				continue // the end of the current values
			}
			if at, ok := dueAt(u.Bases, stallAfter); ok && !u.Deleted {
				due[u.Task] = at
			} else {
				delete(due, u.Task)
			}
		case <-timer.C:
			now := w.Now()
			var ready []string
			for task, at := range due {
				if !at.After(now) {
					ready = append(ready, task)
					delete(due, task) // the watch brings it back if it still needs a look
				}
			}
			w.fireAll(ctx, ready)
		}
	}
}

// untilNext is the time until the earliest due task; an hour when none is due.
func (w *Watcher) untilNext(due map[string]time.Time) time.Duration {
	next := time.Hour
	now := w.Now()
	for _, at := range due {
		if d := at.Sub(now); d < next {
			next = d
		}
	}
	return max(next, 0)
}

// fireAll fires the tasks, fireParallel at a time.
func (w *Watcher) fireAll(ctx context.Context, tasks []string) {
	sem := make(chan struct{}, fireParallel)
	var wg sync.WaitGroup
	for _, task := range tasks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.fire(ctx, task)
		}()
	}
	wg.Wait()
}

// fire queues the run of the task's due changes: it claims them (only one process's claim succeeds), queues
// the run and records which run it is. A run that cannot be queued for now (JetStream unavailable) stays
// claimed, and is queued when the claim is found stalled; one that never can be (the task's tags do not
// render, the task is gone) is given up, logged, and its digests count as started for.
func (w *Watcher) fire(ctx context.Context, task string) {
	var changes []*proto.BaseChange
	_, err := w.Store.UpdateTaskBases(ctx, task, func(tb *proto.TaskBases) error {
		if changes = claim(tb, w.Now(), stallAfter); changes == nil {
			return errNoChange
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoChange):
		return
	case err != nil:
		w.Logger.Warn("claiming a task's base image changes; they will be tried again", "task", task, "err", err)
		return
	}
	id, err := w.start(ctx, task, changes)
	if err != nil && proto.ErrorCode(err) == proto.Unavailable {
		w.Logger.Warn("queuing a base image run; it will be tried again", "task", task, "err", err)
		return
	}
	if err != nil {
		w.Logger.Error("a base image update could not start a run", "task", task, "changes", describe(changes), "err", err)
	}
	_, err = w.Store.UpdateTaskBases(ctx, task, func(tb *proto.TaskBases) error {
		if !finish(tb, changes, id) {
			return errNoChange
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		// The run is queued; the claim left behind is taken for stalled later and queued once more.
		w.Logger.Error("recording a base image run", "task", task, "run", id, "err", err)
	}
	if id != "" {
		w.Logger.Info("base image update", "task", task, "run", id, "changes", describe(changes))
	}
}

// describe is changes for the log: "ref old→new" each.
func describe(changes []*proto.BaseChange) []string {
	out := make([]string, 0, len(changes))
	for _, c := range changes {
		out = append(out, fmt.Sprintf("%s %s→%s (%s)", c.GetReference(), short(c.GetOldDigest()), short(c.GetNewDigest()), c.GetSource()))
	}
	return out
}

func short(digest string) string {
	if digest == "" {
		return "none"
	}
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}
