package api

import (
	"context"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

func TestTaskDeps(t *testing.T) {
	const (
		runtimeRef = "registry.local/base/runtime:2"
		buildRef   = "index.docker.io/library/golang:1.26"
		pinnedRef  = "ghcr.io/acme/tools@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		digestA    = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		digestB    = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		digestC    = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	)
	readBases := func(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error) {
		return []*proto.BaseDependency{
			{Reference: buildRef, Stage: "build", Platform: "$BUILDPLATFORM"},
			{Reference: pinnedRef, Stage: "build"},
			{Reference: runtimeRef, Runtime: true, Stage: "1"},
		}, "c0ffee", nil
	}
	e := newEnv(t, Config{ReadBases: readBases})
	c := NewClient(e.url, "")
	ctx := t.Context()
	e.createTaskOK(t, `{"name":"app","context":"https://git.example/acme/app.git"}`)

	built, triggered, checked := testNow.Add(-2*time.Hour), testNow.Add(-time.Hour), testNow.Add(-time.Minute)
	if _, err := e.st.UpdateTaskBases(ctx, "app", func(tb *proto.TaskBases) error {
		tb.Bases = map[string]*proto.BaseState{
			runtimeRef: {BuiltDigest: digestA, BuiltAt: timestamppb.New(built), BuiltRun: "k1",
				TriggeredDigest: digestB, TriggeredAt: timestamppb.New(triggered), TriggeredRun: "k2"},
			buildRef: {BuiltDigest: digestC, BuiltAt: timestamppb.New(built), BuiltRun: "k1"},
		}
		return nil
	}); err != nil {
		t.Fatalf("UpdateTaskBases(app): %v", err)
	}
	for ref, ts := range map[string]*proto.TagState{
		runtimeRef: {Digest: digestB, CheckedAt: timestamppb.New(checked), Source: "poll"},
		buildRef:   {Digest: digestC, CheckedAt: timestamppb.New(checked), Source: "poll", Error: "registry answered 503"},
	} {
		if _, err := e.st.UpdateTagState(ctx, ref, func(s *proto.TagState) error {
			s.Digest, s.CheckedAt, s.Source, s.Error = ts.Digest, ts.CheckedAt, ts.Source, ts.Error
			return nil
		}); err != nil {
			t.Fatalf("UpdateTagState(%s): %v", ref, err)
		}
	}

	buildDep := BaseDep{Reference: buildRef, Kind: "build-time", Stage: "build", Platform: "$BUILDPLATFORM",
		BuiltDigest: digestC, BuiltAt: &built, BuiltRun: "k1",
		RegistryDigest: digestC, CheckedAt: &checked, Source: "poll", PollError: "registry answered 503"}
	pinnedDep := BaseDep{Reference: pinnedRef, Kind: "build-time", Stage: "build"}
	runtimeDep := BaseDep{Reference: runtimeRef, Kind: "runtime", Stage: "1",
		BuiltDigest: digestA, BuiltAt: &built, BuiltRun: "k1", TriggeredDigest: digestB, TriggeredAt: &triggered, TriggeredRun: "k2",
		RegistryDigest: digestB, CheckedAt: &checked, Source: "poll"}
	tracked := func(d BaseDep, on bool) BaseDep { d.Tracked = on; return d }

	steps := []struct {
		name, patch string // patch is sent first, when set
		want        *TaskDeps
	}{
		{"the defaults track the runtime base", "", &TaskDeps{Task: "app", BaseImageTrigger: true, BaseImageTriggerType: "runtime",
			BasesCommit: "c0ffee", BasesReadAt: &testNow,
			Bases: []BaseDep{tracked(buildDep, false), pinnedDep, tracked(runtimeDep, true)}}},
		{"all tracks the build-time tags too", `{"baseImageTriggerType":"all"}`, &TaskDeps{Task: "app", BaseImageTrigger: true,
			BaseImageTriggerType: "all", BasesCommit: "c0ffee", BasesReadAt: &testNow,
			Bases: []BaseDep{tracked(buildDep, true), pinnedDep, tracked(runtimeDep, true)}}},
		{"off tracks none", `{"baseImageTrigger":false}`, &TaskDeps{Task: "app", BaseImageTrigger: false,
			BaseImageTriggerType: "all", BasesCommit: "c0ffee", BasesReadAt: &testNow,
			Bases: []BaseDep{tracked(buildDep, false), pinnedDep, tracked(runtimeDep, false)}}},
	}
	for _, s := range steps {
		if s.patch != "" {
			if status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", s.patch, nil); status != 200 {
				t.Fatalf("%s: PATCH /v1/tasks/app %s = %d %s, want 200", s.name, s.patch, status, body)
			}
		}
		got, err := c.TaskDeps(ctx, "app")
		if err != nil || !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s: TaskDeps(app) =\n%+v, %v\nwant\n%+v", s.name, got, err, s.want)
		}
	}

	if _, err := c.TaskDeps(ctx, "nope"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("TaskDeps(nope) error = %v, want %s", err, proto.NotFound)
	}
}

func TestTaskDepsUnread(t *testing.T) {
	e := newEnv(t, Config{ReadBases: func(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error) {
		return nil, "", proto.Errorf(proto.Unavailable, "listing the refs of https://git.example/acme/app.git: connection refused")
	}})
	e.createTaskOK(t, `{"name":"app","context":"https://git.example/acme/app.git","baseImageTrigger":false}`)
	var got TaskDeps
	if status, body := e.taskCall(t, "GET", "/v1/tasks/app/deps", "", &got); status != 200 {
		t.Fatalf("GET /v1/tasks/app/deps = %d %s, want 200", status, body)
	}
	want := TaskDeps{Task: "app", BaseImageTriggerType: "runtime", BasesReadAt: &testNow, Bases: []BaseDep{},
		BasesError: "listing the refs of https://git.example/acme/app.git: connection refused"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /v1/tasks/app/deps = %+v, want %+v", got, want)
	}
}
