package webhook_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// wantRun is a run a delivery should start.
type wantRun struct {
	task    string
	trigger proto.Trigger
	ref     string
	commit  string
	branch  string // {{.Run.Branch}}
	pusher  string
	pr      int64
	push    bool
}

// deliveryTest is one delivery to a fresh Kiln with tasks, and what it should do.
type deliveryTest struct {
	name        string
	tasks       []*proto.Task
	event       string
	body        []byte
	wantStatus  int
	wantRuns    []wantRun
	wantSkipped []string // the proven tasks that start no run
}

// run delivers tt and checks the answer, the runs in the store and their events on the stream.
func (tt deliveryTest) run(t *testing.T, deliver func(e *testEnv, event, id string, body []byte) (int, reply)) {
	t.Helper()
	e := newEnv(t, webhook.Config{}, tt.tasks...)
	const deliveryID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	status, rep := deliver(e, tt.event, deliveryID, tt.body)
	if status != tt.wantStatus {
		t.Fatalf("delivery answered %d %+v, want %d", status, rep, tt.wantStatus)
	}
	if len(rep.Runs) == 0 && rep.Ignored == "" && rep.Message == "" && rep.Error == nil {
		t.Errorf("answer %+v starts no run and says nothing of why", rep)
	}
	if got := slices.Sorted(maps.Keys(rep.Skipped)); !slices.Equal(got, tt.wantSkipped) {
		t.Errorf("skipped tasks = %v (%v), want %v", got, rep.Skipped, tt.wantSkipped)
	}
	runs := e.queued(t, rep.Runs)
	if len(runs) != len(tt.wantRuns) {
		t.Fatalf("delivery started runs %v, want %d", rep.Runs, len(tt.wantRuns))
	}
	byTask := make(map[string]*proto.Run)
	for _, r := range runs {
		byTask[r.GetTaskName()] = r
	}
	for _, w := range tt.wantRuns {
		r := byTask[w.task]
		if r == nil {
			t.Errorf("no run of task %s among %v", w.task, rep.Runs)
			continue
		}
		task := taskNamed(t, tt.tasks, w.task)
		checkRun(t, r, task, w, deliveryID)
	}
}

// taskNamed returns the task of tasks named name.
func taskNamed(t *testing.T, tasks []*proto.Task, name string) *proto.Task {
	t.Helper()
	for _, task := range tasks {
		if task.GetName() == name {
			return task
		}
	}
	t.Fatalf("no task %s in the test", name)
	return nil
}

// checkRun checks every field a webhook sets on run r of task.
func checkRun(t *testing.T, r *proto.Run, task *proto.Task, w wantRun, deliveryID string) {
	t.Helper()
	by := map[proto.Trigger]string{proto.Trigger_COMMIT: "commit", proto.Trigger_TAG: "tag", proto.Trigger_PULL_REQUEST: "pull_request"}[w.trigger]
	want := &proto.Run{
		Id:       r.GetId(),
		Status:   proto.Status_QUEUED,
		Trigger:  w.trigger,
		TaskName: task.GetName(),
		QueuedAt: r.GetQueuedAt(),
		Git: &proto.GitTrigger{Repository: task.GetSource().GetUrl(), Ref: w.ref, Commit: w.commit, DeliveryId: deliveryID,
			Pusher: w.pusher, PullRequest: w.pr},
		Spec: &proto.BuildSpec{
			Git:        &proto.GitContext{Url: task.GetSource().GetUrl(), Ref: w.ref, Commit: w.commit, Subdir: task.GetSource().GetSubdir()},
			Dockerfile: task.GetDockerfile(),
			Tags: []string{
				fmt.Sprintf("%s/team/%s:%s-%s", registry, task.GetName(), w.branch, w.commit),
				fmt.Sprintf("%s/team/%s:%s-%s", registry, task.GetName(), by, r.GetId()),
			},
			BuildArgs:      task.GetBuildArgs(),
			Target:         task.GetTarget(),
			Platform:       task.GetPlatform(),
			Push:           w.push,
			TimeoutSeconds: 3600,
			TaskName:       task.GetName(),
		},
	}
	if !gproto.Equal(r, want) {
		t.Errorf("run of task %s =\n%v\nwant\n%v", task.GetName(), r, want)
	}
	if r.GetQueuedAt() == nil {
		t.Errorf("run %s has no QueuedAt", r.GetId())
	}
}

// The commits and people the real payloads name.
const (
	branchAfter   = "199eddf46df50de8d02e99bf1c5fdb4101338224" // github/push.branch.json
	tagAfter      = "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd" // github/push.tag.json
	createdAfter  = "6113728f27ae82c7b1a177c8d03f9e96e0adf246" // github/push.branch-create.json
	prHead        = "ec26c3e57ca3a959ca5aad62de7213c562f8c821" // github/pull_request.*.json
	giteaAfter    = "ef98532add3b2feb7a137426bba1248724367df5" // gitea/push.json
	zeroCommit    = "0000000000000000000000000000000000000000"
	codertocat    = "Codertocat"
	bradrydzewski = "bradrydzewski"
)

func withRef(ref string) func(*proto.Task) { return func(t *proto.Task) { t.Source.Ref = ref } }

func withFilters(f ...string) func(*proto.Task) { return func(t *proto.Task) { t.PathFilters = f } }

func tagsOnly(t *proto.Task) { t.CommitTrigger, t.TagTrigger = false, true }

func pullRequests(t *proto.Task) { t.CommitTrigger, t.PullRequestTrigger = false, true }

func TestGitHubPush(t *testing.T) {
	tests := []deliveryTest{
		{
			name: "branch push builds the pushed commit for each task on the branch",
			tasks: []*proto.Task{
				newTask("default-branch", withRef("")), // the repository's default branch, master
				newTask("full-ref", withRef("refs/heads/master")),
				newTask("develop", withRef("develop")),
				newTask("tags", withRef("master"), tagsOnly),
				newTask("no-secret", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "" }),
				newTask("stranger", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "another secret" }),
				newTask("elsewhere", withRef("master"), func(t *proto.Task) { t.Source.Url = "https://git.kiln.test/team/other.git" }),
			},
			event: "push", body: payload(t, "github/push.branch.json", atRepo),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "default-branch", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: branchAfter, branch: "master", pusher: codertocat, push: true},
				{task: "full-ref", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: branchAfter, branch: "master", pusher: codertocat, push: true},
			},
			wantSkipped: []string{"develop", "tags"},
		},
		{
			name:       "tag push builds for tasks with the tag trigger",
			tasks:      []*proto.Task{newTask("release", tagsOnly), newTask("commits", withRef("master"))},
			event:      "push",
			body:       payload(t, "github/push.tag.json", atRepo),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "release", trigger: proto.Trigger_TAG, ref: "refs/tags/v0.0.1", commit: tagAfter, branch: "v0.0.1", pusher: bradrydzewski, push: true},
			},
			wantSkipped: []string{"commits"},
		},
		{
			name:       "new branch builds",
			tasks:      []*proto.Task{newTask("app", withRef(""))},
			event:      "push",
			body:       payload(t, "github/push.branch-create.json", atRepo),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: createdAfter, branch: "master", pusher: codertocat, push: true},
			},
		},
		{
			// A branch made from commits already pushed lists none: the files it changed are unknown.
			name:       "new branch listing no commits builds whatever its path filters",
			tasks:      []*proto.Task{newTask("app", withRef("master"), withFilters("nothing/**"))},
			event:      "push",
			body:       payload(t, "github/push.branch-create.json", atRepo, set("commits", []any{})),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/master", commit: createdAfter, branch: "master", pusher: codertocat, push: true},
			},
		},
		{
			name:       "branch deletion builds nothing",
			tasks:      []*proto.Task{newTask("feature", withRef("feature-branch"))},
			event:      "push",
			body:       payload(t, "github/push.delete.json", atRepo),
			wantStatus: http.StatusAccepted,
		},
		{
			name:       "gitea push",
			tasks:      []*proto.Task{newTask("app", withFilters("app/**")), newTask("default-branch", withRef(""))},
			event:      "push",
			body:       payload(t, "gitea/push.json", atRepo),
			wantStatus: http.StatusAccepted,
			wantRuns: []wantRun{
				{task: "app", trigger: proto.Trigger_COMMIT, ref: "refs/heads/main", commit: giteaAfter, branch: "main", pusher: "gordon", push: true},
			},
			// Gitea's body here does not name the default branch.
			wantSkipped: []string{"default-branch"},
		},
		{
			// Gitea sends no "deleted": the zero commit says it.
			name:       "gitea branch deletion builds nothing",
			tasks:      []*proto.Task{newTask("app")},
			event:      "push",
			body:       payload(t, "gitea/push.json", atRepo, set("after", zeroCommit)),
			wantStatus: http.StatusAccepted,
		},
		{
			name:       "ping",
			tasks:      []*proto.Task{newTask("app")},
			event:      "ping",
			body:       payload(t, "github/ping.json", atRepo),
			wantStatus: http.StatusOK,
		},
		{
			// The hook works, though no task builds the repository yet (the payload as it is names another).
			name:       "ping about a repository no task builds",
			tasks:      []*proto.Task{newTask("app")},
			event:      "ping",
			body:       payload(t, "github/ping.json"),
			wantStatus: http.StatusOK,
		},
		{
			name:       "ping from an organization's hook",
			tasks:      []*proto.Task{newTask("app")},
			event:      "ping",
			body:       payload(t, "github/ping.json", func(m map[string]any) { delete(m, "repository") }),
			wantStatus: http.StatusOK,
		},
		{
			name:       "other events start nothing",
			tasks:      []*proto.Task{newTask("app")},
			event:      "create",
			body:       payload(t, "github/push.tag.json", atRepo),
			wantStatus: http.StatusAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, func(e *testEnv, event, id string, body []byte) (int, reply) {
				return e.github(t, event, id, secret, body)
			})
		})
	}
}

func TestGitHubPullRequest(t *testing.T) {
	tasks := []*proto.Task{
		newTask("pr", withRef("master"), pullRequests),
		newTask("pr-push", withRef("master"), pullRequests, func(t *proto.Task) { t.PushPullRequests = true }),
		newTask("pr-no-push", withRef(""), pullRequests, func(t *proto.Task) { t.Push, t.PushPullRequests = false, true }),
		newTask("commits", withRef("master")),
		newTask("other-base", withRef("develop"), pullRequests),
	}
	runs := []wantRun{
		{task: "pr", trigger: proto.Trigger_PULL_REQUEST, ref: "refs/pull/2/head", commit: prHead, branch: "pr-2", pusher: codertocat, pr: 2, push: false},
		{task: "pr-push", trigger: proto.Trigger_PULL_REQUEST, ref: "refs/pull/2/head", commit: prHead, branch: "pr-2", pusher: codertocat, pr: 2, push: true},
		{task: "pr-no-push", trigger: proto.Trigger_PULL_REQUEST, ref: "refs/pull/2/head", commit: prHead, branch: "pr-2", pusher: codertocat, pr: 2, push: false},
	}
	skipped := []string{"commits", "other-base"}
	tests := []deliveryTest{
		{name: "opened", body: payload(t, "github/pull_request.opened.json", atRepo), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{name: "synchronize", body: payload(t, "github/pull_request.synchronize.json", atRepo), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{name: "reopened", body: payload(t, "github/pull_request.opened.json", atRepo, set("action", "reopened")), wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped},
		{
			// Gitea and Forgejo send GitHub's headers with their own words: "synchronized", and no "before" or
			// "after" at the top.
			name: "gitea synchronized",
			body: payload(t, "github/pull_request.synchronize.json", atRepo, set("action", "synchronized"),
				func(m map[string]any) { delete(m, "before"); delete(m, "after"); delete(m, "installation") }),
			wantStatus: http.StatusAccepted, wantRuns: runs, wantSkipped: skipped,
		},
		{name: "closed starts nothing", body: payload(t, "github/pull_request.opened.json", atRepo, set("action", "closed")), wantStatus: http.StatusAccepted},
		{name: "labeled starts nothing", body: payload(t, "github/pull_request.opened.json", atRepo, set("action", "labeled")), wantStatus: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tasks, tt.event = tasks, "pull_request"
			tt.run(t, func(e *testEnv, event, id string, body []byte) (int, reply) {
				return e.github(t, event, id, secret, body)
			})
		})
	}
}
