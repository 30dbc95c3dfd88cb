package baseimage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// Bounds of the steps of queuing a run.
const (
	resolveTimeout  = 10 * time.Second
	triggeredByBase = "base_image"
)

// start queues the run of task for changes and returns its ID.
func (w *Watcher) start(ctx context.Context, name string, changes []*proto.BaseChange) (string, error) {
	task := w.Index.Task(name)
	if task == nil {
		return "", proto.Errorf(proto.NotFound, "task %s no longer exists", name)
	}
	src := task.GetSource()
	ref, commit := src.GetRef(), ""
	if w.ResolveRef != nil {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		c, full, err := w.ResolveRef(rctx, src.GetUrl(), src.GetRef(), task.GetGitToken())
		cancel()
		if err != nil {
			w.Logger.Warn("resolving a task's branch; the worker builds its head", "task", name, "err", err)
		} else {
			commit, ref = c, full
		}
	}
	now := w.Now()
	id, err := w.Store.NextRunID(ctx)
	if err != nil {
		return "", fmt.Errorf("taking a run ID: %w", err)
	}
	rendered, err := tags.Render(task.GetTags(), tags.Run{
		ID: id, Commit: commit, Branch: branchName(ref), TaskName: name, TriggeredBy: triggeredByBase, Queued: now,
	}, w.DefaultRegistry)
	if err != nil {
		return "", fmt.Errorf("rendering the tags of task %s: %w", name, err)
	}
	run := &proto.Run{
		Id:        id,
		Trigger:   proto.Trigger_BASE_IMAGE,
		QueuedAt:  timestamppb.New(now),
		TaskName:  name,
		Git:       &proto.GitTrigger{Repository: src.GetUrl(), Ref: ref, Commit: commit},
		BaseImage: &proto.BaseImageTrigger{Changes: changes},
		Spec:      queue.TaskSpec(task, ref, commit, rendered),
	}
	if _, err := w.Queue.Enqueue(ctx, run); err != nil {
		return "", err
	}
	if task.GetLatestOnly() && ref != "" {
		if err := w.Store.SetLatest(ctx, name, branchName(ref), id); err != nil {
			w.Logger.Warn("could not record a task's latest run: older queued runs will be built",
				"task", name, "run", id, "err", err)
		}
	}
	return id, nil
}

// branchName is the branch a ref names: "main" for refs/heads/main and for main.
func branchName(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}
