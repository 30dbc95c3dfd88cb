package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile"
)

// errStepFailed ends the steps still running when a step fails: the run has failed.
var errStepFailed = errors.New("a step failed")

// stepOutcome is how one step ended.
type stepOutcome struct {
	status  proto.Status
	err     error
	ignored bool
}

// graph runs the steps of file by their when: a step starts once every step it waits for has ended well (or
// failed with ignoreErrors), steps with nothing between them run at once, and the first step that fails for
// good cancels the others and ends the run. rec records each step's progress in the run's record.
type graph struct {
	file   *taskfile.File
	exec   func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error)
	rec    *stepRecorder
	log    *stepLog
	sleep  func(ctx context.Context, d time.Duration) error
	failed error // the first failure for good, under mu
	mu     sync.Mutex
}

// run runs every step and returns the first failure for good, or nil.
func (g *graph) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(g.file.Steps)
	done := make([]chan struct{}, n)
	outcomes := make([]stepOutcome, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, dep := range g.file.Steps[i].After {
				select {
				case <-done[dep]:
				case <-ctx.Done():
				}
				if ctx.Err() != nil || (outcomes[dep].status != proto.Status_SUCCEEDED && !outcomes[dep].ignored) {
					return // skipped: left unstarted in the record
				}
			}
			if ctx.Err() != nil {
				return
			}
			outcomes[i] = g.step(ctx, i)
			if outcomes[i].status != proto.Status_SUCCEEDED && !outcomes[i].ignored {
				g.mu.Lock()
				if g.failed == nil {
					g.failed = outcomes[i].err
				}
				g.mu.Unlock()
				cancel(errStepFailed)
			}
		}()
	}
	wg.Wait()
	for i, o := range outcomes {
		if o.status == proto.Status_STATUS_UNSPECIFIED { // never started: what it waited for failed
			g.rec.update(i, func(r *proto.StepResult) { r.Status = proto.Status_STATUS_UNSPECIFIED })
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return g.failed
}

// step runs step i: its start delay, then up to 1+retries attempts, each bounded by its timeout, with the
// retry delay between them. It logs the step's start and end and records them.
func (g *graph) step(ctx context.Context, i int) stepOutcome {
	st := g.file.Steps[i]
	if st.StartDelay > 0 {
		g.log.line(fmt.Sprintf("Step %s waits %s before it starts (startDelay)", st.ID, st.StartDelay))
		if err := g.sleep(ctx, st.StartDelay); err != nil {
			return stepOutcome{status: proto.Status_CANCELED, err: err}
		}
	}
	timeout := st.Timeout
	if timeout == 0 {
		timeout = g.file.StepTimeout
	}
	started := time.Now()
	g.log.line(fmt.Sprintf("Step %s (%s) started at %s", st.ID, st.Kind(), started.UTC().Format(stepClock)))
	g.rec.update(i, func(r *proto.StepResult) {
		r.Status = proto.Status_RUNNING
		r.StartedAt = timestamppb.New(started)
	})
	var res *proto.StepResult
	var err error
	attempts := 0
	for {
		attempts++
		w := g.log.step(st.ID)
		actx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("step %s timed out after %s", st.ID, timeout))
		res, err = g.exec(actx, i, w)
		w.Close()
		timedOut := errors.Is(context.Cause(actx), context.DeadlineExceeded) || (actx.Err() != nil && ctx.Err() == nil)
		cancel()
		if err != nil && timedOut {
			err = proto.Errorf(proto.Invalid, "step %s timed out after %s", st.ID, timeout)
		}
		if err == nil || ctx.Err() != nil || attempts > st.Retries {
			break
		}
		g.log.line(fmt.Sprintf("Step %s failed (%v); retry %d of %d in %s", st.ID, err, attempts, st.Retries, st.RetryDelay))
		if serr := g.sleep(ctx, st.RetryDelay); serr != nil {
			break
		}
	}
	out := stepOutcome{status: proto.Status_SUCCEEDED}
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errStepFailed):
		out = stepOutcome{status: proto.Status_CANCELED, err: err}
	case ctx.Err() != nil:
		out = stepOutcome{status: proto.Status_CANCELED, err: err}
	default:
		status := proto.Status_FAILED
		if proto.ErrorCode(err) != proto.Invalid {
			status = proto.Status_ERROR
		}
		out = stepOutcome{status: status, err: fmt.Errorf("step %s: %w", st.ID, err), ignored: st.IgnoreErrors}
	}
	ended := time.Now()
	msg := fmt.Sprintf("Step %s %s at %s after %s", st.ID, stepEnded[out.status], ended.UTC().Format(stepClock),
		ended.Sub(started).Round(time.Millisecond))
	if out.err != nil {
		msg += ": " + err.Error()
	}
	if out.ignored {
		msg += " (ignored: ignoreErrors)"
	}
	g.log.line(msg)
	g.rec.update(i, func(r *proto.StepResult) {
		r.Status = out.status
		r.FinishedAt = timestamppb.Now()
		r.Attempts = int32(attempts)
		r.ErrorIgnored = out.ignored
		if res != nil {
			r.ExitCode = res.GetExitCode()
			r.Images = res.GetImages()
		}
		if out.err != nil {
			r.Error = err.Error()
		}
	})
	return out
}

// stepClock is how the log tells the time a step starts and ends, UTC to the millisecond: parallel steps show
// their overlap by it.
const stepClock = "15:04:05.000"

// stepEnded says how a step ended, in its log line.
var stepEnded = map[proto.Status]string{
	proto.Status_SUCCEEDED: "succeeded",
	proto.Status_FAILED:    "failed",
	proto.Status_ERROR:     "could not run",
	proto.Status_CANCELED:  "canceled",
	proto.Status_TIMEOUT:   "timed out",
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// stepRecorder keeps the run's steps in its record as they start and end, so that a run's record shows where
// a multi-step run is while it goes. A record it cannot write is logged; the run goes on.
type stepRecorder struct {
	mu    sync.Mutex
	steps []*proto.StepResult
	save  func(steps []*proto.StepResult)
}

func (r *stepRecorder) update(i int, fn func(r *proto.StepResult)) {
	r.mu.Lock()
	fn(r.steps[i])
	snapshot := make([]*proto.StepResult, len(r.steps))
	for j, s := range r.steps {
		snapshot[j] = cloneStep(s)
	}
	r.mu.Unlock()
	r.save(snapshot)
}

func (r *stepRecorder) all() []*proto.StepResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*proto.StepResult, len(r.steps))
	for j, s := range r.steps {
		out[j] = cloneStep(s)
	}
	return out
}
