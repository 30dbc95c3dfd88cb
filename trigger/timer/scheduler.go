package timer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// Defaults and bounds of a Scheduler.
const (
	// DefaultCatchUp is how old an occurrence may be and still start its run, when Scheduler.CatchUp is zero.
	DefaultCatchUp = 5 * time.Minute
	// wakeOffset is how long after a minute boundary Run ticks, so that the minute has begun on every
	// process even when their clocks differ a little.
	wakeOffset = 2 * time.Second
	// retryDelay is how soon Run ticks again after a tick that failed, instead of waiting for the next minute.
	retryDelay = 5 * time.Second
	// parallel bounds the runs one tick queues at once: each may wait on a git server.
	parallel = 8
	// listTimeout bounds reading the tasks, so that a store that does not answer fails the tick, to be
	// tried again, instead of holding it.
	listTimeout = 20 * time.Second
	// startTimeout bounds starting one run. It runs on a context that Run's end does not cancel, so that a
	// shutdown lets the runs under way be queued (or handed back) rather than cut off half way.
	startTimeout = 30 * time.Second
)

// Store is what the Scheduler needs of the store. *store.Store satisfies it.
type Store interface {
	ListTasks(ctx context.Context) ([]*proto.Task, error)
	MarkDelivery(ctx context.Context, source, id string) (first bool, err error)
	UnmarkDelivery(ctx context.Context, source, id string) error
}

// Starter starts a run of the head of a task's branch; *queue.Head is one.
type Starter interface {
	Start(ctx context.Context, task *proto.Task, trigger proto.Trigger, triggeredBy string, now time.Time,
		edit func(r *proto.Run)) (string, error)
}

// Scheduler starts the runs of tasks' timers. Any number of Schedulers, in as many processes, share one store:
// each occurrence starts one run.
type Scheduler struct {
	Store Store
	Runs  Starter
	// CatchUp is how old an occurrence may be and still start its run; zero means DefaultCatchUp.
	CatchUp time.Duration
	Logger  *slog.Logger
	// Now is the clock Run ticks by; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	last  time.Time            // the time of the last tick that read the tasks; zero before the first
	retry map[string]time.Time // timer key → the occurrence whose run could not be queued, to try again
}

// Run ticks at once, then just after each minute boundary, until ctx ends. A tick that fails (the store
// unavailable) is tried again a few seconds later; the occurrences it missed are still due then. Run returns
// nil when ctx ends, after the tick under way has finished.
func (s *Scheduler) Run(ctx context.Context) error {
	s.defaults()
	for {
		now := s.Now()
		_, err := s.Tick(ctx, now)
		if ctx.Err() != nil {
			return nil
		}
		wake := now.Truncate(time.Minute).Add(time.Minute + wakeOffset)
		if err != nil {
			s.Logger.WarnContext(ctx, "a timer tick failed; trying again soon", "err", err)
			if soon := s.Now().Add(retryDelay); soon.Before(wake) {
				wake = soon
			}
		}
		t := time.NewTimer(wake.Sub(s.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// defaults fills the zero fields that have one.
func (s *Scheduler) defaults() {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
}

func (s *Scheduler) catchUp() time.Duration {
	if s.CatchUp <= 0 {
		return DefaultCatchUp
	}
	return s.CatchUp
}

// occurrence is one firing of one timer of one task.
type occurrence struct {
	task  *proto.Task
	timer string
	at    time.Time
}

// key names the timer of o among all timers.
func (o occurrence) key() string { return timerKey(o.task.GetName(), o.timer) }

func timerKey(task, timer string) string { return task + "/" + timer }

// Tick starts the runs of every enabled timer of every task whose occurrence has come since the last tick, as
// of now, and returns their IDs. Per timer it starts at most one run, for the latest such occurrence, and
// none for an occurrence more than CatchUp before now; the first tick looks back CatchUp, but not before the
// task's last change. An occurrence that another Scheduler started already is skipped. When the tasks cannot
// be read nothing is started and the next tick looks back as far as this one would have; a run that could not
// be queued is tried again by the next tick. Tick returns every failure, joined.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) (started []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaults()
	now = now.UTC()
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	tasks, err := s.Store.ListTasks(lctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("reading the tasks' timers: %w", err)
	}
	due := s.due(ctx, tasks, now)
	s.last = now

	ids := make([]string, len(due))
	errs := make([]error, len(due))
	retry := make([]bool, len(due))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, o := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
			defer cancel()
			ids[i], retry[i], errs[i] = s.fire(fctx, o, now)
		}()
	}
	wg.Wait()

	s.retry = make(map[string]time.Time)
	for i, o := range due {
		if retry[i] {
			s.retry[o.key()] = o.at
		}
		if ids[i] != "" {
			started = append(started, ids[i])
		}
	}
	return started, errors.Join(errs...)
}

// due returns the occurrence each enabled timer of tasks is due to start as of now, by task and timer.
func (s *Scheduler) due(ctx context.Context, tasks []*proto.Task, now time.Time) []occurrence {
	floor := now.Add(-s.catchUp())
	var due []occurrence
	for _, task := range tasks {
		for _, tm := range task.GetTimers() {
			if tm.GetDisabled() {
				continue
			}
			sched, err := ParseSchedule(tm.GetSchedule())
			if err != nil {
				s.Logger.WarnContext(ctx, "skipping a timer whose schedule does not parse",
					"task", task.GetName(), "timer", tm.GetName(), "err", err)
				continue
			}
			from := s.last
			if from.IsZero() { // the first tick: catch up, but not on occurrences from before the task changed
				from = floor
				if u := task.GetUpdatedAt(); u != nil && u.AsTime().After(from) {
					from = u.AsTime()
				}
			}
			if r, ok := s.retry[timerKey(task.GetName(), tm.GetName())]; ok && !r.After(from) {
				from = r.Add(-time.Nanosecond)
			}
			from = later(from, floor)
			if at, ok := sched.Latest(from, now); ok {
				due = append(due, occurrence{task: task, timer: tm.GetName(), at: at})
			}
		}
	}
	return due
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
