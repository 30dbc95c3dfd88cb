package api

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// multiStage builds on golang (ARG-expanded) and on a runtime base that a build arg can change.
const multiStage = `ARG GO=1.25
ARG RUNTIME=gcr.io/distroless/static:nonroot
FROM golang:${GO} AS build
RUN go build -o /app .
FROM build AS test
RUN go test ./...
FROM ${RUNTIME}
COPY --from=build /app /app
`

func TestCreateTaskReadsBases(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	w := gittest.NewRepo(t)
	main := w.Commit(map[string]string{"docker/Dockerfile": multiStage, "README": "no Dockerfile at the root\n"})
	w.Git("checkout", "--quiet", "-b", "broken")
	broken := w.Commit(map[string]string{"docker/Dockerfile": "FROM alpine\nRUNN true\n"})
	w.Git("checkout", "--quiet", "-b", "arch")
	arch := w.Commit(map[string]string{"docker/Dockerfile": "FROM example.com/base-${TARGETARCH}:1\n"})
	url := g.Publish(w, "acme/app.git", "main")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	e := newEnv(t, Config{ReadBases: basedeps.ForTask})

	golang := TaskBase{Reference: "index.docker.io/library/golang:1.25", Stage: "build"}
	tests := []struct {
		name, body string
		status     int
		bases      []TaskBase
		commit     string
		want       string // in basesError, or in the error's message when refused
	}{
		{
			name:   "multi-stage",
			body:   `"context":"` + url + `#main:docker"`,
			status: 201,
			bases:  []TaskBase{golang, {Reference: "gcr.io/distroless/static:nonroot", Runtime: true, Stage: "2"}},
			commit: main,
		},
		{
			name:   "build arg and target",
			body:   `"context":"` + url + `#main:docker","buildArgs":{"GO":"1.26","RUNTIME":"alpine:3"},"target":"test"`,
			status: 201,
			bases:  []TaskBase{{Reference: "index.docker.io/library/golang:1.26", Runtime: true, Stage: "build"}},
			commit: main,
		},
		{
			name:   "a Dockerfile that does not parse is refused",
			body:   `"context":"` + url + `#broken:docker"`,
			status: 400,
			want:   "docker/Dockerfile at commit " + broken[:12] + ": parsing Dockerfile: dockerfile parse error on line 2",
		},
		{
			name:   "an unknown target is refused",
			body:   `"context":"` + url + `#main:docker","target":"release"`,
			status: 400,
			want:   `target stage "release" is not in the Dockerfile`,
		},
		{
			name:   "bases known only when building",
			body:   `"context":"` + url + `#arch:docker"`,
			status: 201,
			commit: arch,
			want:   "TARGETARCH, which is known only when building",
		},
		{
			name:   "no Dockerfile",
			body:   `"context":"` + url + `#main"`,
			status: 201,
			commit: main,
			want:   "there is no Dockerfile at commit " + main,
		},
		{
			name:   "an unreachable repository",
			body:   `"context":"` + closed.URL + `/acme/app.git"`,
			status: 201,
			want:   "listing the refs of " + closed.URL + "/acme/app.git",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "app" + string(rune('a'+i))
			var got Task
			status, body := e.taskCall(t, "POST", "/v1/tasks", `{"name":"`+name+`",`+tt.body+`}`, &got)
			if status != tt.status {
				t.Fatalf("POST /v1/tasks %s = %d %s, want %d", tt.body, status, body, tt.status)
			}
			stored, err := e.st.Task(t.Context(), name)
			if status != http.StatusCreated {
				if msg := errorOf(t, []byte(body)).Message; !strings.Contains(msg, tt.want) || !strings.Contains(msg, "not saved") {
					t.Errorf("POST /v1/tasks %s error = %q, want it to name %q and say the task was not saved", tt.body, msg, tt.want)
				}
				if proto.ErrorCode(err) != proto.NotFound {
					t.Errorf("after a refused create, store.Task(%s) = %v, %v; want not found", name, stored, err)
				}
				return
			}
			if !reflect.DeepEqual(got.Bases, tt.bases) || !strings.Contains(got.BasesError, tt.want) || (tt.want == "") != (got.BasesError == "") {
				t.Errorf("POST /v1/tasks %s = bases %+v, basesError %q; want %+v, %q", tt.body, got.Bases, got.BasesError, tt.bases, tt.want)
			}
			if err != nil || stored.GetBasesCommit() != tt.commit || !stored.GetBasesReadAt().AsTime().Equal(testNow) {
				t.Errorf("store.Task(%s) = bases read from %q at %v (%v); want %q at %v", name,
					stored.GetBasesCommit(), stored.GetBasesReadAt().AsTime(), err, tt.commit, testNow)
			}
		})
	}
}

func TestUpdateTaskReadsBases(t *testing.T) {
	g := gittest.NewServer(t, "tok")
	w := gittest.NewRepo(t)
	main := w.Commit(map[string]string{"Dockerfile": "FROM alpine:3.20\n"})
	w.Git("checkout", "--quiet", "-b", "dev")
	dev := w.Commit(map[string]string{"Dockerfile": multiStage})
	url := g.Publish(w, "acme/app.git", "main")
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	e := newEnv(t, Config{ReadBases: basedeps.ForTask})
	e.createTaskOK(t, `{"name":"app","context":"`+url+`#main"}`)

	alpine := []TaskBase{{Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "0"}}
	golang := TaskBase{Reference: "index.docker.io/library/golang:1.25", Stage: "build"}
	withAlpine := []TaskBase{golang, {Reference: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "2"}}
	steps := []struct {
		name, patch string
		status      int
		bases       []TaskBase
		commit      string
		basesError  string // in it
	}{
		{"another branch", `{"context":"` + url + `#dev"}`, 200, []TaskBase{
			golang, {Reference: "gcr.io/distroless/static:nonroot", Runtime: true, Stage: "2"},
		}, dev, ""},
		{"build args", `{"buildArgs":{"RUNTIME":"alpine:3.20"},"target":""}`, 200, withAlpine, dev, ""},
		{"an unknown target changes nothing", `{"target":"nope","timeout":60}`, 400, withAlpine, dev, ""},
		{"a change elsewhere keeps the bases", `{"timeout":60}`, 200, withAlpine, dev, ""},
		{"an unreachable repository clears them", `{"context":"` + closed.URL + `/app.git"}`, 200, nil, "", closed.URL},
		{"back to main", `{"context":"` + url + `"}`, 200, alpine, main, ""},
	}
	for _, s := range steps {
		status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", s.patch, nil)
		if status != s.status {
			t.Fatalf("%s: PATCH /v1/tasks/app %s = %d %s, want %d", s.name, s.patch, status, body, s.status)
		}
		var got Task
		e.taskCall(t, "GET", "/v1/tasks/app", "", &got)
		stored, err := e.st.Task(t.Context(), "app")
		if err != nil {
			t.Fatalf("store.Task(app): %v", err)
		}
		if !reflect.DeepEqual(got.Bases, s.bases) || stored.GetBasesCommit() != s.commit ||
			!strings.Contains(got.BasesError, s.basesError) || (s.basesError == "") != (got.BasesError == "") {
			t.Errorf("%s: after PATCH %s, bases = %+v from %q, basesError %q; want %+v from %q, %q",
				s.name, s.patch, got.Bases, stored.GetBasesCommit(), got.BasesError, s.bases, s.commit, s.basesError)
		}
	}
}

func TestKeepBases(t *testing.T) {
	read := &proto.Task{Source: &proto.GitContext{Url: "https://h/a.git", Ref: "main"}, Dockerfile: "Dockerfile",
		Bases: []*proto.BaseDependency{{Reference: "index.docker.io/library/alpine:3.20", Runtime: true}}, BasesCommit: "c1"}
	tests := []struct {
		name string
		now  *proto.Task // the task as stored when the update is written
		keep bool
	}{
		{"unchanged", &proto.Task{Source: &proto.GitContext{Url: "https://h/a.git", Ref: "main"}, Dockerfile: "Dockerfile", TimeoutSeconds: 5}, true},
		{"another branch meanwhile", &proto.Task{Source: &proto.GitContext{Url: "https://h/a.git", Ref: "dev"}, Dockerfile: "Dockerfile"}, false},
		{"a build arg meanwhile", &proto.Task{Source: &proto.GitContext{Url: "https://h/a.git", Ref: "main"}, Dockerfile: "Dockerfile",
			BuildArgs: map[string]string{"A": "1"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keepBases(tt.now, read)
			if kept := tt.now.GetBasesCommit() == "c1" && len(tt.now.GetBases()) == 1 && tt.now.GetBasesError() == ""; kept != tt.keep {
				t.Errorf("keepBases(%v) kept = %v, want %v", tt.now, kept, tt.keep)
			}
			if !tt.keep && !strings.Contains(tt.now.GetBasesError(), "save it again") {
				t.Errorf("keepBases(%v) basesError = %q, want it to say to save the task again", tt.now, tt.now.GetBasesError())
			}
		})
	}
}
