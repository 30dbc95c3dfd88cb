package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// hookCall is one call a hookRecorder saw, with the parts of the task it was given that matter.
type hookCall struct {
	op, task, url, token, secret string
	hookID                       int64
}

// hookRecorder is a HookRegistrar that remembers its calls and hands out hook IDs 101, 102, ... It refuses a
// call while its err for that operation is set, and registers nothing for a repository under "gitlab".
type hookRecorder struct {
	mu           sync.Mutex
	calls        []hookCall
	next         int64
	registerErr  error
	unregisterEr error
}

func (h *hookRecorder) record(op string, t *proto.Task) {
	h.calls = append(h.calls, hookCall{op: op, task: t.GetName(), url: t.GetSource().GetUrl(),
		token: t.GetGitToken(), secret: t.GetWebhookSecret(), hookID: t.GetGithubHookId()})
}

func (h *hookRecorder) Register(ctx context.Context, t *proto.Task) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("register", t)
	if h.registerErr != nil {
		return 0, h.registerErr
	}
	if strings.Contains(t.GetSource().GetUrl(), "gitlab") {
		return 0, nil
	}
	h.next++
	return 100 + h.next, nil
}

func (h *hookRecorder) Unregister(ctx context.Context, t *proto.Task) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("unregister", t)
	return h.unregisterEr
}

// take returns the calls seen since the last take.
func (h *hookRecorder) take() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	calls := h.calls
	h.calls = nil
	return calls
}

func (h *hookRecorder) fail(register, unregister error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.registerErr, h.unregisterEr = register, unregister
}

// taskCall sends a request to a task route and decodes a 2xx answer into out (when not nil); it returns the
// status and the raw body.
func (e *testEnv) taskCall(t *testing.T, method, path, body string, out any) (int, string) {
	t.Helper()
	var status int
	var data []byte
	if body == "" {
		status, data = e.request(t, method, path, nil)
	} else {
		status, data = e.request(t, method, path, strings.NewReader(body), "Content-Type", "application/json")
	}
	if out != nil && status/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return status, string(data)
}

// createTaskOK creates a task from body and returns the 201 answer.
func (e *testEnv) createTaskOK(t *testing.T, body string) *Task {
	t.Helper()
	var task Task
	if status, data := e.taskCall(t, "POST", "/v1/tasks", body, &task); status != http.StatusCreated {
		t.Fatalf("POST /v1/tasks %s = %d %s, want 201", body, status, data)
	}
	return &task
}

func TestCreateTaskDefaults(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	got := e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git"}`)
	yes, no := true, false
	want := &Task{
		Name: "app", Context: "https://github.com/acme/app.git", Dockerfile: "Dockerfile", Timeout: 3600,
		Push: &yes, CommitTrigger: &yes, PullRequestTrigger: &no, TagTrigger: &no, LatestOnly: &yes, PushPullRequests: &no,
		BaseImageTrigger: &yes, BaseImageTriggerType: "runtime",
		Bases:            []TaskBase{{Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "0"}},
		HasWebhookSecret: true, CreatedAt: &testNow, UpdatedAt: &testNow,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("POST /v1/tasks = %+v, want %+v", got, want)
	}
	stored, err := e.st.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("store.Task(app): %v", err)
	}
	if len(stored.WebhookSecret) < 20 || stored.GitToken != "" || stored.Source.GetRef() != "" {
		t.Errorf("stored task = %v, want a random webhook secret, no token, the default branch", stored)
	}
	other := e.createTaskOK(t, `{"name":"other","context":"https://github.com/acme/other.git"}`)
	if o, _ := e.st.Task(t.Context(), other.Name); o.GetWebhookSecret() == stored.WebhookSecret {
		t.Errorf("two tasks got the same webhook secret %q", o.GetWebhookSecret())
	}
}

func TestCreateTaskAllFields(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	got := e.createTaskOK(t, `{
		"name": "web-1", "context": "https://git.example/acme/web.git#release:docker/web",
		"dockerfile": "build/Dockerfile", "tags": ["web:{{.Run.Commit}}", "web:{{.Run.Branch}}"],
		"buildArgs": {"GO": "1.26"}, "target": "final", "platform": "linux/arm64", "timeout": 600,
		"push": false, "commitTrigger": false, "pullRequestTrigger": true, "tagTrigger": true,
		"pathFilters": ["src/**", "Dockerfile"], "latestOnly": false, "pushPullRequests": true,
		"gitToken": "ghp_t0ken", "webhookSecret": "hooks3cret", "baseImageTrigger": false, "baseImageTriggerType": "all",
		"bases": [{"reference": "ignored:1"}], "basesError": "ignored"
	}`)
	stored, err := e.st.Task(t.Context(), "web-1")
	if err != nil {
		t.Fatalf("store.Task(web-1): %v", err)
	}
	want := &proto.Task{
		Name:       "web-1",
		Source:     &proto.GitContext{Url: "https://git.example/acme/web.git", Ref: "release", Subdir: "docker/web"},
		Dockerfile: "build/Dockerfile", Tags: []string{"web:{{.Run.Commit}}", "web:{{.Run.Branch}}"},
		BuildArgs: map[string]string{"GO": "1.26"}, Target: "final", Platform: "linux/arm64", TimeoutSeconds: 600,
		PullRequestTrigger: true, TagTrigger: true, PathFilters: []string{"src/**", "Dockerfile"},
		PushPullRequests: true, GitToken: "ghp_t0ken", WebhookSecret: "hooks3cret", BaseImageTriggerOff: true, BaseImageTriggerAll: true,
		Bases:       []*proto.BaseDependency{{Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "0"}},
		BasesCommit: stubBaseCommit, BasesReadAt: timestamppb.New(testNow),
		CreatedAt: stored.CreatedAt, UpdatedAt: stored.UpdatedAt,
	}
	if !gproto.Equal(stored, want) {
		t.Errorf("stored task = %v, want %v", stored, want)
	}
	if got.Context != "https://git.example/acme/web.git#release:docker/web" || !got.HasGitToken || !got.HasWebhookSecret ||
		*got.Push || *got.CommitTrigger || !*got.TagTrigger || *got.BaseImageTrigger || got.BaseImageTriggerType != "all" {
		t.Errorf("POST /v1/tasks = %+v, want the task as sent, secrets only flagged", got)
	}
}

func TestTaskSecretsNeverAnswered(t *testing.T) {
	e := newEnv(t, Config{Hooks: &hookRecorder{}})
	const token, secret = "ghp_TOKEN_never_shown", "HOOK_SECRET_never_shown"
	var answers []string
	keep := func(method, path, body string) {
		t.Helper()
		status, data := e.taskCall(t, method, path, body, nil)
		if status/100 != 2 {
			t.Fatalf("%s %s = %d %s, want 2xx", method, path, status, data)
		}
		answers = append(answers, data)
	}
	keep("POST", "/v1/tasks", `{"name":"app","context":"https://github.com/acme/app.git","gitToken":"`+token+`","webhookSecret":"`+secret+`"}`)
	keep("GET", "/v1/tasks/app", "")
	keep("GET", "/v1/tasks", "")
	keep("PATCH", "/v1/tasks/app", `{"gitToken":"`+token+`2","webhookSecret":"`+secret+`2"}`)
	keep("PATCH", "/v1/tasks/app", `{"target":"x"}`)
	for _, a := range answers {
		if strings.Contains(a, "never_shown") || strings.Contains(a, `"gitToken"`) || strings.Contains(a, `"webhookSecret"`) {
			t.Errorf("answer %s shows a secret", a)
		}
		if !strings.Contains(a, `"hasGitToken":true`) || !strings.Contains(a, `"hasWebhookSecret":true`) {
			t.Errorf("answer %s does not say the task has its secrets", a)
		}
	}
	stored, err := e.st.Task(t.Context(), "app")
	if err != nil || stored.GitToken != token+"2" || stored.WebhookSecret != secret+"2" {
		t.Errorf("store.Task(app) = %v, %v; want the secrets as last set", stored, err)
	}
}

func TestCreateTaskRefused(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	e.createTaskOK(t, `{"name":"taken","context":"https://github.com/acme/app.git"}`)
	const ctx = `"context":"https://github.com/acme/app.git"`
	tests := []struct {
		name, body string
		status     int
		want       string // in the message
	}{
		{"no name", `{` + ctx + `}`, 400, "not a valid task name"},
		{"bad name", `{"name":"-app",` + ctx + `}`, 400, `"-app" is not a valid task name: a task name is 1 to 50`},
		{"long name", `{"name":"` + strings.Repeat("a", 51) + `",` + ctx + `}`, 400, "1 to 50"},
		{"no context", `{"name":"app"}`, 400, "needs a context"},
		{"context with credentials", `{"name":"app","context":"https://me:ghp_x@github.com/acme/app.git"}`, 400, "credentials in the URL"},
		{"context not http", `{"name":"app","context":"git@github.com:acme/app.git"}`, 400, "http or https"},
		{"context bad ref", `{"name":"app","context":"https://github.com/acme/app.git#a..b"}`, 400, `"a..b"`},
		{"unknown tag field", `{"name":"app",` + ctx + `,"tags":["app:{{.Run.Sha}}"]}`, 400, "Sha"},
		{"tag not a template", `{"name":"app",` + ctx + `,"tags":["app:{{.Run.ID"]}`, 400, `tag "app:{{.Run.ID"`},
		{"tag not a reference", `{"name":"app",` + ctx + `,"tags":["app:a b"]}`, 400, `tag "app:a b"`},
		{"dockerfile outside", `{"name":"app",` + ctx + `,"dockerfile":"../Dockerfile"}`, 400, `"../Dockerfile"`},
		{"dockerfile with a NUL", `{"name":"app",` + ctx + `,"dockerfile":"Dockerfile\u0000.txt"}`, 400, `dockerfile "Dockerfile\x00.txt" has the control character U+0000`},
		{"tag with a scheme", `{"name":"app",` + ctx + `,"tags":["http://x/y:1"]}`, 400, `tag "http://x/y:1" is a URL`},
		{"timeout", `{"name":"app",` + ctx + `,"timeout":90000}`, 400, "timeout 90000"},
		{"bad path filter", `{"name":"app",` + ctx + `,"pathFilters":["src/["]}`, 400, `"src/["`},
		{"base image trigger type", `{"name":"app",` + ctx + `,"baseImageTriggerType":"All"}`, 400, `baseImageTriggerType "All" is not "runtime" or "all"`},
		{"unknown field", `{"name":"app",` + ctx + `,"branch":"main"}`, 400, `"branch"`},
		{"not JSON", `{"name":`, 400, "not a valid task"},
		{"name taken", `{"name":"taken",` + ctx + `}`, 409, "a task named taken already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.taskCall(t, "POST", "/v1/tasks", tt.body, nil)
			if status != tt.status || !strings.Contains(errorOf(t, []byte(body)).Message, tt.want) {
				t.Errorf("POST /v1/tasks %s = %d %s, want %d naming %s", tt.body, status, body, tt.status, tt.want)
			}
		})
	}
	tasks, err := e.st.ListTasks(t.Context())
	if err != nil || len(tasks) != 1 {
		t.Errorf("store.ListTasks = %d tasks, %v; want only the first one", len(tasks), err)
	}
}

func TestUpdateTaskChangesOnlyWhatIsSent(t *testing.T) {
	var clock atomic.Int64
	e := newEnv(t, Config{DefaultRegistry: "registry.local", Now: func() time.Time {
		return testNow.Add(time.Duration(clock.Add(1)) * time.Minute)
	}})
	e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git#main","tags":["app:{{.Run.ID}}"],
		"buildArgs":{"A":"1"},"target":"final","pathFilters":["src/*"],"gitToken":"tok"}`)
	before, err := e.st.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("store.Task(app): %v", err)
	}

	tests := []struct {
		name, patch string
		change      func(t *proto.Task)
		reread      bool // the base images are read again
	}{
		{"nothing", `{}`, func(*proto.Task) {}, false},
		{"target", `{"target":"debug"}`, func(t *proto.Task) { t.Target = "debug" }, true},
		{"context", `{"context":"https://github.com/acme/app.git#dev:sub"}`, func(t *proto.Task) {
			t.Source = &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "dev", Subdir: "sub"}
		}, true},
		{"tags cleared", `{"tags":[]}`, func(t *proto.Task) { t.Tags = nil }, false},
		{"a trigger", `{"pullRequestTrigger":true}`, func(t *proto.Task) { t.PullRequestTrigger = true }, false},
		{"push off", `{"push":false}`, func(t *proto.Task) { t.Push = false }, false},
		{"token removed", `{"gitToken":""}`, func(t *proto.Task) { t.GitToken = "" }, true},
		{"timeout and dockerfile", `{"timeout":60,"dockerfile":"./ci/Dockerfile"}`, func(t *proto.Task) {
			t.TimeoutSeconds, t.Dockerfile = 60, "ci/Dockerfile"
		}, true},
		{"build args", `{"buildArgs":{"B":"2"}}`, func(t *proto.Task) { t.BuildArgs = map[string]string{"B": "2"} }, true},
		{"null is no change", `{"buildArgs":null}`, func(*proto.Task) {}, false},
		{"base image trigger off", `{"baseImageTrigger":false}`, func(t *proto.Task) { t.BaseImageTriggerOff = true }, false},
		{"base image trigger on all", `{"baseImageTrigger":true,"baseImageTriggerType":"all"}`, func(t *proto.Task) {
			t.BaseImageTriggerOff, t.BaseImageTriggerAll = false, true
		}, false},
		{"base image trigger on runtime", `{"baseImageTriggerType":"runtime"}`, func(t *proto.Task) {
			t.BaseImageTriggerAll = false
		}, false},
	}
	want := before
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Task
			if status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", tt.patch, &got); status != http.StatusOK {
				t.Fatalf("PATCH /v1/tasks/app %s = %d %s, want 200", tt.patch, status, body)
			}
			stored, err := e.st.Task(t.Context(), "app")
			if err != nil {
				t.Fatalf("store.Task(app): %v", err)
			}
			tt.change(want)
			want.UpdatedAt = stored.UpdatedAt
			if tt.reread {
				want.BasesReadAt = stored.UpdatedAt
			}
			if !gproto.Equal(stored, want) {
				t.Errorf("after PATCH %s, stored task = %v, want %v", tt.patch, stored, want)
			}
			if !stored.UpdatedAt.AsTime().After(stored.CreatedAt.AsTime()) || !got.UpdatedAt.Equal(stored.UpdatedAt.AsTime()) {
				t.Errorf("after PATCH %s, updatedAt = %v (answered %v), want a time after createdAt %v",
					tt.patch, stored.UpdatedAt.AsTime(), got.UpdatedAt, stored.CreatedAt.AsTime())
			}
		})
	}
}

func TestUpdateTaskRefused(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git","tags":["app:v1"]}`)
	before, _ := e.st.Task(t.Context(), "app")
	tests := []struct {
		name, path, patch string
		status            int
		want              string
	}{
		{"bad tag", "/v1/tasks/app", `{"tags":["app:{{.Run.Nope}}"]}`, 400, "Nope"},
		{"bad context", "/v1/tasks/app", `{"context":"ftp://h/a.git"}`, 400, "http and https"},
		{"empty webhook secret", "/v1/tasks/app", `{"webhookSecret":""}`, 400, "webhookSecret cannot be empty"},
		{"name", "/v1/tasks/app", `{"name":"other"}`, 400, `"name"`},
		{"read-only field", "/v1/tasks/app", `{"githubHookId":5}`, 400, `"githubHookId"`},
		{"bases are read, not set", "/v1/tasks/app", `{"bases":[]}`, 400, `"bases"`},
		{"base image trigger type", "/v1/tasks/app", `{"baseImageTriggerType":"build"}`, 400, `baseImageTriggerType "build"`},
		{"missing task", "/v1/tasks/nope", `{"target":"x"}`, 404, "no task named nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.taskCall(t, "PATCH", tt.path, tt.patch, nil)
			if status != tt.status || !strings.Contains(errorOf(t, []byte(body)).Message, tt.want) {
				t.Errorf("PATCH %s %s = %d %s, want %d naming %s", tt.path, tt.patch, status, body, tt.status, tt.want)
			}
		})
	}
	after, _ := e.st.Task(t.Context(), "app")
	if !gproto.Equal(after, before) {
		t.Errorf("after refused updates, stored task = %v, want it unchanged, %v", after, before)
	}
}

func TestGetListDeleteTasks(t *testing.T) {
	e := newEnv(t, Config{})
	var list taskList
	if status, body := e.taskCall(t, "GET", "/v1/tasks", "", &list); status != 200 || list.Tasks == nil || len(list.Tasks) != 0 {
		t.Errorf("GET /v1/tasks with none = %d %s, want 200 and an empty list", status, body)
	}
	for _, name := range []string{"web", "api", "db"} {
		e.createTaskOK(t, `{"name":"`+name+`","context":"https://github.com/acme/`+name+`.git"}`)
	}
	e.taskCall(t, "GET", "/v1/tasks", "", &list)
	var names []string
	for _, task := range list.Tasks {
		names = append(names, task.Name)
	}
	if want := []string{"api", "db", "web"}; !slices.Equal(names, want) {
		t.Errorf("GET /v1/tasks names = %q, want %q", names, want)
	}
	var got Task
	if status, body := e.taskCall(t, "GET", "/v1/tasks/db", "", &got); status != 200 || got.Context != "https://github.com/acme/db.git" {
		t.Errorf("GET /v1/tasks/db = %d %s, want the task", status, body)
	}

	if status, body := e.taskCall(t, "DELETE", "/v1/tasks/db", "", nil); status != http.StatusNoContent || body != "" {
		t.Errorf("DELETE /v1/tasks/db = %d %q, want 204 and no body", status, body)
	}
	for _, tt := range []struct{ method, path string }{
		{"GET", "/v1/tasks/db"}, {"DELETE", "/v1/tasks/db"}, {"POST", "/v1/tasks/db/runs"}, {"GET", "/v1/tasks/no.such"},
	} {
		status, body := e.taskCall(t, tt.method, tt.path, "", nil)
		if status != http.StatusNotFound || errorOf(t, []byte(body)).Code != proto.NotFound {
			t.Errorf("%s %s = %d %s, want 404", tt.method, tt.path, status, body)
		}
	}
	e.taskCall(t, "GET", "/v1/tasks", "", &list)
	if len(list.Tasks) != 2 {
		t.Errorf("GET /v1/tasks after a delete = %d tasks, want 2", len(list.Tasks))
	}
}

func TestTaskHooks(t *testing.T) {
	hooks := &hookRecorder{}
	e := newEnv(t, Config{Hooks: hooks})
	ctx := t.Context()

	// Create registers the webhook with the task as stored, and keeps its ID.
	got := e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git#main","gitToken":"tok","webhookSecret":"sec"}`)
	want := []hookCall{{op: "register", task: "app", url: "https://github.com/acme/app.git", token: "tok", secret: "sec"}}
	if calls := hooks.take(); !reflect.DeepEqual(calls, want) {
		t.Errorf("create: hook calls = %+v, want %+v", calls, want)
	}
	stored, _ := e.st.Task(ctx, "app")
	if got.GitHubHookID != 101 || stored.GetGithubHookId() != 101 {
		t.Errorf("create: githubHookId = %d, stored %d; want 101", got.GitHubHookID, stored.GetGithubHookId())
	}

	// A repository the registrar does not handle gets no hook, and that is no error.
	got = e.createTaskOK(t, `{"name":"lab","context":"https://gitlab.example/acme/app.git"}`)
	if hooks.take(); got.GitHubHookID != 0 {
		t.Errorf("create on gitlab: githubHookId = %d, want 0", got.GitHubHookID)
	}

	// An update that leaves the webhook alone does not touch it.
	e.taskCall(t, "PATCH", "/v1/tasks/app", `{"target":"final"}`, nil)
	if calls := hooks.take(); len(calls) != 0 {
		t.Errorf("update of the target: hook calls = %+v, want none", calls)
	}

	// A new repository moves the webhook: the old one goes, a new one comes.
	e.taskCall(t, "PATCH", "/v1/tasks/app", `{"context":"https://github.com/acme/new.git"}`, &got)
	want = []hookCall{
		{op: "unregister", task: "app", url: "https://github.com/acme/app.git", token: "tok", secret: "sec", hookID: 101},
		{op: "register", task: "app", url: "https://github.com/acme/new.git", token: "tok", secret: "sec"},
	}
	if calls := hooks.take(); !reflect.DeepEqual(calls, want) {
		t.Errorf("update of the context: hook calls = %+v, want %+v", calls, want)
	}
	if got.GitHubHookID != 102 {
		t.Errorf("update of the context: githubHookId = %d, want 102", got.GitHubHookID)
	}

	// A webhook that cannot be removed keeps the task.
	hooks.fail(nil, errors.New("GitHub answered 502"))
	status, body := e.taskCall(t, "DELETE", "/v1/tasks/app", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "GitHub answered 502") || !strings.Contains(body, "the task was kept") {
		t.Errorf("DELETE /v1/tasks/app with a failing registrar = %d %s, want 503 naming the cause", status, body)
	}
	if _, err := e.st.Task(ctx, "app"); err != nil {
		t.Errorf("after a failed delete, store.Task(app): %v, want the task kept", err)
	}
	// Nor can the webhook move: the update changes nothing.
	status, body = e.taskCall(t, "PATCH", "/v1/tasks/app", `{"context":"https://github.com/acme/other.git"}`, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "the task was not changed") {
		t.Errorf("PATCH of the context with a failing registrar = %d %s, want 503 naming the cause", status, body)
	}
	if kept, _ := e.st.Task(ctx, "app"); kept.GetSource().GetUrl() != "https://github.com/acme/new.git" || kept.GetGithubHookId() != 102 {
		t.Errorf("after a failed move, stored task = %v, want the context and hook unchanged", kept)
	}
	hooks.take()

	// Delete removes the webhook, then the task.
	hooks.fail(nil, nil)
	if status, body := e.taskCall(t, "DELETE", "/v1/tasks/app", "", nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/tasks/app = %d %s, want 204", status, body)
	}
	want = []hookCall{{op: "unregister", task: "app", url: "https://github.com/acme/new.git", token: "tok", secret: "sec", hookID: 102}}
	if calls := hooks.take(); !reflect.DeepEqual(calls, want) {
		t.Errorf("delete: hook calls = %+v, want %+v", calls, want)
	}
	// A task without a webhook is deleted without asking the registrar.
	e.taskCall(t, "DELETE", "/v1/tasks/lab", "", nil)
	if calls := hooks.take(); len(calls) != 0 {
		t.Errorf("delete of a task without a webhook: hook calls = %+v, want none", calls)
	}
}

func TestTaskHookRegistrationFails(t *testing.T) {
	hooks := &hookRecorder{}
	e := newEnv(t, Config{Hooks: hooks})
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"forge down", errors.New("GitHub did not answer"), http.StatusServiceUnavailable},
		{"token refused", proto.Errorf(proto.Invalid, "the token may not add webhooks to acme/app"), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hooks.fail(tt.err, nil)
			status, body := e.taskCall(t, "POST", "/v1/tasks", `{"name":"app","context":"https://github.com/acme/app.git","gitToken":"tok"}`, nil)
			if status != tt.status || !strings.Contains(body, tt.err.Error()) || !strings.Contains(body, "not created") {
				t.Errorf("POST /v1/tasks with a failing registrar = %d %s, want %d naming the cause", status, body, tt.status)
			}
			if _, err := e.st.Task(t.Context(), "app"); proto.ErrorCode(err) != proto.NotFound {
				t.Errorf("after a failed registration, store.Task(app) error = %v, want not found", err)
			}
		})
	}
	// The name is free: with the registrar back, the same task is created.
	hooks.fail(nil, nil)
	if got := e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git","gitToken":"tok"}`); got.GitHubHookID == 0 {
		t.Errorf("POST /v1/tasks after the registrar recovered = %+v, want a hook ID", got)
	}

	// An update whose new webhook fails keeps the change and says so; sending it again registers it.
	hooks.fail(errors.New("GitHub did not answer"), nil)
	status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", `{"gitToken":"tok2"}`, nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "send the change again") {
		t.Errorf("PATCH with a failing registrar = %d %s, want 503 saying to send it again", status, body)
	}
	hooks.fail(nil, nil)
	var got Task
	if status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", `{"gitToken":"tok2"}`, &got); status != 200 || got.GitHubHookID == 0 {
		t.Errorf("PATCH again = %d %s, want 200 with a hook ID", status, body)
	}
}
