package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gitremote"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// lsRemoteTimeout bounds asking a git server which commit a ref points to.
const lsRemoteTimeout = 30 * time.Second

// runTask is POST /v1/tasks/{name}/runs: a manual run of the current head of the task's branch. It resolves
// the branch to its commit, so that the run's record says what it builds, queues the run and answers 202
// with it.
func (s *Server) runTask(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	t, err := s.st.Task(ctx, name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	src := t.GetSource()
	lctx, cancel := context.WithTimeout(ctx, lsRemoteTimeout)
	commit, ref, err := gitremote.Resolve(lctx, src.GetUrl(), src.GetRef(), t.GetGitToken())
	cancel()
	if err != nil {
		return fmt.Errorf("starting a run of task %s: %w", name, err)
	}

	queued := s.cfg.Now().UTC()
	id, err := s.st.NextRunID(ctx)
	if err != nil {
		return fmt.Errorf("allocating a run ID: %w", err)
	}
	rendered, err := tags.Render(t.GetTags(), tags.Run{ID: id, Commit: commit, Branch: shortRef(ref), TaskName: name,
		TriggeredBy: "manual", Queued: queued}, s.cfg.DefaultRegistry)
	if err != nil {
		return fmt.Errorf("starting a run of task %s: %w", name, err)
	}
	run := &proto.Run{
		Id:       id,
		Trigger:  proto.Trigger_MANUAL,
		QueuedAt: timestamppb.New(queued),
		TaskName: name,
		Git:      &proto.GitTrigger{Repository: src.GetUrl(), Ref: ref, Commit: commit},
		Spec:     queue.TaskSpec(t, ref, commit, rendered),
	}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if run, err = s.queue.Enqueue(ctx, run); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, RunFromProto(run))
	return nil
}

// shortRef is the branch or tag name of a full ref, as {{.Run.Branch}} shows it: "main" for refs/heads/main,
// "v1" for refs/tags/v1, "" for HEAD.
func shortRef(ref string) string {
	for _, prefix := range []string{"refs/heads/", "refs/tags/"} {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			return name
		}
	}
	if ref == "HEAD" {
		return ""
	}
	return ref
}
