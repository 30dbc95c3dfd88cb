package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile"
)

// stepsOf is a task file of cmd steps with the given ids and waits (after[i] are indexes), as taskfile.Load
// gives them, for the graph's own tests: what each step does is the test's exec.
func stepsOf(ids []string, after [][]int, edit func(i int, s *taskfile.Step)) *taskfile.File {
	f := &taskfile.File{StepTimeout: time.Minute}
	for i, id := range ids {
		s := taskfile.Step{ID: id, Cmd: &taskfile.Cmd{Image: "x"}, After: after[i], Timeout: time.Minute}
		if edit != nil {
			edit(i, &s)
		}
		f.Steps = append(f.Steps, s)
	}
	return f
}

// runGraph runs f with exec and returns the error, the recorded steps and the log.
func runGraph(t *testing.T, f *taskfile.File, exec func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error)) (error, []*proto.StepResult, string) {
	t.Helper()
	var log bytes.Buffer
	rec := &stepRecorder{save: func([]*proto.StepResult) {}}
	for _, s := range f.Steps {
		rec.steps = append(rec.steps, &proto.StepResult{Id: s.ID, Status: proto.Status_QUEUED})
	}
	g := &graph{file: f, exec: exec, rec: rec, log: newStepLog(newRunLog(&log)), sleep: sleepCtx}
	err := g.run(t.Context())
	return err, rec.all(), log.String()
}

func TestGraphRunsIndependentStepsTogether(t *testing.T) {
	// a and b start at once; c waits for both. a and b each wait until the other has started, so the test
	// only ends if they run at the same time.
	f := stepsOf([]string{"a", "b", "c"}, [][]int{nil, nil, {0, 1}}, nil)
	var started sync.WaitGroup
	started.Add(2)
	var mu sync.Mutex
	var order []string
	_, steps, _ := runGraph(t, f, func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
		if i < 2 {
			started.Done()
			started.Wait()
		}
		mu.Lock()
		order = append(order, f.Steps[i].ID)
		mu.Unlock()
		return &proto.StepResult{}, nil
	})
	if order[2] != "c" {
		t.Errorf("order = %v, want c last", order)
	}
	for _, s := range steps {
		if s.GetStatus() != proto.Status_SUCCEEDED || s.GetAttempts() != 1 {
			t.Errorf("step %s = %v after %d attempts, want Succeeded after 1", s.GetId(), s.GetStatus(), s.GetAttempts())
		}
	}
}

func TestGraphFailure(t *testing.T) {
	boom := proto.Errorf(proto.Invalid, "the command exited with code 3")
	tests := []struct {
		name       string
		ignore     bool
		wantErr    bool
		wantStatus []proto.Status
	}{
		{"a failure ends the run and skips what waits", false, true,
			[]proto.Status{proto.Status_FAILED, proto.Status_STATUS_UNSPECIFIED}},
		{"ignoreErrors goes on", true, false,
			[]proto.Status{proto.Status_FAILED, proto.Status_SUCCEEDED}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := stepsOf([]string{"fail", "next"}, [][]int{nil, {0}}, func(i int, s *taskfile.Step) { s.IgnoreErrors = tt.ignore && i == 0 })
			err, steps, log := runGraph(t, f, func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
				if i == 0 {
					fmt.Fprintln(log, "about to fail")
					return &proto.StepResult{ExitCode: 3}, boom
				}
				return &proto.StepResult{}, nil
			})
			if (err != nil) != tt.wantErr || (err != nil && proto.ErrorCode(err) != proto.Invalid) {
				t.Errorf("run() = %v, want an Invalid error: %v", err, tt.wantErr)
			}
			for i, want := range tt.wantStatus {
				if got := steps[i].GetStatus(); got != want {
					t.Errorf("step %s = %v, want %v", steps[i].GetId(), got, want)
				}
			}
			if steps[0].GetExitCode() != 3 || steps[0].GetErrorIgnored() != tt.ignore {
				t.Errorf("step fail = %v, want exit code 3, ignored %v", steps[0], tt.ignore)
			}
			if !strings.Contains(log, "[fail] about to fail") {
				t.Errorf("log lacks the step's prefixed output:\n%s", log)
			}
		})
	}
}

func TestGraphCancelsStepsBesideAFailure(t *testing.T) {
	f := stepsOf([]string{"slow", "fail"}, [][]int{nil, nil}, nil)
	slowStarted := make(chan struct{})
	err, steps, _ := runGraph(t, f, func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
		if i == 1 {
			<-slowStarted // fail only once the step beside it runs
			return nil, proto.Errorf(proto.Invalid, "failed")
		}
		close(slowStarted)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err == nil || !strings.Contains(err.Error(), "fail") {
		t.Errorf("run() = %v, want step fail's error", err)
	}
	if steps[0].GetStatus() != proto.Status_CANCELED {
		t.Errorf("the step beside the failure = %v, want Canceled", steps[0].GetStatus())
	}
}

func TestGraphRetriesAndTimeout(t *testing.T) {
	f := stepsOf([]string{"flaky", "slow"}, [][]int{nil, {0}}, func(i int, s *taskfile.Step) {
		if i == 0 {
			s.Retries, s.RetryDelay = 3, time.Millisecond
		} else {
			s.Timeout = 50 * time.Millisecond
		}
	})
	attempts := 0
	err, steps, log := runGraph(t, f, func(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
		if i == 0 {
			if attempts++; attempts < 3 {
				return nil, errors.New("not yet")
			}
			return &proto.StepResult{}, nil
		}
		<-ctx.Done() // longer than its timeout
		return nil, ctx.Err()
	})
	if steps[0].GetAttempts() != 3 || steps[0].GetStatus() != proto.Status_SUCCEEDED {
		t.Errorf("step flaky = %v, want Succeeded on attempt 3", steps[0])
	}
	if err == nil || !strings.Contains(err.Error(), "timed out") || steps[1].GetStatus() != proto.Status_FAILED {
		t.Errorf("run() = %v, step slow %v; want slow failed, timed out", err, steps[1])
	}
	if !strings.Contains(log, "retry 1 of 3") {
		t.Errorf("log does not say the step is retried:\n%s", log)
	}
}
