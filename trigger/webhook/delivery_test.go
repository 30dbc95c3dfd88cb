package webhook_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

func TestRedeliveryStartsNoSecondRun(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("a", withRef("master")), newTask("b", withRef("master")))
	body := payload(t, "github/push.branch.json", atRepo)
	status, rep := e.github(t, "push", "d1", secret, body)
	if status != http.StatusAccepted || len(rep.Runs) != 2 {
		t.Fatalf("first delivery = %d %+v, want 202 with two runs", status, rep)
	}
	first := rep.Runs
	status, rep = e.github(t, "push", "d1", secret, body)
	if status != http.StatusOK || len(rep.Runs) != 0 || !strings.Contains(rep.Ignored, "d1 already handled") {
		t.Errorf("redelivery = %d %+v, want 200 ignored as already handled", status, rep)
	}
	e.queued(t, first)

	// Another delivery of the same push is another delivery.
	if status, rep := e.github(t, "push", "d2", secret, body); status != http.StatusAccepted || len(rep.Runs) != 2 {
		t.Errorf("delivery d2 = %d %+v, want 202 with two runs", status, rep)
	}

	// A task made since is started by a redelivery; the others are not started again.
	if err := e.st.CreateTask(t.Context(), newTask("c", withRef("master"))); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	status, rep = e.github(t, "push", "d1", secret, body)
	if status != http.StatusAccepted || len(rep.Runs) != 1 || len(rep.Skipped) != 2 {
		t.Fatalf("redelivery after task c was made = %d %+v, want 202 with one run", status, rep)
	}
	if r, err := e.st.Run(t.Context(), rep.Runs[0]); err != nil || r.GetTaskName() != "c" {
		t.Errorf("run %s = %v, %v, want a run of task c", rep.Runs[0], r, err)
	}
}

func TestConcurrentRedeliveriesStartOneRun(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	body := payload(t, "github/push.branch.json", atRepo)
	const senders = 6
	var wg sync.WaitGroup
	runs := make(chan []string, senders)
	for range senders {
		wg.Go(func() {
			status, rep := e.github(t, "push", "same", secret, body)
			if status != http.StatusAccepted && status != http.StatusOK {
				t.Errorf("delivery = %d %+v, want 202 or 200", status, rep)
			}
			runs <- rep.Runs
		})
	}
	wg.Wait()
	close(runs)
	var all []string
	for ids := range runs {
		all = append(all, ids...)
	}
	if len(all) != 1 {
		t.Fatalf("%d concurrent deliveries of one ID started runs %v, want one", senders, all)
	}
	e.queued(t, all)
}

// TestEnqueueFailureUnmarksTheDelivery: when the run's event cannot be published (the runs stream is gone), the
// delivery answers 503 and stays unmarked, so that a redelivery, once the stream is back, starts the run.
func TestEnqueueFailureUnmarksTheDelivery(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	body := payload(t, "github/push.branch.json", atRepo)
	if err := e.js.DeleteStream(t.Context(), proto.StreamRuns); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	status, rep := e.github(t, "push", "d1", secret, body)
	if status != http.StatusServiceUnavailable || rep.Error == nil || rep.Error.Code != proto.Unavailable || len(rep.Runs) != 0 {
		t.Fatalf("delivery with no runs stream = %d %+v, want 503 unavailable and no run", status, rep)
	}
	// The queue ended the run it could not publish: nothing waits in Queued for an event that never comes.
	failed, err := e.st.ListRuns(t.Context(), store.ListOptions{})
	if err != nil || len(failed) != 1 || failed[0].GetStatus() != proto.Status_ERROR {
		t.Fatalf("runs after the failure = %v, %v, want one run ended Error", failed, err)
	}

	if _, err := store.Open(t.Context(), e.js, store.Config{}); err != nil { // makes the stream again
		t.Fatalf("store.Open: %v", err)
	}
	status, rep = e.github(t, "push", "d1", secret, body)
	if status != http.StatusAccepted || len(rep.Runs) != 1 {
		t.Fatalf("redelivery once the stream is back = %d %+v, want 202 with one run", status, rep)
	}
	if rep.Runs[0] == failed[0].GetId() {
		t.Errorf("the redelivery reused run ID %s", rep.Runs[0])
	}
	e.queued(t, rep.Runs)
}

func TestLatestOnlyRecordsTheNewestRun(t *testing.T) {
	latest := func(t *proto.Task) { t.LatestOnly = true }
	tests := []struct {
		name   string
		task   *proto.Task
		event  string
		body   []byte
		branch string // the key workers look the latest run up by
	}{
		{name: "branch", task: newTask("app", withRef("master"), latest), event: "push",
			body: payload(t, "github/push.branch.json", atRepo), branch: "master"},
		{name: "tag", task: newTask("app", tagsOnly, latest), event: "push",
			body: payload(t, "github/push.tag.json", atRepo), branch: "v0.0.1"},
		{name: "pull request", task: newTask("app", withRef("master"), pullRequests, latest), event: "pull_request",
			body: payload(t, "github/pull_request.opened.json", atRepo), branch: "pr/2"},
		{name: "not latest only", task: newTask("app", withRef("master")), event: "push",
			body: payload(t, "github/push.branch.json", atRepo), branch: "master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.task)
			var ids []string
			for _, d := range []string{"d1", "d2"} {
				status, rep := e.github(t, tt.event, d, secret, tt.body)
				if status != http.StatusAccepted || len(rep.Runs) != 1 {
					t.Fatalf("delivery %s = %d %+v, want 202 with one run", d, status, rep)
				}
				ids = append(ids, rep.Runs...)
			}
			want := ids[1]
			if !tt.task.GetLatestOnly() {
				want = ""
			}
			if got, err := e.st.Latest(t.Context(), "app", tt.branch); err != nil || got != want {
				t.Errorf("Latest(app, %s) = %q, %v, want %q", tt.branch, got, err, want)
			}
			if got := e.requested(t); !slices.Equal(got, ids) {
				t.Errorf("events = %v, want %v", got, ids)
			}
		})
	}
}

// TestTagThatDoesNotRenderSkipsTheTask: a task whose tag cannot be made for a push (a branch name with a '/' in
// a tag) starts nothing and says why, the other tasks start, and once the task is mended a redelivery starts
// it alone.
func TestTagThatDoesNotRenderSkipsTheTask(t *testing.T) {
	bad := newTask("bad", withRef("feature/x"), func(t *proto.Task) { t.Tags = []string{"team/bad:{{.Run.Branch}}"} })
	good := newTask("good", withRef("feature/x"), func(t *proto.Task) { t.Tags = []string{"team/good:{{.Run.ID}}"} })
	e := newEnv(t, webhook.Config{}, bad, good)
	body := payload(t, "github/push.branch.json", atRepo, set("ref", "refs/heads/feature/x"))
	status, rep := e.github(t, "push", "d1", secret, body)
	if status != http.StatusAccepted || len(rep.Runs) != 1 || !strings.Contains(rep.Skipped["bad"], "not a valid image reference") {
		t.Fatalf("delivery = %d %+v, want 202 with one run and task bad skipped for its tag", status, rep)
	}
	e.queued(t, rep.Runs)

	_, err := e.st.UpdateTask(t.Context(), "bad", func(t *proto.Task) error {
		t.Tags = []string{"team/bad:{{.Run.Commit}}"}
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTask: %v", err)
	}
	status, rep = e.github(t, "push", "d1", secret, body)
	if status != http.StatusAccepted || len(rep.Runs) != 1 || !strings.Contains(rep.Skipped["good"], "already handled") {
		t.Fatalf("redelivery = %d %+v, want 202 with one run, of task bad", status, rep)
	}
	runs := e.queued(t, rep.Runs)
	if r := runs[rep.Runs[0]]; r.GetTaskName() != "bad" || r.GetSpec().GetTags()[0] != registry+"/team/bad:"+branchAfter {
		t.Errorf("run = %v, want task bad's run tagged with the commit", r)
	}
}
