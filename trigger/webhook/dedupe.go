package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/kilnbuild/kiln/proto"
)

// A task acts on a change once, whatever delivery carries it. The store marks (change, task) in
// kiln_deliveries, with the ID of the delivery that carried it, where a mark lasts as long as the bucket keeps
// it (30 days): a redelivery under the same ID, and the same body sent again under a new ID or none (a replay of
// a signed body, GitLab's resend, a second hook on the repository), find the mark and start nothing. A real new
// push moves the ref to a new commit, or from another one, and is a new change. One mark, and so one synced
// write, per task and delivery: a redelivery carries the body, and so the change, of the delivery it repeats, so
// a mark of the delivery ID beside it would catch nothing more, and would cost every delivery a second write.

// markID is the name under which the store records that task acted on c, carried by d.
func markID(d delivery, c change, task *proto.Task) string {
	return changeKey(d.repo, c) + "/" + task.GetName()
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

// mark records that task acts on c, carried by d, and returns "" when task is the first to, or why it is not:
// the same delivery again, or another that repeats it. Of concurrent calls for the same change, in any number
// of processes, one is first.
func (h *Handler) mark(ctx context.Context, d delivery, c change, task *proto.Task) (dup string, err error) {
	first, by, err := h.st.MarkDeliveryBy(ctx, d.source, markID(d, c, task), d.id)
	switch {
	case err != nil:
		return "", fmt.Errorf("marking delivery %s: %w", d.id, err)
	case first:
		return "", nil
	case d.id != "" && by == d.id:
		return fmt.Sprintf("delivery %s already handled", d.id), nil
	}
	return fmt.Sprintf("%s already handled: this delivery repeats an earlier one", c.describe()), nil
}

// unmark forgets that task acted on c, carried by d, so that a redelivery starts it, even when the time to
// queue runs is up: a mark left behind would make a redelivery start nothing. A failure is logged; the
// delivery's answer already says what happened.
func (h *Handler) unmark(ctx context.Context, d delivery, c change, task *proto.Task) {
	if err := h.st.UnmarkDelivery(context.WithoutCancel(ctx), d.source, markID(d, c, task)); err != nil {
		h.log.ErrorContext(ctx, "a failed delivery stays marked: its redelivery will start nothing for the task",
			"delivery", d.id, "task", task.GetName(), "err", err)
	}
}
