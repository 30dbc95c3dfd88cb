package baseimage

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/queue"
)

const settle = 300 * time.Millisecond

// startWatchers starts n Watchers, each with its own Index, on env: n processes sharing one JetStream.
func startWatchers(t *testing.T, env *storetest.Env, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2*n)
	t.Cleanup(func() {
		cancel()
		for range 2 * n {
			<-done
		}
	})
	for range n {
		ix := NewIndex()
		runs := &queue.Head{Queue: queue.New(env.Store, env.JS, nil), Store: env.Store, DefaultRegistry: "127.0.0.1:5000"}
		w := &Watcher{Store: env.Store, JS: env.JS, Runs: runs, Index: ix, Settle: settle}
		go func() { _ = ix.Run(ctx, env.Store); done <- struct{}{} }()
		go func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("Watcher.Run: %v", err)
			}
			done <- struct{}{}
		}()
	}
}

// createTask stores a task whose runtime base is each of bases, with its base image trigger on.
func createTask(t *testing.T, st *store.Store, name string, bases ...string) {
	t.Helper()
	task := &proto.Task{Name: name, Source: &proto.GitContext{Url: "http://127.0.0.1:1/" + name + ".git", Ref: "main"},
		Tags: []string{"{{.Run.Registry}}/" + name + ":{{.Run.ID}}"}, Push: true, BaseImageTriggerAll: true,
		UpdatedAt: timestamppb.Now()}
	for i, b := range bases {
		task.Bases = append(task.Bases, &proto.BaseDependency{Reference: b, Runtime: i == len(bases)-1})
	}
	if err := st.CreateTask(t.Context(), task); err != nil {
		t.Fatalf("CreateTask(%s): %v", name, err)
	}
}

func publish(t *testing.T, js jetstream.JetStream, ref, digest, source string) {
	t.Helper()
	data, _ := gproto.Marshal(&proto.ImagePushed{Reference: ref, Digest: digest, Source: source, ObservedAt: timestamppb.Now()})
	if _, err := js.Publish(t.Context(), proto.SubjectImagePushed, data); err != nil {
		t.Fatalf("publishing ImagePushed: %v", err)
	}
}

// runsAfter waits until the store has want runs (and a little longer, for any extra run to show), and returns
// them by task name.
func runsAfter(t *testing.T, st *store.Store, want int) map[string][]*proto.Run {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var runs []*proto.Run
	for {
		var err error
		if runs, err = st.ListRuns(t.Context(), store.ListOptions{Limit: 1000}); err != nil {
			t.Fatalf("ListRuns: %v", err)
		}
		if len(runs) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * settle) // any run too many would be queued by now
	runs, _ = st.ListRuns(t.Context(), store.ListOptions{Limit: 1000})
	by := make(map[string][]*proto.Run)
	for _, r := range runs {
		by[r.GetTaskName()] = append(by[r.GetTaskName()], r)
	}
	if len(runs) != want {
		t.Fatalf("%d runs queued, want %d: %v", len(runs), want, names(by))
	}
	return by
}

func names(by map[string][]*proto.Run) []string {
	var out []string
	for task, runs := range by {
		out = append(out, fmt.Sprintf("%s×%d", task, len(runs)))
	}
	sort.Strings(out)
	return out
}

func TestWatcherStartsOneRunPerDependentAcrossProcesses(t *testing.T) {
	env := storetest.New(t)
	const dependents = 10
	for i := range dependents {
		createTask(t, env.Store, fmt.Sprintf("app%d", i), ref)
	}
	createTask(t, env.Store, "unrelated", "127.0.0.1:5000/other:latest")
	startWatchers(t, env, 2)

	// The push, its registry notification and a poll all report the same digest.
	publish(t, env.JS, ref, "sha256:b", "push")
	publish(t, env.JS, ref, "sha256:b", "notification")
	publish(t, env.JS, ref, "sha256:b", "poll")
	by := runsAfter(t, env.Store, dependents)
	for i := range dependents {
		runs := by[fmt.Sprintf("app%d", i)]
		if len(runs) != 1 {
			t.Fatalf("app%d has %d runs, want 1", i, len(runs))
		}
		r := runs[0]
		ch := r.GetBaseImage().GetChanges()
		if r.GetTrigger() != proto.Trigger_BASE_IMAGE || len(ch) != 1 || ch[0].GetReference() != ref || ch[0].GetNewDigest() != "sha256:b" {
			t.Errorf("run %s: trigger %v, changes %v; want base_image, %s → sha256:b", r.GetId(), r.GetTrigger(), ch, ref)
		}
		if want := "127.0.0.1:5000/app" + fmt.Sprint(i) + ":" + r.GetId(); len(r.GetSpec().GetTags()) != 1 || r.GetSpec().GetTags()[0] != want {
			t.Errorf("run %s tags = %v, want [%s]", r.GetId(), r.GetSpec().GetTags(), want)
		}
	}

	// The same digest again starts nothing; a new one starts a run per dependent, naming the old digest.
	publish(t, env.JS, ref, "sha256:b", "notification")
	publish(t, env.JS, ref, "sha256:c", "notification")
	by = runsAfter(t, env.Store, 2*dependents)
	for _, r := range by["app3"] {
		if r.GetBaseImage().GetChanges()[0].GetNewDigest() == "sha256:c" && r.GetBaseImage().GetChanges()[0].GetOldDigest() != "sha256:b" {
			t.Errorf("run %s: old digest %q, want sha256:b", r.GetId(), r.GetBaseImage().GetChanges()[0].GetOldDigest())
		}
	}
}

func TestWatcherSettlesChangesOfSeveralBasesIntoOneRun(t *testing.T) {
	env := storetest.New(t)
	const other = "127.0.0.1:5000/builder:1"
	createTask(t, env.Store, "app", other, ref)
	startWatchers(t, env, 1)
	publish(t, env.JS, ref, "sha256:b", "push")
	publish(t, env.JS, other, "sha256:x", "push")
	publish(t, env.JS, ref, "sha256:c", "push") // the tag moved again inside the window
	by := runsAfter(t, env.Store, 1)
	ch := by["app"][0].GetBaseImage().GetChanges()
	got := map[string]string{}
	for _, c := range ch {
		got[c.GetReference()] = c.GetNewDigest()
	}
	if len(ch) != 2 || got[ref] != "sha256:c" || got[other] != "sha256:x" {
		t.Errorf("changes = %v, want %s → sha256:c and %s → sha256:x", ch, ref, other)
	}
}

func TestWatcherRecordsWhatRunsBuiltOn(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", ref)
	startWatchers(t, env, 1)
	// A commit run built on sha256:a; its success is announced as a worker announces it.
	id, _ := env.Store.NextRunID(t.Context())
	run := &proto.Run{Id: id, Status: proto.Status_SUCCEEDED, TaskName: "app", StartedAt: timestamppb.Now(),
		Bases: []*proto.Image{{Reference: ref, Digest: "sha256:a"}}}
	if err := env.Store.CreateRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	data, _ := gproto.Marshal(&proto.RunStatusChanged{RunId: id, Status: proto.Status_SUCCEEDED})
	if _, err := env.JS.Publish(t.Context(), proto.StatusSubject(id), data); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tb, err := env.Store.TaskBases(t.Context(), "app")
		if err != nil {
			t.Fatal(err)
		}
		if tb.GetBases()[ref].GetBuiltDigest() == "sha256:a" && tb.GetBases()[ref].GetBuiltRun() == id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TaskBases = %v, want %s built on sha256:a by %s", tb, ref, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The digest it built on starts nothing; another does.
	publish(t, env.JS, ref, "sha256:a", "poll")
	publish(t, env.JS, ref, "sha256:b", "poll")
	by := runsAfter(t, env.Store, 2)
	for _, r := range by["app"] {
		if r.GetId() != id && r.GetBaseImage().GetChanges()[0].GetOldDigest() != "sha256:a" {
			t.Errorf("run %s changes = %v, want sha256:a → sha256:b", r.GetId(), r.GetBaseImage().GetChanges())
		}
	}
}
