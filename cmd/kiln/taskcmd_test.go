package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"

	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/api"
)

// testBases is what the API of startAPI reads as the base images of every task's Dockerfile: its tasks name
// repositories that do not exist, and reading them is trigger/api's and trigger/basedeps's to test.
var testBases = []*proto.BaseDependency{
	{Reference: "index.docker.io/library/golang:1.26", Stage: "build"},
	{Reference: "registry.local/base/runtime:2", Runtime: true, Stage: "1"},
}

// startAPI serves Kiln's API on an in-process NATS server with JetStream and a real store, and returns its URL
// and the store. It all stops when the test ends.
func startAPI(t *testing.T) (string, *store.Store) {
	t.Helper()
	env := storetest.New(t)
	nc, js, st := env.Conn, env.JS, env.Store
	readBases := func(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error) {
		return testBases, "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00", nil
	}
	cfg := api.Config{DefaultRegistry: "registry.local", ReadBases: readBases}
	hs := httptest.NewServer(api.NewServer(cfg, st, js, nc, nil).Handler())
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

func TestTaskDeps(t *testing.T) {
	url, st := startAPI(t)
	ctx := t.Context()
	const (
		golang  = "index.docker.io/library/golang:1.26"
		runtime = "registry.local/base/runtime:2"
		digestA = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
		digestB = "sha256:bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
	)
	if code, out := kiln(t, url, "task", "create", "app", "--context", "https://github.com/acme/app.git"); code != 0 {
		t.Fatalf("kiln task create app = %d %q", code, out)
	}
	checked := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if _, err := st.UpdateTaskBases(ctx, "app", func(tb *proto.TaskBases) error {
		tb.Bases = map[string]*proto.BaseState{runtime: {BuiltDigest: digestA, BuiltRun: "k1"}}
		return nil
	}); err != nil {
		t.Fatalf("UpdateTaskBases(app): %v", err)
	}
	for ref, digest := range map[string]string{runtime: digestB, golang: ""} {
		if _, err := st.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
			ts.Digest, ts.CheckedAt, ts.Source = digest, timestamppb.New(checked), "poll"
			if digest == "" {
				ts.Error = "registry answered 503"
			}
			return nil
		}); err != nil {
			t.Fatalf("UpdateTagState(%s): %v", ref, err)
		}
	}
	when := checked.Local().Format(time.DateTime)

	code, out := kiln(t, url, "task", "deps", "app")
	for _, want := range []string{
		"Base image trigger: on, for the runtime base\n",
		"Read from commit:   c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00",
		"REFERENCE                            KIND                      BUILT ON             REGISTRY NOW         CHECKED\n",
		golang + "  build-time (not tracked)  -                    -                    " + when + " (poll)\n",
		runtime + "        runtime                   sha256:aaaaaaaaaaaa  sha256:bbbbbbbbbbbb  " + when + " (poll)\n",
		golang + ": the last poll failed: registry answered 503",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("kiln task deps app = %d\n%s\nwant 0 with %q", code, out, want)
		}
	}

	kiln(t, url, "task", "update", "app", "--base-image-trigger-type", "all")
	code, out = kiln(t, url, "task", "deps", "app", "-o", "json")
	var deps api.TaskDeps
	if err := json.Unmarshal([]byte(out), &deps); code != 0 || err != nil || deps.BaseImageTriggerType != "all" ||
		len(deps.Bases) != 2 || !deps.Bases[0].Tracked || deps.Bases[1].BuiltDigest != digestA {
		t.Errorf("kiln task deps app -o json = %d %q (%v), want both bases tracked as JSON", code, out, err)
	}
	if code, out := kiln(t, url, "task", "show", "app"); code != 0 || !strings.Contains(out, "Base trigger:   on, for runtime and build-time bases") ||
		!strings.Contains(out, "Base:           "+runtime+" (runtime)") {
		t.Errorf("kiln task show app = %d %q, want the base image trigger and the bases", code, out)
	}
	if code, out := kiln(t, url, "task", "deps", "nope"); code != 1 || !strings.Contains(out, "no task named nope") {
		t.Errorf("kiln task deps nope = %d %q, want 1 and not found", code, out)
	}
}
