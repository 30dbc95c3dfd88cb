package basedeps

import (
	"errors"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

func TestForTaskFile(t *testing.T) {
	g := gittest.NewServer(t, "")
	w := gittest.NewRepo(t)
	w.Commit(map[string]string{
		"ci/acb.yaml": `version: v1.1.0
steps:
  - id: api
    build: -t $Registry/api:$ID -f api.Dockerfile --build-arg V={{.Values.v}} .
  - id: web
    workingDirectory: web
    build: -t $Registry/web:$ID --target final .
  - cmd: $Registry/api:$ID true
`,
		"ci/api.Dockerfile": "ARG V=1\nFROM registry.example/api-base:${V}\n",
		"ci/web/Dockerfile": "FROM registry.example/node:22 AS build\nFROM registry.example/nginx:1 AS final\nCOPY --from=build /a /a\nFROM registry.example/debug:1\n",
	})
	url := g.Publish(w, "acme/app.git", "main")
	task := &proto.Task{Source: &proto.GitContext{Url: url, Ref: "main", Subdir: "ci"}, Dockerfile: "acb.yaml",
		Values: map[string]string{"v": "3"}}
	deps, _, err := ForTask(t.Context(), task)
	if err != nil {
		t.Fatalf("ForTask() = %v", err)
	}
	want := []*proto.BaseDependency{
		{Reference: "registry.example/api-base:3", Runtime: true, Stage: "api: 0"},
		{Reference: "registry.example/node:22", Stage: "web: build"},
		{Reference: "registry.example/nginx:1", Runtime: true, Stage: "web: final"},
	}
	if !equalDeps(deps, want) {
		t.Errorf("ForTask() = %v, want %v", deps, want)
	}

	// A step whose Dockerfile is not in the commit is an error of its own kind; a refused field is a DockerfileError.
	w.Commit(map[string]string{"ci/acb.yaml": "steps:\n  - build: -t x:1 -f missing.Dockerfile .\n"})
	task.Source.Url = g.Publish(w, "acme/missing.git", "main")
	if _, _, err := ForTask(t.Context(), task); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("ForTask() of a step without its Dockerfile = %v, want NotFound", err)
	}
	w.Commit(map[string]string{"ci/acb.yaml": "steps:\n  - cmd: busybox true\n    privileged: true\n"})
	task.Source.Url = g.Publish(w, "acme/refused.git", "main")
	var dfe *DockerfileError
	if _, _, err := ForTask(t.Context(), task); !errors.As(err, &dfe) {
		t.Errorf("ForTask() of a refused task file = %v, want a DockerfileError", err)
	}
}
