package webhook_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// The commit and user the real GitLab payloads name.
const (
	gitlabAfter = "2adc9465c4edfc33834e173fe89436a7cb899a1d"
	gitlabUser  = "sytses"
)

func TestGitLabPush(t *testing.T) {
	tests := []struct {
		deliveryTest
		token string
	}{
		{deliveryTest: deliveryTest{
			name:       "push",
			tasks:      []*proto.Task{newTask("app", withRef("")), newTask("develop", withRef("develop")), newTask("tags", tagsOnly)},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: gitlabAfter, branch: "master", pusher: gitlabUser, push: true},
			},
			wantSkipped: []string{"develop", "tags"},
		}, token: secret},
		{deliveryTest: deliveryTest{
			name:       "path filter miss",
			tasks:      []*proto.Task{newTask("app", withRef("master"), withFilters("src/**"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusAccepted, wantSkipped: []string{"app"},
		}, token: secret},
		{deliveryTest: deliveryTest{
			// GitLab lists 20 commits at most and counts them all.
			name:       "more commits than listed",
			tasks:      []*proto.Task{newTask("app", withRef("master"), withFilters("src/**"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject, set("total_commits_count", 21)),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: gitlabAfter, branch: "master", pusher: gitlabUser, push: true},
			},
		}, token: secret},
		{deliveryTest: deliveryTest{
			name:       "tag push",
			tasks:      []*proto.Task{newTask("release", tagsOnly), newTask("app", withRef("master"))},
			event:      "Tag Push Hook",
			body:       payload(t, "gitlab/tag_push.json", atGitLabProject),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "release", trigger: proto.Trigger_TAG, ref: "refs/tags/v1.0.0", commit: gitlabAfter, branch: "v1.0.0", pusher: gitlabUser, push: true},
			},
			wantSkipped: []string{"app"},
		}, token: secret},
		{deliveryTest: deliveryTest{
			name:       "branch deletion",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject, set("after", zeroCommit), set("checkout_sha", nil), set("commits", []any{})),
			wantStatus: http.StatusAccepted,
		}, token: secret},
		{deliveryTest: deliveryTest{
			// The test button of older GitLab versions says "Push Event".
			name:       "push event",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Push Event",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: gitlabAfter, branch: "master", pusher: gitlabUser, push: true},
			},
		}, token: secret},
		{deliveryTest: deliveryTest{
			name:       "other hooks start nothing",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Pipeline Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusAccepted,
		}, token: secret},
		{deliveryTest: deliveryTest{
			name:       "wrong token",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusUnauthorized,
		}, token: "not the secret"},
		{deliveryTest: deliveryTest{
			name:       "token prefix",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusUnauthorized,
		}, token: secret[:5]},
		{deliveryTest: deliveryTest{
			name:       "no token",
			tasks:      []*proto.Task{newTask("app", withRef("master"))},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusUnauthorized,
		}, token: ""},
		{deliveryTest: deliveryTest{
			name:       "task without a secret",
			tasks:      []*proto.Task{newTask("app", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "" })},
			event:      "Push Hook",
			body:       payload(t, "gitlab/push.json", atGitLabProject),
			wantStatus: http.StatusUnauthorized,
		}, token: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, func(e *testEnv, event, id string, body []byte) (int, reply) {
				return e.gitlab(t, event, id, tt.token, body)
			})
		})
	}
}

// gitlabDeliver sends body as GitLab does, with the token and the headers given as name, value pairs.
func (e *testEnv) gitlabDeliver(t *testing.T, event string, body []byte, header ...string) (int, reply) {
	t.Helper()
	header = append([]string{"Content-Type", "application/json", "X-Gitlab-Event", event, "X-Gitlab-Token", secret}, header...)
	return e.post(t, "/v1/webhooks/gitlab", bytes.NewReader(body), header...)
}

// TestGitLabResend: GitLab repeats a delivery's Idempotency-Key on a retry or a "Resend Request", with a new
// X-Gitlab-Event-UUID each time; the key names the delivery, and a resend builds nothing new.
func TestGitLabResend(t *testing.T) {
	const key = "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"
	tests := []struct {
		name  string
		event string
		body  []byte
		task  *proto.Task
	}{
		{name: "push", event: "Push Hook", body: payload(t, "gitlab/push.json", atGitLabProject), task: newTask("app", withRef("master"))},
		{name: "tag push", event: "Tag Push Hook", body: payload(t, "gitlab/tag_push.json", atGitLabProject), task: newTask("app", tagsOnly)},
		{name: "merge request", event: "Merge Request Hook", body: payload(t, "gitlab/merge_request.open.json", atGitLabProject),
			task: newTask("app", withRef("master"), pullRequests)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.task)
			status, rep := e.gitlabDeliver(t, tt.event, tt.body, "Idempotency-Key", key, "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
			if status != http.StatusAccepted || len(rep.Runs) != 1 {
				t.Fatalf("delivery = %d %+v, want 202 with one run", status, rep)
			}
			runs := e.queued(t, rep.Runs)
			if got := runs[rep.Runs[0]].GetGit().GetDeliveryId(); got != key {
				t.Errorf("run's delivery ID = %q, want the Idempotency-Key %q", got, key)
			}
			status, rep = e.gitlabDeliver(t, tt.event, tt.body, "Idempotency-Key", key, "X-Gitlab-Event-UUID", "8b1e2f3a-4c5d-4e6f-9a0b-1c2d3e4f5a6b")
			if status != http.StatusOK || len(rep.Runs) != 0 || !strings.Contains(rep.Ignored, "delivery "+key+" already handled") {
				t.Errorf("resend with the same Idempotency-Key = %d %+v, want 200 ignored as delivery %s already handled", status, rep, key)
			}
			if got := e.requested(t); len(got) != 0 {
				t.Errorf("the resend queued runs %v", got)
			}
		})
	}
}

// TestGitLabRedelivery: without an Idempotency-Key (GitLab before 17.4) the X-Gitlab-Event-UUID names the
// delivery; without either (before 14.8) the body alone tells a repeat.
func TestGitLabRedelivery(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	body := payload(t, "gitlab/push.json", atGitLabProject)
	var ids []string
	for i, d := range []struct {
		uuid     string
		wantRuns int
		want     string // in the answer of a delivery that starts nothing
	}{
		{uuid: "9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e", wantRuns: 1},
		{uuid: "9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e", want: "delivery 9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e already handled"},
		{uuid: "", want: "the push of refs/heads/master to " + gitlabAfter + " already handled"},
	} {
		status, rep := e.gitlab(t, "Push Hook", d.uuid, secret, body)
		if len(rep.Runs) != d.wantRuns || status >= 300 || !strings.Contains(rep.Ignored, d.want) {
			t.Errorf("delivery %d (UUID %q) = %d %+v, want %d runs and %q", i, d.uuid, status, rep, d.wantRuns, d.want)
		}
		ids = append(ids, rep.Runs...)
	}
	e.queued(t, ids)
}

// The merge request the real GitLab payloads name: !1, from feature into master, by sytses.
const gitlabMRHead = "c4c79227ed610f1151f05bbc5be33b4f340d39c8"

func TestGitLabMergeRequest(t *testing.T) {
	tasks := []*proto.Task{
		newTask("pr", withRef("master"), pullRequests),
		newTask("pr-push", withRef("master"), pullRequests, func(t *proto.Task) { t.PushPullRequests = true }),
		newTask("pr-default", withRef(""), pullRequests),
		newTask("commits", withRef("master")),
		newTask("other-base", withRef("develop"), pullRequests),
	}
	const ref = "refs/merge-requests/1/head"
	runs := []wantRun{
		{task: "pr", trigger: proto.Trigger_PULL_REQUEST, ref: ref, commit: gitlabMRHead, branch: "pr-1", pusher: gitlabUser, pr: 1, push: false},
		{task: "pr-push", trigger: proto.Trigger_PULL_REQUEST, ref: ref, commit: gitlabMRHead, branch: "pr-1", pusher: gitlabUser, pr: 1, push: true},
		{task: "pr-default", trigger: proto.Trigger_PULL_REQUEST, ref: ref, commit: gitlabMRHead, branch: "pr-1", pusher: gitlabUser, pr: 1, push: false},
	}
	skipped := []string{"commits", "other-base"}
	tests := []deliveryTest{
		{name: "open", body: payload(t, "gitlab/merge_request.open.json", atGitLabProject), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{name: "reopen", body: payload(t, "gitlab/merge_request.reopen.json", atGitLabProject), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{name: "new commits", body: payload(t, "gitlab/merge_request.update.json", atGitLabProject), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{
			// A label or a title changed: GitLab sends no oldrev.
			name: "update without new commits starts nothing",
			body: payload(t, "gitlab/merge_request.update.json", atGitLabProject, func(m map[string]any) {
				delete(m["object_attributes"].(map[string]any), "oldrev")
			}),
			wantStatus: http.StatusAccepted,
		},
		{name: "close starts nothing", body: payload(t, "gitlab/merge_request.close.json", atGitLabProject), wantStatus: http.StatusAccepted},
		{name: "approved starts nothing", body: payload(t, "gitlab/merge_request.open.json", atGitLabProject, set("object_attributes.action", "approved")), wantStatus: http.StatusAccepted},
		{
			name:       "no head commit",
			body:       payload(t, "gitlab/merge_request.open.json", atGitLabProject, set("object_attributes.last_commit", nil)),
			wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tasks, tt.event = tasks, "Merge Request Hook"
			tt.run(t, func(e *testEnv, event, id string, body []byte) (int, reply) {
				return e.gitlab(t, event, id, secret, body)
			})
		})
	}
}

// TestGitLabMergeRequestOnce: a merge request opened builds once for a task with the pull request trigger,
// whatever the number of deliveries of it, and nothing for a task without the trigger.
func TestGitLabMergeRequestOnce(t *testing.T) {
	tests := []struct {
		name     string
		task     *proto.Task
		wantRuns int
	}{
		{name: "pull request trigger", task: newTask("app", withRef("master"), pullRequests), wantRuns: 1},
		{name: "commit trigger only", task: newTask("app", withRef("master")), wantRuns: 0},
	}
	body := payload(t, "gitlab/merge_request.open.json", atGitLabProject)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.task)
			var ids []string
			for _, uuid := range []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "83e4273f-dd89-11e3-92bc-5d0478ed1a69", ""} {
				status, rep := e.gitlab(t, "Merge Request Hook", uuid, secret, body)
				if status >= 300 {
					t.Fatalf("delivery %q = %d %+v, want a 2xx", uuid, status, rep)
				}
				ids = append(ids, rep.Runs...)
			}
			if len(ids) != tt.wantRuns {
				t.Errorf("three deliveries of one merge request opened started runs %v, want %d", ids, tt.wantRuns)
			}
			e.queued(t, ids)
		})
	}
}
