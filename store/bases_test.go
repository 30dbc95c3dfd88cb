package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

func TestTaskBasesCompareAndSwap(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	tb, err := s.TaskBases(t.Context(), "app")
	if err != nil || len(tb.GetBases()) != 0 {
		t.Fatalf("TaskBases of a new task = %v, %v; want an empty state", tb, err)
	}
	// Writers in parallel each add their base: none is lost, whoever created the value first.
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := "reg.example/base:" + string(rune('a'+i))
			_, err := s.UpdateTaskBases(t.Context(), "app", func(tb *proto.TaskBases) error {
				if tb.Bases == nil {
					tb.Bases = map[string]*proto.BaseState{}
				}
				tb.Bases[ref] = &proto.BaseState{BuiltDigest: "sha256:" + ref}
				return nil
			})
			if err != nil {
				t.Errorf("UpdateTaskBases(%s): %v", ref, err)
			}
		}()
	}
	wg.Wait()
	if tb, _ = s.TaskBases(t.Context(), "app"); len(tb.GetBases()) != writers {
		t.Errorf("after %d parallel updates the state has %d bases, want all of them", writers, len(tb.GetBases()))
	}
	stop := errors.New("stop")
	if _, err := s.UpdateTaskBases(t.Context(), "app", func(tb *proto.TaskBases) error { tb.Bases = nil; return stop }); !errors.Is(err, stop) {
		t.Errorf("UpdateTaskBases with fn failing = %v, want fn's error", err)
	}
	if tb, _ = s.TaskBases(t.Context(), "app"); len(tb.GetBases()) != writers {
		t.Errorf("a failed update wrote: %d bases left", len(tb.GetBases()))
	}

	// Deleting the task drops its state, and a task made again under the name starts afresh.
	if err := s.DeleteTask(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	createTask(t, s, "app")
	if tb, _ = s.TaskBases(t.Context(), "app"); len(tb.GetBases()) != 0 {
		t.Errorf("a task made again inherited %d bases", len(tb.GetBases()))
	}
}

func TestTagState(t *testing.T) {
	s, _ := newStore(t)
	const ref = "index.docker.io/library/alpine:3.20" // ':' and '/' are not KV key characters
	if ts, err := s.TagState(t.Context(), ref); err != nil || ts.GetDigest() != "" {
		t.Fatalf("TagState of an unknown tag = %v, %v; want empty", ts, err)
	}
	if _, err := s.UpdateTagState(t.Context(), ref, func(ts *proto.TagState) error { ts.Digest = "sha256:a"; return nil }); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.TagState(t.Context(), ref); ts.GetDigest() != "sha256:a" {
		t.Errorf("TagState(%s).Digest = %q, want sha256:a", ref, ts.GetDigest())
	}
	if ts, _ := s.TagState(t.Context(), ref+"-other"); ts.GetDigest() != "" {
		t.Errorf("another tag's state = %q, want empty", ts.GetDigest())
	}
}

func TestWatchTaskBases(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "old")
	set := func(task, digest string) {
		t.Helper()
		if _, err := s.UpdateTaskBases(t.Context(), task, func(tb *proto.TaskBases) error {
			tb.Bases = map[string]*proto.BaseState{"r": {BuiltDigest: digest}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	set("old", "sha256:1")
	updates, err := s.WatchTaskBases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	next := func() store.TaskBasesUpdate {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(5 * time.Second):
			t.Fatal("no update within 5s")
			return store.TaskBasesUpdate{}
		}
	}
	if u := next(); u.Task != "old" || u.Bases.GetBases()["r"].GetBuiltDigest() != "sha256:1" {
		t.Errorf("first update = %+v, want the current state of old", u)
	}
	if u := next(); u.Task != "" {
		t.Errorf("second update = %+v, want the zero value that ends the current states", u)
	}
	createTask(t, s, "new")
	set("new", "sha256:2")
	if u := next(); u.Task != "new" || u.Bases.GetBases()["r"].GetBuiltDigest() != "sha256:2" {
		t.Errorf("update after a change = %+v, want new at sha256:2", u)
	}
	if err := s.DeleteTask(t.Context(), "new"); err != nil {
		t.Fatal(err)
	}
	if u := next(); u.Task != "new" || !u.Deleted {
		t.Errorf("update after a delete = %+v, want new deleted", u)
	}
}
