package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/trigger/api"
)

// secretFile writes content to a file of its own and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestParseTaskCreate(t *testing.T) {
	token := secretFile(t, "ghp_token\n")
	secret := secretFile(t, "  hook-secret  \n")
	const repo = "https://github.com/acme/app.git#main:docker"
	tests := []struct {
		name string
		args []string
		want api.Task
	}{
		{
			name: "defaults",
			args: []string{"app", "--context", repo},
			want: api.Task{Name: "app", Context: repo, Dockerfile: "Dockerfile", Timeout: 3600, Push: ptr(true),
				CommitTrigger: ptr(true), PullRequestTrigger: ptr(false), TagTrigger: ptr(false), LatestOnly: ptr(true),
				PushPullRequests: ptr(false), BaseImageTrigger: ptr(true), BaseImageTriggerType: "runtime"},
		},
		{
			name: "every flag, the name last",
			args: []string{"--context=" + repo, "-f", "ci/Dockerfile", "-t", "app:{{.Run.Commit}}", "-t", "app:latest",
				"--arg", "A=1", "--build-arg", "B=2=3", "--commit-trigger=false", "--pr-trigger", "--tag-trigger=true",
				"--path-filter", "src/**", "--path-filter", "go.mod", "--latest-only=false", "--push-pull-requests",
				"--no-push", "--git-token-file", token, "--webhook-secret-file", secret, "--timeout", "600",
				"--target", "final", "--platform", "linux/arm64", "--base-image-trigger=false", "--base-image-trigger-type", "all", "app"},
			want: api.Task{Name: "app", Context: repo, Dockerfile: "ci/Dockerfile",
				Tags: []string{"app:{{.Run.Commit}}", "app:latest"}, BuildArgs: map[string]string{"A": "1", "B": "2=3"},
				Target: "final", Platform: "linux/arm64", Timeout: 600, Push: ptr(false), CommitTrigger: ptr(false),
				PullRequestTrigger: ptr(true), TagTrigger: ptr(true), PathFilters: []string{"src/**", "go.mod"},
				LatestOnly: ptr(false), PushPullRequests: ptr(true), GitToken: "ghp_token", WebhookSecret: "hook-secret",
				BaseImageTrigger: ptr(false), BaseImageTriggerType: "all"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := parseTaskCreate(tt.args)
			if err != nil {
				t.Fatalf("parseTaskCreate(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseTaskCreate(%q) =\n%+v\nwant\n%+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseTaskCreateRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"--context", "https://h/a.git"}, "exactly one task NAME"},
		{"two names", []string{"a", "b", "--context", "https://h/a.git"}, "exactly one task NAME"},
		{"no context", []string{"app"}, "needs --context"},
		{"bad build arg", []string{"app", "--context", "https://h/a.git", "--arg", "noequals"}, "KEY=VALUE"},
		{"missing token file", []string{"app", "--context", "https://h/a.git", "--git-token-file", "/nonexistent/token"}, "--git-token-file"},
		{"unknown flag", []string{"app", "--context", "https://h/a.git", "--branch", "main"}, "-branch"},
		{"bad trigger type", []string{"app", "--context", "https://h/a.git", "--base-image-trigger-type", "build"}, "neither runtime nor all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseTaskCreate(tt.args)
			var bad usageError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseTaskCreate(%q) error = %v, want a usage error naming %s", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseTaskUpdate(t *testing.T) {
	token := secretFile(t, "ghp_new\n")
	empty := secretFile(t, "")
	tests := []struct {
		name string
		args []string
		want api.TaskPatch
	}{
		{"nothing", []string{"app"}, api.TaskPatch{}},
		{"one flag", []string{"app", "--target", "debug"}, api.TaskPatch{Target: ptr("debug")}},
		{"a default value given is still a change", []string{"app", "-f", "Dockerfile", "--timeout=3600"},
			api.TaskPatch{Dockerfile: ptr("Dockerfile"), Timeout: ptr(3600)}},
		{"bools", []string{"app", "--commit-trigger=false", "--pr-trigger", "--latest-only=true", "--no-push"},
			api.TaskPatch{CommitTrigger: ptr(false), PullRequestTrigger: ptr(true), LatestOnly: ptr(true), Push: ptr(false)}},
		{"push back on", []string{"app", "--no-push=false"}, api.TaskPatch{Push: ptr(true)}},
		{"base image trigger", []string{"app", "--base-image-trigger=false", "--base-image-trigger-type=all"},
			api.TaskPatch{BaseImageTrigger: ptr(false), BaseImageTriggerType: ptr("all")}},
		{"lists replace", []string{"app", "-t", "a:1", "-t", "b:2", "--path-filter", "src/*", "--arg", "K=V"},
			api.TaskPatch{Tags: &[]string{"a:1", "b:2"}, PathFilters: &[]string{"src/*"}, BuildArgs: &map[string]string{"K": "V"}}},
		{"token set and removed", []string{"app", "--git-token-file", token, "--webhook-secret-file", empty, "--context", "https://h/b.git"},
			api.TaskPatch{GitToken: ptr("ghp_new"), WebhookSecret: ptr(""), Context: ptr("https://h/b.git")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, name, got, err := parseTaskUpdate(tt.args)
			if err != nil || name != "app" {
				t.Fatalf("parseTaskUpdate(%q) = %q, %v; want app", tt.args, name, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseTaskUpdate(%q) =\n%+v\nwant\n%+v", tt.args, got, tt.want)
			}
		})
	}
	if _, _, _, err := parseTaskUpdate([]string{"app", "--git-token-file", "/nonexistent/token"}); err == nil {
		t.Errorf("parseTaskUpdate with a missing token file = nil error, want one")
	}
}
