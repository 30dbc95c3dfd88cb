package webhook_test

import (
	"net/http"
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
			name:       "merge request hook",
			tasks:      []*proto.Task{newTask("app", withRef("master"), pullRequests)},
			event:      "Merge Request Hook",
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

func TestGitLabRedelivery(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	body := payload(t, "gitlab/push.json", atGitLabProject)
	var ids []string
	for i, d := range []struct {
		uuid     string
		wantRuns int
	}{
		{uuid: "9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e", wantRuns: 1},
		{uuid: "9cbd9d2e-0c6f-4d8b-9a4a-1f2a3b4c5d6e", wantRuns: 0}, // the same delivery again
		{uuid: "", wantRuns: 1}, // older GitLab names no delivery: nothing to tell a redelivery by
		{uuid: "", wantRuns: 1},
	} {
		status, rep := e.gitlab(t, "Push Hook", d.uuid, secret, body)
		if len(rep.Runs) != d.wantRuns || status >= 300 {
			t.Errorf("delivery %d (UUID %q) = %d %+v, want %d runs", i, d.uuid, status, rep, d.wantRuns)
		}
		ids = append(ids, rep.Runs...)
	}
	e.queued(t, ids)
}
