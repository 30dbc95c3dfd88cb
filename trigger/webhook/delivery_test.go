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

	// Another delivery of the same push is the same push (replayed, or sent by a second hook): it starts nothing.
	status, rep = e.github(t, "push", "d2", secret, body)
	if status != http.StatusOK || len(rep.Runs) != 0 || !strings.Contains(rep.Ignored, "already handled") {
		t.Errorf("delivery d2 of the same push = %d %+v, want 200 ignored as already handled", status, rep)
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
	// Each line of work gets two changes: the real payload, then the same with a new commit.
	const next = "5c1a6f3e0d2b4a8c9e7f6a5b4c3d2e1f0a9b8c7d"
	tests := []struct {
		name   string
		task   *proto.Task
		event  string
		bodies [2][]byte
		branch string // the key workers look the latest run up by
	}{
		{name: "branch", task: newTask("app", withRef("master"), latest), event: "push", bodies: [2][]byte{
			payload(t, "github/push.branch.json", atRepo),
			payload(t, "github/push.branch.json", atRepo, set("before", branchAfter), set("after", next))},
			branch: "master"},
		{name: "tag", task: newTask("app", tagsOnly, latest), event: "push", bodies: [2][]byte{
			payload(t, "github/push.tag.json", atRepo),
			payload(t, "github/push.tag.json", atRepo, set("after", next), set("head_commit.id", next))},
			branch: "v0.0.1"},
		{name: "pull request", task: newTask("app", withRef("master"), pullRequests, latest), event: "pull_request", bodies: [2][]byte{
			payload(t, "github/pull_request.opened.json", atRepo),
			payload(t, "github/pull_request.synchronize.json", atRepo, set("pull_request.head.sha", next))},
			branch: "pr/2"},
		{name: "gitlab merge request", task: newTask("app", withRef("master"), pullRequests, latest), bodies: [2][]byte{
			payload(t, "gitlab/merge_request.open.json", atGitLabProject),
			payload(t, "gitlab/merge_request.update.json", atGitLabProject, set("object_attributes.last_commit.id", next))},
			branch: "refs/merge-requests/1/head"},
		{name: "not latest only", task: newTask("app", withRef("master")), event: "push", bodies: [2][]byte{
			payload(t, "github/push.branch.json", atRepo),
			payload(t, "github/push.branch.json", atRepo, set("before", branchAfter), set("after", next))},
			branch: "master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.task)
			var ids []string
			for i, d := range []string{"d1", "d2"} {
				var status int
				var rep reply
				if tt.event == "" {
					status, rep = e.gitlab(t, "Merge Request Hook", d, secret, tt.bodies[i])
				} else {
					status, rep = e.github(t, tt.event, d, secret, tt.bodies[i])
				}
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

// TestReplayStartsNothingNew: a signed body sent again under a new delivery ID, or none, is the same change and
// starts nothing new, on either endpoint; a real new push, or a ref moved back to a commit it had, builds.
func TestReplayStartsNothingNew(t *testing.T) {
	const newer = "5c1a6f3e0d2b4a8c9e7f6a5b4c3d2e1f0a9b8c7d"
	github := func(event string) func(e *testEnv, id string, body []byte) (int, reply) {
		return func(e *testEnv, id string, body []byte) (int, reply) { return e.github(t, event, id, secret, body) }
	}
	gitlab := func(event string) func(e *testEnv, id string, body []byte) (int, reply) {
		return func(e *testEnv, id string, body []byte) (int, reply) { return e.gitlab(t, event, id, secret, body) }
	}
	type send struct {
		id       string // the delivery ID; "" sends none
		body     []byte
		wantRuns int
	}
	push := payload(t, "github/push.branch.json", atRepo)
	gitea := payload(t, "gitea/push.json", atRepo)
	pr := payload(t, "github/pull_request.synchronize.json", atRepo)
	gitlabPush := payload(t, "gitlab/push.json", atGitLabProject)
	tests := []struct {
		name    string
		task    *proto.Task
		deliver func(e *testEnv, id string, body []byte) (int, reply)
		sends   []send
	}{
		{name: "github push", task: newTask("app", withRef("master")), deliver: github("push"), sends: []send{
			{id: "d1", body: push, wantRuns: 1},
			{id: "d2", body: push},
			{id: "", body: push},
			{id: "d3", body: payload(t, "github/push.branch.json", atRepo, set("before", branchAfter), set("after", newer)), wantRuns: 1},
			// Moved back to the first commit: the same after from another before is a new push.
			{id: "d4", body: payload(t, "github/push.branch.json", atRepo, set("before", newer)), wantRuns: 1},
		}},
		{name: "github pull request", task: newTask("app", withRef("master"), pullRequests), deliver: github("pull_request"), sends: []send{
			{id: "d1", body: pr, wantRuns: 1},
			{id: "d2", body: pr},
			{id: "", body: pr},
			{id: "d3", body: payload(t, "github/pull_request.synchronize.json", atRepo, set("pull_request.head.sha", newer)), wantRuns: 1},
			{id: "d4", body: payload(t, "github/pull_request.synchronize.json", atRepo, set("action", "reopened")), wantRuns: 1},
		}},
		{name: "gitea push", task: newTask("app", withRef("main")), deliver: github("push"), sends: []send{
			{id: "d1", body: gitea, wantRuns: 1},
			{id: "d2", body: gitea},
			{id: "d3", body: payload(t, "gitea/push.json", atRepo, set("before", giteaAfter), set("after", newer)), wantRuns: 1},
		}},
		{name: "gitlab push", task: newTask("app", withRef("master")), deliver: gitlab("Push Hook"), sends: []send{
			{id: "9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e", body: gitlabPush, wantRuns: 1},
			{id: "0e5c7a44-9d0b-4f3e-8d55-2a1b3c4d5e6f", body: gitlabPush},
			{id: "", body: gitlabPush},
			{id: "", body: payload(t, "gitlab/push.json", atGitLabProject, set("before", gitlabAfter), set("after", newer), set("checkout_sha", newer)), wantRuns: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.task)
			var ids []string
			for i, s := range tt.sends {
				status, rep := tt.deliver(e, s.id, s.body)
				if len(rep.Runs) != s.wantRuns {
					t.Fatalf("delivery %d (ID %q) = %d %+v, want %d runs", i, s.id, status, rep, s.wantRuns)
				}
				if s.wantRuns == 0 && (status != http.StatusOK || !strings.Contains(rep.Ignored, "already handled")) {
					t.Errorf("delivery %d (ID %q) = %d %+v, want 200 ignored as already handled", i, s.id, status, rep)
				}
				ids = append(ids, rep.Runs...)
			}
			e.queued(t, ids)
		})
	}
}
