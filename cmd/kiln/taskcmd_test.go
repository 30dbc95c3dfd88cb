package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/api"
)

// startAPI serves Kiln's API on an in-process NATS server with JetStream and a real store, and returns its URL
// and the store. It all stops when the test ends.
func startAPI(t *testing.T) (string, *store.Store) {
	t.Helper()
	env := storetest.New(t)
	nc, js, st := env.Conn, env.JS, env.Store
	hs := httptest.NewServer(api.NewServer(api.Config{DefaultRegistry: "registry.local"}, st, js, nc, nil).Handler())
	t.Cleanup(hs.Close)
	return hs.URL, st
}

// kiln runs the CLI with args against server and returns its exit code and output.
func kiln(t *testing.T, server string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args[:2:2], append([]string{"--server", server}, args[2:]...)...)
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

func TestBuildFromURL(t *testing.T) {
	url, st := startAPI(t)
	code, out := kiln(t, url, "build", "https://files.example/ctx.tar.gz", "--no-wait", "-t", "app:{{.Run.ID}}")
	if code != 0 || !strings.Contains(out, "Queued a run with ID: k1") {
		t.Fatalf("kiln build URL = %d %q, want 0 and the run queued", code, out)
	}
	run, err := st.Run(t.Context(), "k1")
	if err != nil {
		t.Fatalf("store.Run(k1): %v", err)
	}
	if spec := run.GetSpec(); spec.GetContextUrl() != "https://files.example/ctx.tar.gz" || spec.GetContextObject() != "" {
		t.Errorf("run k1 spec = %v, want the URL as its context and no uploaded one", spec)
	}
	if code, out := kiln(t, url, "build", "/nonexistent/dir"); code != 2 || !strings.Contains(out, "neither a directory nor") {
		t.Errorf("kiln build of a missing directory = %d %q, want 2 and a usage error", code, out)
	}
}

func TestTaskVerbs(t *testing.T) {
	url, st := startAPI(t)
	token := secretFile(t, "ghp_cliToken\n")
	const repo = "https://github.com/acme/app.git#main:docker"

	steps := []struct {
		args []string
		code int
		want string // in the output
	}{
		{[]string{"task", "create", "app", "--context", repo, "-t", "app:{{.Run.Commit}}", "--git-token-file", token}, 0, "Created task app"},
		{[]string{"task", "create", "app", "--context", repo}, 1, "a task named app already exists"},
		{[]string{"task", "create", "bad", "--context", repo, "-t", "app:{{.Run.Nope}}"}, 1, "Nope"},
		{[]string{"task", "list"}, 0, "app   " + repo + "  commit    app:{{.Run.Commit}}"},
		{[]string{"task", "update", "app", "--pr-trigger", "--target", "final"}, 0, "Updated task app"},
		{[]string{"task", "show", "app"}, 0, "Triggers:       commit,pull_request"},
		{[]string{"task", "show", "app"}, 0, "Git token:      set"},
		{[]string{"task", "show", "nope"}, 1, "no task named nope"},
		{[]string{"task", "delete", "app"}, 0, "Deleted task app"},
		{[]string{"task", "list"}, 0, "NAME"},
		{[]string{"task", "frobnicate", "app"}, 2, "unknown subcommand"},
	}
	for _, s := range steps {
		code, out := kiln(t, url, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("kiln %s = %d %q, want %d with %q", strings.Join(s.args, " "), code, out, s.code, s.want)
		}
		if strings.Contains(out, "ghp_cliToken") {
			t.Errorf("kiln %s shows the token: %q", strings.Join(s.args, " "), out)
		}
	}
	if tasks, err := st.ListTasks(t.Context()); err != nil || len(tasks) != 0 {
		t.Errorf("store.ListTasks after delete = %v, %v; want none", tasks, err)
	}

	kiln(t, url, "task", "create", "web", "--context", repo)
	code, out := kiln(t, url, "task", "show", "web", "-o", "json")
	var shown api.Task
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || shown.Name != "web" || shown.Context != repo {
		t.Errorf("kiln task show web -o json = %d %q (%v), want the task as JSON", code, out, err)
	}
}
