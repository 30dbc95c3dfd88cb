package basedeps

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// multiStage is a Dockerfile with ARG-expanded FROMs, a stage built on another, and stages read with COPY --from.
const multiStage = `ARG REGISTRY=registry.example.com:5000
ARG GO_VERSION=1.25
FROM golang:${GO_VERSION} AS build
RUN go build -o /app .
FROM build AS test
RUN go test ./...
FROM ${REGISTRY}/base/runtime:2 AS release
COPY --from=build /app /app
FROM alpine:3.20 AS debug
COPY --from=release /app /app
`

func TestForTask(t *testing.T) {
	const token = "ghp_basedepsToken"
	g := gittest.NewServer(t, token)
	w := gittest.NewRepo(t)
	main := w.Commit(map[string]string{"docker/ci.Dockerfile": multiStage, "Dockerfile": "FROM alpine\n"})
	w.Git("tag", "-a", "v1", "-m", "release 1")
	w.Git("checkout", "--quiet", "-b", "dev")
	dev := w.Commit(map[string]string{"Dockerfile": "FROM --platform=linux/arm64 debian:12\n"})
	app := g.Publish(w, "acme/app.git", "dev")
	private := g.Publish(w, "private/app.git", "main")

	golang := func(version, stage string) *proto.BaseDependency {
		return &proto.BaseDependency{Reference: "index.docker.io/library/golang:" + version, Stage: stage}
	}
	runtimeBase := "registry.example.com:5000/base/runtime:2"
	tests := []struct {
		name   string
		task   *proto.Task
		want   []*proto.BaseDependency
		commit string
	}{
		{
			name: "subdir, dockerfile, build arg and target",
			task: &proto.Task{Source: &proto.GitContext{Url: app, Ref: "main", Subdir: "docker"}, Dockerfile: "ci.Dockerfile",
				BuildArgs: map[string]string{"GO_VERSION": "1.26"}, Target: "release"},
			want: []*proto.BaseDependency{golang("1.26", "build"),
				{Reference: runtimeBase, Runtime: true, Stage: "release"}},
			commit: main,
		},
		{
			name: "the last stage, through COPY --from",
			task: &proto.Task{Source: &proto.GitContext{Url: app, Ref: "refs/heads/main", Subdir: "docker"}, Dockerfile: "ci.Dockerfile"},
			want: []*proto.BaseDependency{golang("1.25", "build"), {Reference: runtimeBase, Stage: "release"},
				{Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "debug"}},
			commit: main,
		},
		{
			name:   "a target built on another stage",
			task:   &proto.Task{Source: &proto.GitContext{Url: app, Ref: "main"}, Dockerfile: "docker/ci.Dockerfile", Target: "test"},
			want:   []*proto.BaseDependency{{Reference: "index.docker.io/library/golang:1.25", Runtime: true, Stage: "build"}},
			commit: main,
		},
		{
			name: "the default branch and Dockerfile",
			task: &proto.Task{Source: &proto.GitContext{Url: app}},
			want: []*proto.BaseDependency{{Reference: "index.docker.io/library/debian:12", Runtime: true,
				Platform: "linux/arm64", Stage: "0"}},
			commit: dev,
		},
		{
			name:   "an annotated tag",
			task:   &proto.Task{Source: &proto.GitContext{Url: app, Ref: "v1"}},
			want:   []*proto.BaseDependency{{Reference: "index.docker.io/library/alpine:latest", Runtime: true, Stage: "0"}},
			commit: main,
		},
		{
			name:   "a private repository with its token",
			task:   &proto.Task{Source: &proto.GitContext{Url: private}, GitToken: token},
			want:   []*proto.BaseDependency{{Reference: "index.docker.io/library/alpine:latest", Runtime: true, Stage: "0"}},
			commit: main,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, commit, err := ForTask(t.Context(), tt.task)
			if err != nil {
				t.Fatalf("ForTask(%v): %v", tt.task, err)
			}
			if commit != tt.commit || !equalDeps(got, tt.want) {
				t.Errorf("ForTask(%v) =\n%v, %s\nwant\n%v, %s", tt.task, got, commit, tt.want, tt.commit)
			}
		})
	}
}

func TestForTaskErrors(t *testing.T) {
	const token = "ghp_basedepsToken"
	g := gittest.NewServer(t, token)
	w := gittest.NewRepo(t)
	main := w.Commit(map[string]string{"Dockerfile": "FROM alpine\nRUNN true\n", "sub/README": "no Dockerfile here\n",
		"good/Dockerfile": "FROM alpine AS build\n"})
	w.Git("checkout", "--quiet", "-b", "arch")
	arch := w.Commit(map[string]string{"Dockerfile": "FROM example.com/base-$TARGETARCH:1\n"})
	app := g.Publish(w, "acme/app.git", "main")
	private := g.Publish(w, "private/app.git", "main")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hanging.Close)

	tests := []struct {
		name       string
		task       *proto.Task
		code       proto.Code
		dockerfile bool     // a *DockerfileError
		want       []string // in the message
		commit     string
	}{
		{"does not parse", &proto.Task{Source: &proto.GitContext{Url: app}}, proto.Invalid, true,
			[]string{"Dockerfile at commit " + main[:12], "line 2", "unknown instruction: RUNN"}, main},
		{"unknown target", &proto.Task{Source: &proto.GitContext{Url: app, Subdir: "good"}, Target: "nope"}, proto.Invalid, true,
			[]string{"good/Dockerfile", `target stage "nope"`}, main},
		{"base known only when building", &proto.Task{Source: &proto.GitContext{Url: app, Ref: "arch"}}, proto.Invalid, false,
			[]string{"line 1", "TARGETARCH"}, arch},
		{"no Dockerfile", &proto.Task{Source: &proto.GitContext{Url: app, Subdir: "sub"}}, proto.NotFound, false,
			[]string{"sub/Dockerfile", main}, main},
		{"a directory", &proto.Task{Source: &proto.GitContext{Url: app}, Dockerfile: "sub"}, proto.NotFound, false,
			[]string{"sub at commit", "not a regular file"}, main},
		{"unknown branch", &proto.Task{Source: &proto.GitContext{Url: app, Ref: "nope"}}, proto.Invalid, false,
			[]string{`no branch or tag "nope"`}, ""},
		{"no repository", &proto.Task{Source: &proto.GitContext{Url: g.URL + "/acme/missing.git"}}, proto.Invalid, false,
			[]string{"repository not found"}, ""},
		{"private with a wrong token", &proto.Task{Source: &proto.GitContext{Url: private}, GitToken: "ghp_wrongToken"},
			proto.Invalid, false, []string{"needs a git token"}, ""},
		{"unreachable", &proto.Task{Source: &proto.GitContext{Url: closed.URL + "/app.git"}}, proto.Unavailable, false,
			[]string{closed.URL}, ""},
		{"too slow", &proto.Task{Source: &proto.GitContext{Url: hanging.URL + "/app.git"}}, proto.Unavailable, false,
			[]string{hanging.URL}, ""},
		{"no source", &proto.Task{Name: "app"}, proto.Invalid, false, []string{"task app has no repository"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The caller bounds the read: a server that does not answer is given up on when ctx ends.
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			deps, commit, err := ForTask(ctx, tt.task)
			if err == nil {
				t.Fatalf("ForTask(%v) = %v, nil; want an error", tt.task, deps)
			}
			var bad *DockerfileError
			if code := proto.ErrorCode(err); code != tt.code || errors.As(err, &bad) != tt.dockerfile || commit != tt.commit {
				t.Errorf("ForTask(%v) error = %v (kind %s, DockerfileError %v), commit %q; want kind %s, DockerfileError %v, commit %q",
					tt.task, err, code, bad != nil, commit, tt.code, tt.dockerfile, tt.commit)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ForTask(%v) error = %q, want it to name %q", tt.task, err, s)
				}
			}
			if strings.Contains(err.Error(), "ghp_") {
				t.Errorf("ForTask(%v) error = %q holds the token", tt.task, err)
			}
		})
	}
}

func equalDeps(a, b []*proto.BaseDependency) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !gproto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
