package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// resolveTimeout bounds asking a git server which commit a branch points to.
const resolveTimeout = 10 * time.Second

// HeadStore is what starting a run of a branch's head needs of the store beside what Enqueue does.
type HeadStore interface {
	NextRunID(ctx context.Context) (string, error)
	SetLatest(ctx context.Context, task, branch, runID string) error
}

// Head starts runs of the head of a task's branch, for the triggers that are not a git event of their own: a
// timer and a base image update.
type Head struct {
	Queue *Queue
	Store HeadStore
	// ResolveRef returns the commit a branch of a repository points to and the branch's full ref, so that a
	// run's record and tags name the commit it builds. Nil, or an error (logged), leaves the commit to the
	// worker, which fetches whatever the branch points to then.
	ResolveRef func(ctx context.Context, url, ref, token string) (commit, fullRef string, err error)
	// DefaultRegistry is {{.Run.Registry}} in tag templates.
	DefaultRegistry string
	Logger          *slog.Logger // nil discards
}

// Start queues a run of task's branch head started by trigger at now, {{.Run.TriggeredBy}} being triggeredBy;
// edit adds the trigger's own fields to the run before it is queued. For a task that builds only the latest
// run of a branch, the run is then recorded as its branch's newest; a failure to record that only costs the
// builds of older queued runs, and is logged. A tag template that does not render is proto.Invalid.
func (h *Head) Start(ctx context.Context, task *proto.Task, trigger proto.Trigger, triggeredBy string, now time.Time,
	edit func(r *proto.Run)) (string, error) {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name, src := task.GetName(), task.GetSource()
	ref, commit := src.GetRef(), ""
	if h.ResolveRef != nil {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		c, full, err := h.ResolveRef(rctx, src.GetUrl(), src.GetRef(), task.GetGitToken())
		cancel()
		if err != nil {
			log.WarnContext(ctx, "resolving a task's branch; the worker builds its head", "task", name, "err", err)
		} else {
			commit, ref = c, full
		}
	}
	id, err := h.Store.NextRunID(ctx)
	if err != nil {
		return "", fmt.Errorf("taking a run ID: %w", err)
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	rendered, err := tags.Render(task.GetTags(), tags.Run{
		ID: id, Commit: commit, Branch: branch, TaskName: name, TriggeredBy: triggeredBy, Queued: now,
	}, h.DefaultRegistry)
	if err != nil {
		return "", fmt.Errorf("rendering the tags of task %s: %w", name, err)
	}
	run := &proto.Run{
		Id:       id,
		Trigger:  trigger,
		QueuedAt: timestamppb.New(now),
		TaskName: name,
		Git:      &proto.GitTrigger{Repository: src.GetUrl(), Ref: ref, Commit: commit},
		Spec:     TaskSpec(task, ref, commit, rendered),
	}
	if edit != nil {
		edit(run)
	}
	if _, err := h.Queue.Enqueue(ctx, run); err != nil {
		return "", err
	}
	if task.GetLatestOnly() && ref != "" {
		if err := h.Store.SetLatest(ctx, name, branch, id); err != nil {
			log.WarnContext(ctx, "could not record a task's latest run: older queued runs will be built",
				"task", name, "run", id, "err", err)
		}
	}
	return id, nil
}
