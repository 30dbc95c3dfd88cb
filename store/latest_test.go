package store_test

import (
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

func TestLatestNoneIsEmpty(t *testing.T) {
	s, _ := newStore(t)
	got, err := s.Latest(t.Context(), "app", "main")
	if err != nil || got != "" {
		t.Errorf("Latest(app, main) = %q, %v, want \"\", nil", got, err)
	}
}

func TestSetLatestKeepsBranchesApart(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	// Branch names that would collide, or be refused, if they were used as keys as they are.
	sets := []struct {
		task, branch, run string
	}{
		{task: "app", branch: "main", run: "k1"},
		{task: "app", branch: "feature/x", run: "k2"},
		{task: "app", branch: "feature.x", run: "k3"},
		{task: "app", branch: "feature x", run: "k4"},
		{task: "app", branch: "pr/7", run: "k5"},
		{task: "app", branch: "ünïcode-✓", run: "k6"},
		{task: "app", branch: "*", run: "k7"},
		{task: "app.main", branch: "x", run: "k8"},
		{task: "app", branch: "main.x", run: "k9"},
		{task: "other", branch: "main", run: "ka"},
	}
	for _, set := range sets {
		if err := s.SetLatest(ctx, set.task, set.branch, set.run); err != nil {
			t.Fatalf("SetLatest(%q, %q, %q): %v", set.task, set.branch, set.run, err)
		}
	}
	for _, set := range sets {
		t.Run(set.task+" "+set.branch, func(t *testing.T) {
			got, err := s.Latest(ctx, set.task, set.branch)
			if err != nil || got != set.run {
				t.Errorf("Latest(%q, %q) = %q, %v, want %q", set.task, set.branch, got, err, set.run)
			}
		})
	}
}

func TestSetLatestOnlyMovesForward(t *testing.T) {
	tests := []struct {
		name string
		sets []string
		want string
	}{
		{name: "in order", sets: []string{"k1", "k2", "k3"}, want: "k3"},
		{name: "an older run recorded last", sets: []string{"k5", "k3"}, want: "k5"},
		{name: "base 36 order, not text order", sets: []string{"kz", "k10"}, want: "k10"},
		{name: "the same run again", sets: []string{"k4", "k4"}, want: "k4"},
		{name: "an ID not from the counter replaces", sets: []string{"k9", "manual-1"}, want: "manual-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := t.Context()
			for _, id := range tt.sets {
				if err := s.SetLatest(ctx, "app", "main", id); err != nil {
					t.Fatalf("SetLatest(app, main, %s): %v", id, err)
				}
			}
			if got, err := s.Latest(ctx, "app", "main"); err != nil || got != tt.want {
				t.Errorf("Latest(app, main) after %v = %q, %v, want %q", tt.sets, got, err, tt.want)
			}
		})
	}
}

func TestSetLatestConcurrentKeepsTheNewest(t *testing.T) {
	srv := startServer(t, t.TempDir())
	stores := []*store.Store{
		openStore(t, connect(t, srv), store.Config{}),
		openStore(t, connect(t, srv), store.Config{}),
	}
	const runs = 40
	var wg sync.WaitGroup
	for n := runs; n >= 1; n-- {
		wg.Go(func() {
			if err := stores[n%2].SetLatest(t.Context(), "app", "main", store.FormatRunID(uint64(n))); err != nil {
				t.Errorf("SetLatest(k%d): %v", n, err)
			}
		})
	}
	wg.Wait()
	want := store.FormatRunID(runs)
	if got, err := stores[0].Latest(t.Context(), "app", "main"); err != nil || got != want {
		t.Errorf("Latest after %d concurrent SetLatest = %q, %v, want %q", runs, got, err, want)
	}
}

func TestSetLatestRejects(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name, task, branch, run string
	}{
		{name: "no task", task: "", branch: "main", run: "k1"},
		{name: "no branch", task: "app", branch: "", run: "k1"},
		{name: "not a run ID", task: "app", branch: "main", run: "k1.k2"},
		{name: "no run", task: "app", branch: "main", run: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetLatest(t.Context(), tt.task, tt.branch, tt.run)
			if proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("SetLatest(%q, %q, %q) = %v, want a %s error", tt.task, tt.branch, tt.run, err, proto.Invalid)
			}
		})
	}
	if _, err := s.Latest(t.Context(), "", "main"); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Latest(\"\", main) = %v, want a %s error", err, proto.Invalid)
	}
}
