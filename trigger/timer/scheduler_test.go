package timer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/queue"
)

// t0 is where the tests' clocks start: 30 seconds into a minute.
var t0 = time.Date(2026, 3, 4, 10, 0, 30, 0, time.UTC)

const headCommit = "0123456789abcdef0123456789abcdef01234567"

// at is the whole minute m minutes after 10:00 of t0's day.
func at(m int) time.Time {
	return time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(m) * time.Minute)
}

// newScheduler returns a Scheduler on env whose ResolveRef says every branch is at headCommit.
func newScheduler(t *testing.T, env *storetest.Env) *Scheduler {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &Scheduler{
		Store: env.Store,
		Runs: &queue.Head{
			Queue:           queue.New(env.Store, env.JS, nil),
			Store:           env.Store,
			DefaultRegistry: "registry.local",
			ResolveRef: func(ctx context.Context, url, ref, token string) (string, string, error) {
				return headCommit, "refs/heads/" + ref, nil
			},
			Logger: logger,
		},
		Logger: logger,
	}
}

// createTask stores a task with timers, last changed at updated.
func createTask(t *testing.T, st *store.Store, name string, updated time.Time, timers ...*proto.Timer) {
	t.Helper()
	task := &proto.Task{Name: name, Source: &proto.GitContext{Url: "https://git.example/" + name + ".git", Ref: "main"},
		Dockerfile: "Dockerfile", Tags: []string{name + ":{{.Run.TriggeredBy}}-{{.Run.ID}}"}, Push: true, LatestOnly: true,
		Timers: timers, CreatedAt: timestamppb.New(updated), UpdatedAt: timestamppb.New(updated)}
	if err := st.CreateTask(t.Context(), task); err != nil {
		t.Fatalf("CreateTask(%s): %v", name, err)
	}
}

// setTimers replaces the timers of task name, last changed at updated.
func setTimers(t *testing.T, st *store.Store, name string, updated time.Time, timers ...*proto.Timer) {
	t.Helper()
	if _, err := st.UpdateTask(t.Context(), name, func(task *proto.Task) error {
		task.Timers, task.UpdatedAt = timers, timestamppb.New(updated)
		return nil
	}); err != nil {
		t.Fatalf("UpdateTask(%s): %v", name, err)
	}
}

// tick ticks s at now and fails the test on an error.
func tick(t *testing.T, s *Scheduler, now time.Time) []string {
	t.Helper()
	ids, err := s.Tick(t.Context(), now)
	if err != nil {
		t.Fatalf("Tick(%s): %v", now, err)
	}
	return ids
}

// tickMinutes ticks s once a minute, 30 seconds into it, from minute first to minute last after 10:00, and
// returns the IDs of the runs started.
func tickMinutes(t *testing.T, s *Scheduler, first, last int) []string {
	t.Helper()
	var ids []string
	for m := first; m <= last; m++ {
		ids = append(ids, tick(t, s, at(m).Add(30*time.Second))...)
	}
	return ids
}

// fired lists the store's timer runs as "task/timer@HH:MM", sorted.
func fired(t *testing.T, st *store.Store) []string {
	t.Helper()
	runs, err := st.ListRuns(t.Context(), store.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	var out []string
	for _, r := range runs {
		if r.GetTrigger() != proto.Trigger_TIMER {
			t.Errorf("run %s has trigger %s, want TIMER", r.GetId(), r.GetTrigger())
		}
		out = append(out, fmt.Sprintf("%s/%s@%s", r.GetTaskName(), r.GetTimer().GetName(),
			r.GetTimer().GetScheduledAt().AsTime().Format("15:04")))
	}
	sort.Strings(out)
	return out
}

func TestTickFiresEachOccurrence(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "five", Schedule: "*/5 * * * *"})
	s := newScheduler(t, env)

	ids := tickMinutes(t, s, 0, 20)
	want := []string{"app/five@10:05", "app/five@10:10", "app/five@10:15", "app/five@10:20"}
	if got := fired(t, env.Store); !slices.Equal(got, want) {
		t.Errorf("runs after ticking 10:00 to 10:20 = %v, want %v", got, want)
	}
	if len(ids) != 4 {
		t.Fatalf("Tick started %v, want 4 runs", ids)
	}

	run, err := env.Store.Run(t.Context(), ids[0])
	if err != nil {
		t.Fatalf("Run(%s): %v", ids[0], err)
	}
	if got, want := run.GetTimer().GetScheduledAt().AsTime(), at(5); !got.Equal(want) {
		t.Errorf("run %s scheduled at %s, want %s", run.GetId(), got, want)
	}
	if got, want := run.GetQueuedAt().AsTime(), at(5).Add(30*time.Second); !got.Equal(want) {
		t.Errorf("run %s queued at %s, want the tick's time %s", run.GetId(), got, want)
	}
	git := run.GetGit()
	if git.GetRepository() != "https://git.example/app.git" || git.GetRef() != "refs/heads/main" || git.GetCommit() != headCommit {
		t.Errorf("run %s git = %v, want the task's repository at the resolved head", run.GetId(), git)
	}
	spec := run.GetSpec()
	if spec.GetGit().GetCommit() != headCommit || spec.GetTaskName() != "app" || !spec.GetPush() ||
		!slices.Equal(spec.GetTags(), []string{"registry.local/app:timer-" + run.GetId()}) {
		t.Errorf("run %s spec = %v, want the task's build of %s tagged by a timer", run.GetId(), spec, headCommit)
	}
	if run.GetStatus() != proto.Status_QUEUED {
		t.Errorf("run %s status = %s, want QUEUED", run.GetId(), run.GetStatus())
	}
	latest, err := env.Store.Latest(t.Context(), "app", "main")
	if err != nil || latest != ids[3] {
		t.Errorf("Latest(app, main) = %q, %v; want the last run %s", latest, err, ids[3])
	}
}

func TestTwoSchedulersStartOneRunPerOccurrence(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "minutely", Schedule: "* * * * *"},
		&proto.Timer{Name: "even", Schedule: "*/2 * * * *"})
	createTask(t, env.Store, "web", t0, &proto.Timer{Name: "t1", Schedule: "*/3 * * * *"})
	a, b := newScheduler(t, env), newScheduler(t, env)

	var started atomic.Int64
	for m := 0; m <= 12; m++ {
		var wg sync.WaitGroup
		for i, s := range []*Scheduler{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The two processes' clocks differ by a fraction of a second.
				ids, err := s.Tick(context.Background(), at(m).Add(2*time.Second+time.Duration(i)*300*time.Millisecond))
				if err != nil {
					t.Errorf("Tick: %v", err)
				}
				started.Add(int64(len(ids)))
			}()
		}
		wg.Wait()
	}

	var want []string
	for m := 1; m <= 12; m++ {
		want = append(want, fmt.Sprintf("app/minutely@10:%02d", m))
		if m%2 == 0 {
			want = append(want, fmt.Sprintf("app/even@10:%02d", m))
		}
		if m%3 == 0 {
			want = append(want, fmt.Sprintf("web/t1@10:%02d", m))
		}
	}
	sort.Strings(want)
	if got := fired(t, env.Store); !slices.Equal(got, want) {
		t.Errorf("runs of two schedulers ticking 10:00 to 10:12 =\n%v\nwant one per occurrence:\n%v", got, want)
	}
	if started.Load() != int64(len(want)) {
		t.Errorf("the schedulers say they started %d runs, want %d", started.Load(), len(want))
	}
}

func TestTimerChanges(t *testing.T) {
	env := storetest.New(t)
	st := env.Store
	createTask(t, st, "off", t0, &proto.Timer{Name: "t1", Schedule: "* * * * *", Disabled: true})
	createTask(t, st, "gone", t0, &proto.Timer{Name: "t1", Schedule: "*/2 * * * *"})
	createTask(t, st, "moved", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	s := newScheduler(t, env)

	tickMinutes(t, s, 0, 4) // gone fires at 10:02 and 10:04
	if err := st.DeleteTask(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	setTimers(t, st, "moved", at(4).Add(40*time.Second), &proto.Timer{Name: "t1", Schedule: "*/3 * * * *"})
	tickMinutes(t, s, 5, 9) // moved now fires at 10:06 and 10:09, not 10:05
	setTimers(t, st, "off", at(9).Add(40*time.Second), &proto.Timer{Name: "t1", Schedule: "* * * * *"})
	tickMinutes(t, s, 10, 11)

	want := []string{"gone/t1@10:02", "gone/t1@10:04", "moved/t1@10:06", "moved/t1@10:09", "off/t1@10:10", "off/t1@10:11"}
	if got := fired(t, st); !slices.Equal(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

func TestMissedOccurrences(t *testing.T) {
	tests := []struct {
		name    string
		updated time.Time // when the task last changed
		timers  []*proto.Timer
		ticks   []time.Time // of one Scheduler, the first being its first tick
		want    []string
	}{
		{
			name:    "a first tick starts the latest occurrence of the last five minutes, once",
			updated: at(-60),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "* * * * *"}},
			ticks:   []time.Time{at(7).Add(30 * time.Second)},
			want:    []string{"app/t1@10:07"},
		},
		{
			name:    "an occurrence four minutes ago is caught up",
			updated: at(-60),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "*/5 * * * *"}},
			ticks:   []time.Time{at(14).Add(30 * time.Second), at(15).Add(30 * time.Second)},
			want:    []string{"app/t1@10:10", "app/t1@10:15"},
		},
		{
			name:    "an occurrence over five minutes ago is not",
			updated: at(-60),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "0 * * * *"}},
			ticks:   []time.Time{at(5).Add(30 * time.Second), at(6).Add(30 * time.Second)},
			want:    nil,
		},
		{
			name:    "not an occurrence from before the timer was added",
			updated: at(7).Add(10 * time.Second),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "*/5 * * * *"}},
			ticks:   []time.Time{at(8).Add(30 * time.Second), at(9).Add(30 * time.Second), at(10).Add(30 * time.Second)},
			want:    []string{"app/t1@10:10"},
		},
		{
			name:    "a late tick starts only the latest occurrence since the last one",
			updated: at(-60),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "* * * * *"}},
			ticks:   []time.Time{at(0).Add(30 * time.Second), at(4).Add(30 * time.Second), at(5).Add(30 * time.Second)},
			want:    []string{"app/t1@10:00", "app/t1@10:04", "app/t1@10:05"},
		},
		{
			name:    "a tick after a long pause starts nothing old",
			updated: at(-60),
			timers:  []*proto.Timer{{Name: "t1", Schedule: "*/10 * * * *"}},
			ticks:   []time.Time{at(0).Add(30 * time.Second), at(17).Add(30 * time.Second), at(20).Add(30 * time.Second)},
			want:    []string{"app/t1@10:00", "app/t1@10:20"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := storetest.New(t)
			createTask(t, env.Store, "app", tt.updated, tt.timers...)
			s := newScheduler(t, env)
			for _, now := range tt.ticks {
				tick(t, s, now)
			}
			if got := fired(t, env.Store); !slices.Equal(got, tt.want) {
				t.Errorf("runs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRestartDoesNotStartTwice(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	tickMinutes(t, newScheduler(t, env), 0, 6)
	// A new process (or this one restarted) catches up on 10:05, which the first has started already.
	if ids := tickMinutes(t, newScheduler(t, env), 7, 10); len(ids) != 1 {
		t.Errorf("the second scheduler started %v, want only 10:10's run", ids)
	}
	if got, want := fired(t, env.Store), []string{"app/t1@10:05", "app/t1@10:10"}; !slices.Equal(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

// flakyStore fails ListTasks while down is set.
type flakyStore struct {
	*store.Store
	down atomic.Bool
}

func (f *flakyStore) ListTasks(ctx context.Context) ([]*proto.Task, error) {
	if f.down.Load() {
		return nil, proto.Errorf(proto.Unavailable, "the store is down")
	}
	return f.Store.ListTasks(ctx)
}

// flakyStarter fails the first fails Starts, as JetStream being down would.
type flakyStarter struct {
	Starter
	fails atomic.Int64
}

func (f *flakyStarter) Start(ctx context.Context, task *proto.Task, trigger proto.Trigger, by string, now time.Time,
	edit func(r *proto.Run)) (string, error) {
	if f.fails.Add(-1) >= 0 {
		return "", proto.Errorf(proto.Unavailable, "could not enqueue a run of %s", task.GetName())
	}
	return f.Starter.Start(ctx, task, trigger, by, now, edit)
}

func TestStoreUnavailable(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	s := newScheduler(t, env)
	fs := &flakyStore{Store: env.Store}
	s.Store = fs

	tickMinutes(t, s, 0, 4)
	fs.down.Store(true)
	if _, err := s.Tick(t.Context(), at(5).Add(2*time.Second)); proto.ErrorCode(err) != proto.Unavailable {
		t.Fatalf("Tick with the store down = %v, want unavailable", err)
	}
	fs.down.Store(false)
	if ids := tick(t, s, at(5).Add(7*time.Second)); len(ids) != 1 {
		t.Errorf("the tick after the store came back started %v, want 10:05's run", ids)
	}
	if got, want := fired(t, env.Store), []string{"app/t1@10:05"}; !slices.Equal(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

func TestRunNotQueuedIsRetried(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	s := newScheduler(t, env)
	q := &flakyStarter{Starter: s.Runs}
	q.fails.Store(1)
	s.Runs = q

	tickMinutes(t, s, 0, 4)
	ids, err := s.Tick(t.Context(), at(5).Add(2*time.Second))
	if len(ids) != 0 || proto.ErrorCode(err) != proto.Unavailable || !strings.Contains(err.Error(), "timer t1 of task app") {
		t.Fatalf("Tick with the queue down = %v, %v; want no run and an unavailable error naming the timer", ids, err)
	}
	// Another process may take it, or this one on its next tick.
	if ids := tick(t, newScheduler(t, env), at(5).Add(5*time.Second)); len(ids) != 1 {
		t.Errorf("another scheduler's tick started %v, want the unqueued occurrence", ids)
	}
	q.fails.Store(1)
	tick(t, s, at(6).Add(2*time.Second)) // nothing due
	if _, err := s.Tick(t.Context(), at(10).Add(2*time.Second)); err == nil {
		t.Fatalf("Tick with the queue down = nil error, want one")
	}
	if ids := tick(t, s, at(11).Add(2*time.Second)); len(ids) != 1 {
		t.Errorf("the next tick started %v, want 10:10's run, retried", ids)
	}
	if got, want := fired(t, env.Store), []string{"app/t1@10:05", "app/t1@10:10"}; !slices.Equal(got, want) {
		t.Errorf("runs = %v, want %v", got, want)
	}
}

func TestStartWithoutCommit(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	s := newScheduler(t, env)
	s.Runs.(*queue.Head).ResolveRef = func(ctx context.Context, url, ref, token string) (string, string, error) {
		return "", "", errors.New("the git server is down")
	}
	ids := tickMinutes(t, s, 4, 5)
	if len(ids) != 1 {
		t.Fatalf("ticks started %v, want one run", ids)
	}
	run, err := env.Store.Run(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if run.GetGit().GetRef() != "main" || run.GetGit().GetCommit() != "" || run.GetSpec().GetGit().GetCommit() != "" {
		t.Errorf("run git = %v, spec git = %v; want the branch with no commit, for the worker to resolve",
			run.GetGit(), run.GetSpec().GetGit())
	}
}

func TestBadTagIsNotRetried(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", t0, &proto.Timer{Name: "t1", Schedule: "*/5 * * * *"})
	if _, err := env.Store.UpdateTask(t.Context(), "app", func(task *proto.Task) error {
		task.Tags = []string{"app:{{.Run.Nope}}"} // saved before tags were checked, say
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := newScheduler(t, env)
	tickMinutes(t, s, 0, 4)
	if _, err := s.Tick(t.Context(), at(5).Add(2*time.Second)); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Tick of a task whose tag does not render = %v, want invalid", err)
	}
	if len(s.retry) != 0 {
		t.Errorf("retry = %v, want nothing: the tag fails again", s.retry)
	}
}

// TestRun runs a Scheduler by a clock set just before a minute boundary: it ticks at once, then after the
// boundary. It takes about three seconds.
func TestRun(t *testing.T) {
	env := storetest.New(t)
	createTask(t, env.Store, "app", time.Now().Add(-time.Hour), &proto.Timer{Name: "t1", Schedule: "* * * * *"})
	real := time.Now()
	shift := real.Truncate(time.Minute).Add(time.Minute - 500*time.Millisecond).Sub(real)
	s := newScheduler(t, env)
	s.Now = func() time.Time { return time.Now().Add(shift) }

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(15 * time.Second)
	var got []string
	for len(got) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = fired(t, env.Store)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once ctx ends", err)
	}
	first := real.Add(shift).Truncate(time.Minute)
	want := []string{"app/t1@" + first.Format("15:04"), "app/t1@" + first.Add(time.Minute).Format("15:04")}
	if !slices.Equal(got, want) {
		t.Errorf("runs of Run over a minute boundary = %v, want %v", got, want)
	}
}
