package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// submitURL submits request as a plain JSON body, or when multipart is set as the one part of a multipart
// body, and returns the status and the body of the answer.
func (e *testEnv) submitURL(t *testing.T, request string, multipart bool) (int, []byte) {
	t.Helper()
	if multipart {
		return e.submit(t, formPart{"request", []byte(request)})
	}
	return e.request(t, http.MethodPost, "/v1/runs", strings.NewReader(request), "Content-Type", "application/json; charset=utf-8")
}

func TestSubmitContextURL(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	repo := g.PublishRefs(t, "acme/app.git", "main")
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	// A git context gives the tag templates its commit and branch; a tarball has neither.
	const gitTags = `["app:{{.Run.Commit}}","app:b-{{.Run.Branch}}"]`
	tests := []struct {
		name      string
		context   string
		multipart bool
		templates string   // the tags asked for
		tags      []string // the tags rendered; {id} stands for the run's ID
		spec      *proto.BuildSpec
		shown     string // the request's context in the answer
	}{
		{
			name: "git branch and subdir", context: repo.URL + "#dev:docker", multipart: true, templates: gitTags,
			tags:  []string{"registry.local/app:" + repo.Dev, "registry.local/app:b-dev"},
			spec:  &proto.BuildSpec{Git: &proto.GitContext{Url: repo.URL, Ref: "refs/heads/dev", Commit: repo.Dev, Subdir: "docker"}},
			shown: repo.URL + "#refs/heads/dev:docker",
		},
		{
			name: "git default branch", context: repo.URL, templates: gitTags,
			tags:  []string{"registry.local/app:" + repo.Main, "registry.local/app:b-main"},
			spec:  &proto.BuildSpec{Git: &proto.GitContext{Url: repo.URL, Ref: "refs/heads/main", Commit: repo.Main}},
			shown: repo.URL + "#refs/heads/main",
		},
		{
			name: "git tag", context: repo.URL + "#v1", templates: gitTags,
			tags:  []string{"registry.local/app:" + repo.Release, "registry.local/app:b-v1"},
			spec:  &proto.BuildSpec{Git: &proto.GitContext{Url: repo.URL, Ref: "refs/tags/v1", Commit: repo.Release}},
			shown: repo.URL + "#refs/tags/v1",
		},
		{
			name: "tarball", context: "https://files.example/ctx.tar.gz?sig=abc",
			templates: `["app:{{.Run.ID}}"]`, tags: []string{"registry.local/app:{id}"},
			spec:  &proto.BuildSpec{ContextUrl: "https://files.example/ctx.tar.gz?sig=abc"},
			shown: "https://files.example/ctx.tar.gz?sig=abc",
		},
		{
			name: "tarball in multipart", context: "http://files.example/ctx.tar", multipart: true,
			templates: `["app:{{.Run.ID}}-{{.Run.Commit}}{{.Run.Branch}}"]`, tags: []string{"registry.local/app:{id}-"},
			spec:  &proto.BuildSpec{ContextUrl: "http://files.example/ctx.tar"},
			shown: "http://files.example/ctx.tar",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.submitURL(t, `{"context":"`+tt.context+`","tags":`+tt.templates+`}`, tt.multipart)
			if status != http.StatusAccepted {
				t.Fatalf("POST /v1/runs with context %s = %d %s, want 202", tt.context, status, body)
			}
			var run Run
			if err := json.Unmarshal(body, &run); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			var tags []string
			for _, tag := range tt.tags {
				tags = append(tags, strings.ReplaceAll(tag, "{id}", run.ID))
			}
			rec, err := e.st.Run(t.Context(), run.ID)
			if err != nil {
				t.Fatalf("store.Run(%s): %v", run.ID, err)
			}
			want := gproto.Clone(tt.spec).(*proto.BuildSpec)
			want.Dockerfile, want.Tags, want.Push, want.TimeoutSeconds = "Dockerfile", tags, true, 3600
			if !gproto.Equal(rec.GetSpec(), want) {
				t.Errorf("stored spec = %v, want %v", rec.GetSpec(), want)
			}
			if rec.GetGit() != nil || rec.GetTaskName() != "" || rec.GetTrigger() != proto.Trigger_MANUAL {
				t.Errorf("stored run = %v, want a manual run of no task and no git event", rec)
			}
			if _, err := e.st.OpenContext(t.Context(), run.ID); proto.ErrorCode(err) != proto.NotFound {
				t.Errorf("store.OpenContext(%s) error = %v, want no context object", run.ID, err)
			}
			if run.Request.Context != tt.shown {
				t.Errorf("answer's request.context = %q, want %q", run.Request.Context, tt.shown)
			}
			if id := e.lastRunRequested(t); id != run.ID {
				t.Errorf("last RunRequested is for run %s, want %s", id, run.ID)
			}
		})
	}
}

func TestSubmitContextURLRefused(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	repo := g.PublishRefs(t, "acme/app.git", "main")
	priv := g.PublishRefs(t, "private/app.git", "main")
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	good := simpleContext(t)
	tests := []struct {
		name string
		send func(t *testing.T) (int, []byte)
		code proto.Code
		want string // in the message
	}{
		{"URL and context part", func(t *testing.T) (int, []byte) {
			return e.submit(t, formPart{"request", []byte(`{"context":"` + repo.URL + `"}`)}, formPart{"context", good})
		}, proto.Invalid, `both a context URL and a "context" part`},
		{"JSON without a URL", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"tags":["app:1"]}`, false)
		}, proto.Invalid, `needs "context"`},
		{"unknown branch", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"`+repo.URL+`#nope"}`, false)
		}, proto.Invalid, `no branch or tag "nope"`},
		{"private repository", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"`+priv.URL+`"}`, false)
		}, proto.Invalid, "authentication required"},
		{"credentials in a git URL", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"https://u:p@github.com/acme/app.git"}`, false)
		}, proto.Invalid, "credentials in the URL are refused"},
		{"credentials in a tarball URL", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"https://u:p@files.example/ctx.tar.gz"}`, false)
		}, proto.Invalid, "credentials in the URL are refused"},
		{"tarball not http", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"ftp://files.example/ctx.tar.gz"}`, true)
		}, proto.Invalid, "only http and https"},
		{"git server down", func(t *testing.T) (int, []byte) {
			return e.submitURL(t, `{"context":"http://127.0.0.1:1/acme/app.git"}`, false)
		}, proto.Unavailable, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.send(t)
			if got := errorOf(t, body); status != statusOf(tt.code) || got.Code != tt.code || !strings.Contains(got.Message, tt.want) {
				t.Errorf("POST /v1/runs = %d %s, want %d naming %s", status, body, statusOf(tt.code), tt.want)
			}
		})
	}
	if n := e.streamMsgs(t); n != 0 {
		t.Errorf("the runs stream holds %d events after refused submissions, want 0", n)
	}
}
