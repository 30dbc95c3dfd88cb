package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/kilnbuild/kiln/proto"
)

// A task acts on a delivery once, and on a change once, whatever delivery carries it. The store marks
// (delivery ID, task) and (change, task) in kiln_deliveries, where a mark lasts as long as the bucket keeps it
// (30 days): a redelivery under the same ID finds the first mark, and the same body sent again under a new ID,
// or none (a replay of a signed body, GitLab's resend of an old version, a second hook on the repository),
// finds the second. A real new push moves the ref to a new commit, or from another one, and is a new change.

// mark is one name under which the store records that a task acted on a delivery, and what to answer when the
// name is already marked.
type mark struct {
	id  string // the ID in the delivery's source namespace
	dup string // why the task starts nothing when id is already marked
}

// marks returns the names under which task's acting on c, carried by d, is recorded: the sender's delivery ID
// when it gives one, then what the body identifies.
func marks(d delivery, c change, task *proto.Task) []mark {
	var ms []mark
	if d.id != "" {
		ms = append(ms, mark{id: d.id + "/" + task.GetName(), dup: fmt.Sprintf("delivery %s already handled", d.id)})
	}
	return append(ms, mark{id: changeKey(d.repo, c) + "/" + task.GetName(),
		dup: fmt.Sprintf("%s already handled: this delivery repeats an earlier one", c.describe())})
}

// changeKey names c in the store whichever delivery carries it: a push by its repository, ref and the commits
// it moved the ref from and to; a pull request by its repository, ref (which holds its number), head commit and
// action. The fields are hashed, so that a key's length does not depend on the body. Task names hold no '/'.
func changeKey(repo repository, c change) string {
	fields := []string{"push", repo.key(), c.ref, c.before, c.after}
	if c.trigger == proto.Trigger_PULL_REQUEST {
		fields = []string{"pull_request", repo.key(), c.ref, c.commit, c.action}
	}
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "change:" + hex.EncodeToString(h.Sum(nil))
}

// describe names c in an answer: "the push of refs/heads/main to abc..." or "pull request 7 (synchronize) at
// abc...".
func (c change) describe() string {
	if c.trigger == proto.Trigger_PULL_REQUEST {
		return fmt.Sprintf("pull request %d (%s) at %s", c.pullRequest, c.action, c.commit)
	}
	return fmt.Sprintf("the push of %s to %s", c.ref, c.after)
}

// mark records that task acts on c, carried by d, under each of its names, and returns "" when task is the
// first to, or why it is not. Of concurrent calls for the same name, in any number of processes, one is first.
// When a name is already marked, the names this call marked are removed again: a redelivery of d then asks
// again, and finds the mark of whichever delivery acted.
func (h *Handler) mark(ctx context.Context, d delivery, c change, task *proto.Task) (dup string, err error) {
	ms := marks(d, c, task)
	for i, m := range ms {
		first, err := h.st.MarkDelivery(ctx, d.source, m.id)
		if err != nil {
			h.forget(ctx, d, task, ms[:i])
			return "", fmt.Errorf("marking delivery %s: %w", d.id, err)
		}
		if !first {
			h.forget(ctx, d, task, ms[:i])
			return m.dup, nil
		}
	}
	return "", nil
}

// unmark forgets that task acted on c, carried by d, so that a redelivery starts it.
func (h *Handler) unmark(ctx context.Context, d delivery, c change, task *proto.Task) {
	h.forget(ctx, d, task, marks(d, c, task))
}

// forget removes marks ms of task, even when the time to queue runs is up: a mark left behind would make a
// redelivery start nothing. A failure is logged; the delivery's answer already says what happened.
func (h *Handler) forget(ctx context.Context, d delivery, task *proto.Task, ms []mark) {
	for _, m := range ms {
		if err := h.st.UnmarkDelivery(context.WithoutCancel(ctx), d.source, m.id); err != nil {
			h.log.ErrorContext(ctx, "a failed delivery stays marked: its redelivery will start nothing for the task",
				"delivery", d.id, "task", task.GetName(), "err", err)
		}
	}
}
