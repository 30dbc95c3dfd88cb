package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// lastRunRequested returns the run ID of the newest RunRequested on the runs stream.
func (e *testEnv) lastRunRequested(t *testing.T) string {
	t.Helper()
	s, err := e.js.Stream(t.Context(), proto.StreamRuns)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamRuns, err)
	}
	msg, err := s.GetLastMsgForSubject(t.Context(), proto.SubjectRunRequested)
	if err != nil {
		t.Fatalf("GetLastMsgForSubject(%s): %v", proto.SubjectRunRequested, err)
	}
	var ev proto.RunRequested
	if err := gproto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatalf("decoding the RunRequested: %v", err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) != ev.GetRunId() {
		t.Errorf("RunRequested{%s} has Nats-Msg-Id %q, want the run ID", ev.GetRunId(), msg.Header.Get(jetstream.MsgIDHeader))
	}
	return ev.GetRunId()
}

func TestRunTask(t *testing.T) {
	const token = "ghp_taskToken"
	g := gittest.NewServer(t, token)
	pub := g.PublishRefs(t, "acme/app.git", "main")
	priv := g.PublishRefs(t, "private/app.git", "main")
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})

	tests := []struct {
		name, task   string // the task's JSON
		ref, commit  string // what the branch resolves to
		branch, repo string
		subdir       string
	}{
		{
			name: "branch and subdir",
			task: `{"name":"dev","context":"` + pub.URL + `#dev:docker/app","dockerfile":"ci/Dockerfile",
				"tags":["app:{{.Run.Commit}}","{{.Run.TaskName}}:{{.Run.Branch}}-{{.Run.ID}}-{{.Run.TriggeredBy}}"],
				"buildArgs":{"A":"1"},"target":"final","platform":"linux/arm64","timeout":120,"push":false}`,
			ref: "refs/heads/dev", commit: pub.Dev, branch: "dev", repo: pub.URL, subdir: "docker/app",
		},
		{
			name: "default branch",
			task: `{"name":"default","context":"` + pub.URL + `","tags":["app:{{.Run.Commit}}","{{.Run.TaskName}}:{{.Run.Branch}}-{{.Run.ID}}-{{.Run.TriggeredBy}}"]}`,
			ref:  "refs/heads/main", commit: pub.Main, branch: "main", repo: pub.URL,
		},
		{
			name: "private repository with the task's token",
			task: `{"name":"private","context":"` + priv.URL + `#main","gitToken":"` + token + `",
				"tags":["app:{{.Run.Commit}}","{{.Run.TaskName}}:{{.Run.Branch}}-{{.Run.ID}}-{{.Run.TriggeredBy}}"]}`,
			ref: "refs/heads/main", commit: priv.Main, branch: "main", repo: priv.URL,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := e.createTaskOK(t, tt.task)
			stored, _ := e.st.Task(t.Context(), task.Name)
			status, body := e.request(t, "POST", "/v1/tasks/"+task.Name+"/runs", nil)
			if status != http.StatusAccepted {
				t.Fatalf("POST /v1/tasks/%s/runs = %d %s, want 202", task.Name, status, body)
			}
			var run Run
			if err := json.Unmarshal(body, &run); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			rec, err := e.st.Run(t.Context(), run.ID)
			if err != nil {
				t.Fatalf("store.Run(%s): %v", run.ID, err)
			}
			want := &proto.Run{
				Id: run.ID, Status: proto.Status_QUEUED, Trigger: proto.Trigger_MANUAL, QueuedAt: rec.QueuedAt,
				TaskName: task.Name,
				Git:      &proto.GitTrigger{Repository: tt.repo, Ref: tt.ref, Commit: tt.commit},
				Spec: &proto.BuildSpec{
					Git:        &proto.GitContext{Url: tt.repo, Ref: tt.ref, Commit: tt.commit, Subdir: tt.subdir},
					Dockerfile: stored.Dockerfile,
					Tags: []string{"registry.local/app:" + tt.commit,
						"registry.local/" + task.Name + ":" + tt.branch + "-" + run.ID + "-manual"},
					BuildArgs: stored.BuildArgs, Target: stored.Target, Platform: stored.Platform,
					Push: stored.Push, TimeoutSeconds: stored.TimeoutSeconds, TaskName: task.Name,
				},
			}
			if !gproto.Equal(rec, want) {
				t.Errorf("stored run = %v, want %v", rec, want)
			}
			if !rec.GetQueuedAt().AsTime().Equal(testNow) {
				t.Errorf("stored run queued at %v, want %v", rec.GetQueuedAt().AsTime(), testNow)
			}
			if id := e.lastRunRequested(t); id != run.ID {
				t.Errorf("last RunRequested is for run %s, want %s", id, run.ID)
			}
			if run.TaskName != task.Name || run.Git == nil || run.Git.Commit != tt.commit || run.Git.Ref != tt.ref ||
				run.Request.Context != tt.repo+"#"+tt.ref+strings.TrimSuffix(":"+tt.subdir, ":") {
				t.Errorf("POST /v1/tasks/%s/runs = %+v (git %+v), want the task, the commit and the context", task.Name, run, run.Git)
			}
		})
	}
}

func TestRunTaskRefused(t *testing.T) {
	const token = "ghp_taskToken"
	g := gittest.NewServer(t, token)
	pub := g.PublishRefs(t, "acme/app.git", "main")
	priv := g.PublishRefs(t, "private/app.git", "main")
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	tests := []struct {
		name, task string
		status     int
		want       string
	}{
		{"unknown branch", `{"name":"nobranch","context":"` + pub.URL + `#nope"}`, 400, `no branch or tag "nope"`},
		{"private without token", `{"name":"notoken","context":"` + priv.URL + `"}`, 400, "authentication required"},
		{"wrong token", `{"name":"wrongtoken","context":"` + priv.URL + `","gitToken":"ghp_wrongToken"}`, 400, "authentication required"},
		{"no repository", `{"name":"norepo","context":"` + g.URL + `/acme/gone.git"}`, 400, "repository not found"},
		{"branch not a tag", `{"name":"badtag","context":"` + pub.URL + `#feature/x","tags":["app:{{.Run.Branch}}"]}`, 400, `tag "app:{{.Run.Branch}}" is not a valid image reference`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := e.createTaskOK(t, tt.task)
			status, body := e.request(t, "POST", "/v1/tasks/"+task.Name+"/runs", nil)
			msg := errorOf(t, body).Message
			if status != tt.status || !strings.Contains(msg, tt.want) || !strings.Contains(msg, task.Name) {
				t.Errorf("POST /v1/tasks/%s/runs = %d %s, want %d naming the task and %s", task.Name, status, body, tt.status, tt.want)
			}
			if strings.Contains(string(body), "ghp_") {
				t.Errorf("POST /v1/tasks/%s/runs answer %s shows a token", task.Name, body)
			}
		})
	}
	if n := e.streamMsgs(t); n != 0 {
		t.Errorf("the runs stream holds %d events after refused runs, want 0", n)
	}
}
