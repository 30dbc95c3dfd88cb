package api

import (
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

func TestClientTasks(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	repo := g.PublishRefs(t, "acme/app.git", "main")
	hooks := &hookRecorder{}
	e := newEnv(t, Config{DefaultRegistry: "registry.local", Token: "kiln-token", Hooks: hooks})
	c := NewClient(e.url, "kiln-token")
	ctx := t.Context()

	no := false
	created, err := c.CreateTask(ctx, Task{Name: "app", Context: repo.URL + "#dev", Tags: []string{"app:{{.Run.Commit}}"},
		PullRequestTrigger: &no, GitToken: "tok"})
	if err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	if created.Name != "app" || created.Dockerfile != "Dockerfile" || !created.HasGitToken || created.GitToken != "" ||
		created.GitHubHookID != 101 || created.CreatedAt == nil {
		t.Errorf("CreateTask = %+v, want the saved task with defaults, its hook and no secret", created)
	}
	if _, err := c.CreateTask(ctx, Task{Name: "app", Context: repo.URL}); proto.ErrorCode(err) != proto.Conflict {
		t.Errorf("CreateTask of a name taken: error = %v, want %q", err, proto.Conflict)
	}

	target := "final"
	tags := []string{}
	updated, err := c.UpdateTask(ctx, "app", TaskPatch{Target: &target, Tags: &tags})
	if err != nil || updated.Target != "final" || len(updated.Tags) != 0 || updated.Context != repo.URL+"#dev" {
		t.Errorf("UpdateTask(target, no tags) = %+v, %v; want those changed and the context kept", updated, err)
	}
	got, err := c.Task(ctx, "app")
	if err != nil || got.Target != "final" {
		t.Errorf("Task(app) = %+v, %v; want the updated task", got, err)
	}
	list, err := c.ListTasks(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "app" {
		t.Errorf("ListTasks = %v, %v; want [app]", list, err)
	}

	run, err := c.RunTask(ctx, "app")
	if err != nil {
		t.Fatalf("RunTask(app): %v", err)
	}
	if run.Status != "Queued" || run.TaskName != "app" || run.Git == nil || run.Git.Commit != repo.Dev {
		t.Errorf("RunTask(app) = %+v, want a queued run of app at %s", run, repo.Dev)
	}
	if _, err := c.RunTask(ctx, "nope"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("RunTask(nope) error = %v, want %q", err, proto.NotFound)
	}

	if err := c.DeleteTask(ctx, "app"); err != nil {
		t.Fatalf("DeleteTask(app): %v", err)
	}
	if _, err := c.Task(ctx, "app"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("Task(app) after delete: error = %v, want %q", err, proto.NotFound)
	}
	if err := c.DeleteTask(ctx, "app"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("DeleteTask(app) again: error = %v, want %q", err, proto.NotFound)
	}
	if calls := hooks.take(); len(calls) != 2 || calls[0].op != "register" || calls[1].op != "unregister" || calls[1].hookID != 101 {
		t.Errorf("hook calls = %+v, want register, then unregister of hook 101", calls)
	}
}

func TestClientSubmitContextURL(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	repo := g.PublishRefs(t, "acme/app.git", "main")
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	c := NewClient(e.url, "")
	ctx := t.Context()

	run, err := c.SubmitRun(ctx, BuildRequest{Context: repo.URL + "#main:sub", Tags: []string{"app:{{.Run.Commit}}"}}, nil)
	if err != nil {
		t.Fatalf("SubmitRun(git URL): %v", err)
	}
	if want := []string{"registry.local/app:" + repo.Main}; !slices.Equal(run.Request.Tags, want) ||
		run.Request.Context != repo.URL+"#refs/heads/main:sub" {
		t.Errorf("SubmitRun(git URL) = %+v, want tags %q and the context resolved", run.Request, want)
	}
	run, err = c.SubmitRun(ctx, BuildRequest{Context: "https://files.example/ctx.tar.gz"}, nil)
	if err != nil || run.Request.Context != "https://files.example/ctx.tar.gz" {
		t.Errorf("SubmitRun(tarball URL) = %+v, %v; want the URL as the context", run, err)
	}

	tests := []struct {
		name string
		req  BuildRequest
		body bool
		want string
	}{
		{"both", BuildRequest{Context: repo.URL}, true, "not both"},
		{"neither", BuildRequest{}, false, "needs a context URL or a context archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body *strings.Reader
			if tt.body {
				body = strings.NewReader("archive")
			}
			var err error
			if body != nil {
				_, err = c.SubmitRun(ctx, tt.req, body)
			} else {
				_, err = c.SubmitRun(ctx, tt.req, nil)
			}
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SubmitRun(%+v) error = %v, want invalid saying %s", tt.req, err, tt.want)
			}
		})
	}
}
