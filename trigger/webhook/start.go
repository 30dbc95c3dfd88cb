package webhook

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// startTimeout bounds the time a delivery's runs take to be queued once the delivery is accepted.
const startTimeout = 30 * time.Second

// delivery is one authenticated delivery: who sent it, under which ID, and the tasks it proved itself to.
type delivery struct {
	source string        // "github" or "gitlab": the namespace of its ID
	id     string        // the sender's delivery ID; "" when it gives none, and then only its change tells a redelivery
	event  string        // the event's name, for the log
	repo   repository    // the repository it is about
	tasks  []*proto.Task // the tasks whose secret it proved
}

// start starts a run of c for each of d's tasks that builds it, and answers. Each task acts on a delivery ID
// once and on a change once (dedupe.go): the store marks them before the run is queued, a redelivery or a
// replay finds a mark and starts nothing, and a run that could not be queued has its marks removed again so
// that a redelivery starts it. After a failure that is not the task's own (the store or JetStream down) the
// remaining tasks are left unmarked for a redelivery, and the answer is that failure's status, 503 mostly,
// with the runs that did start.
func (h *Handler) start(ctx context.Context, w http.ResponseWriter, d delivery, c change) {
	// A sender that hangs up (GitHub waits ten seconds) must not leave the delivery half acted on: the work
	// goes on without the request, for a bounded time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	var a answer
	var failed error
	var dups []string // why each task that had already acted on this delivery or change starts nothing
	matched := 0
	now := time.Now()
	for _, task := range d.tasks {
		if why := skipReason(task, c); why != "" {
			a.skip(task.GetName(), why)
			continue
		}
		matched++
		dup, err := h.mark(ctx, d, c, task)
		if err != nil {
			failed = err
			break
		}
		if dup != "" {
			dups = append(dups, dup)
			a.skip(task.GetName(), dup)
			continue
		}
		id, err := h.startRun(ctx, d, task, c, now)
		if err != nil {
			h.unmark(ctx, d, c, task)
			if proto.ErrorCode(err) == proto.Invalid { // the task's own fault, a tag that does not render
				h.log.WarnContext(ctx, "a webhook delivery could not start a task's run", "task", task.GetName(),
					"delivery", d.id, "err", err)
				a.skip(task.GetName(), err.Error())
				continue
			}
			failed = err
			break
		}
		a.Runs = append(a.Runs, id)
	}

	status := http.StatusAccepted
	switch {
	case failed != nil:
		status = a.fail(failed)
		h.log.ErrorContext(ctx, "a webhook delivery failed", "source", d.source, "event", d.event, "delivery", d.id,
			"repository", d.repo.name, "runs", a.Runs, "err", failed)
	case len(a.Runs) == 0 && matched > 0 && len(dups) == matched:
		status = http.StatusOK
		a = answer{Ignored: dups[0]}
	case len(a.Runs) == 0:
		a.Ignored = fmt.Sprintf("no task builds %s of %s", c.ref, d.repo.name)
	}
	if failed == nil {
		h.log.InfoContext(ctx, "webhook delivery", "source", d.source, "event", d.event, "delivery", d.id,
			"repository", d.repo.name, "ref", c.ref, "commit", c.commit, "runs", a.Runs, "skipped", a.Skipped)
	}
	writeJSON(w, status, a)
}

// startRun queues task's run of c and returns its ID. For a task that builds only the latest push, the run is
// then recorded as its branch's newest, so that workers skip the older runs still queued; a failure to record
// it only costs those builds, and is logged.
func (h *Handler) startRun(ctx context.Context, d delivery, task *proto.Task, c change, now time.Time) (string, error) {
	id, err := h.st.NextRunID(ctx)
	if err != nil {
		return "", fmt.Errorf("taking a run ID: %w", err)
	}
	run, err := newRun(id, task, c, d.id, h.cfg.DefaultRegistry, now)
	if err != nil {
		return "", err
	}
	if _, err := h.q.Enqueue(ctx, run); err != nil {
		return "", err
	}
	if task.GetLatestOnly() {
		if err := h.st.SetLatest(ctx, task.GetName(), c.branchKey(), id); err != nil {
			h.log.WarnContext(ctx, "could not record a task's latest run: older queued runs will be built",
				"task", task.GetName(), "branch", c.branchKey(), "run", id, "err", err)
		}
	}
	return id, nil
}

// newRun returns the run that builds c for task: the delivery's commit of the task's repository, tagged from
// the task's templates. A pull request's run pushes only when the task pushes and allows pull requests to.
func newRun(id string, task *proto.Task, c change, deliveryID, registry string, now time.Time) (*proto.Run, error) {
	rendered, err := tags.Render(task.GetTags(), tags.Run{
		ID: id, Commit: c.commit, Branch: c.tagBranch(), TaskName: task.GetName(), TriggeredBy: c.triggeredBy(), Queued: now,
	}, registry)
	if err != nil {
		return nil, fmt.Errorf("rendering the tags of task %s: %w", task.GetName(), err)
	}
	spec := queue.TaskSpec(task, c.ref, c.commit, rendered)
	if c.trigger == proto.Trigger_PULL_REQUEST {
		spec.Push = spec.Push && task.GetPushPullRequests()
	}
	return &proto.Run{
		Id:       id,
		Trigger:  c.trigger,
		QueuedAt: timestamppb.New(now),
		TaskName: task.GetName(),
		Git: &proto.GitTrigger{
			Repository:  task.GetSource().GetUrl(),
			Ref:         c.ref,
			Commit:      c.commit,
			DeliveryId:  deliveryID,
			Pusher:      c.pusher,
			PullRequest: c.pullRequest,
		},
		Spec: spec,
	}, nil
}
