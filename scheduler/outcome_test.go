package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

func TestOutcomeOf(t *testing.T) {
	canceledBy := func(cause error) context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		return ctx
	}
	live := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want outcome
	}{
		{"success", live, nil, outcome{status: proto.Status_SUCCEEDED}},
		{"canceled", canceledBy(errCanceled), context.Canceled, outcome{status: proto.Status_CANCELED, message: "canceled by request"}},
		{"timed out", canceledBy(errTimeout), context.DeadlineExceeded, outcome{status: proto.Status_TIMEOUT, message: "the run took longer than its timeout of 1m0s"}},
		{"shutdown", canceledBy(errShutdown), context.Canceled, outcome{requeue: true, handBack: true, message: "the worker running it shut down"}},
		{"buildkitd lost", live, proto.Errorf(proto.Unavailable, "buildkitd went away"), outcome{requeue: true, message: "buildkitd went away"}},
		{"build failed", live, proto.Errorf(proto.Invalid, "exit code: 3\nstack"), outcome{status: proto.Status_FAILED, message: "exit code: 3"}},
		{"context too large", live, proto.Errorf(proto.TooLarge, "over 1 GiB"), outcome{status: proto.Status_FAILED, message: "over 1 GiB"}},
		{"context gone", live, proto.Errorf(proto.NotFound, "no context"), outcome{status: proto.Status_ERROR, message: "no context"}},
		{"unexpected", live, errors.New("disk full"), outcome{status: proto.Status_ERROR, message: "disk full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcomeOf(tt.ctx, tt.err, time.Minute); got != tt.want {
				t.Errorf("outcomeOf(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}

func TestOutcomeWithin(t *testing.T) {
	lost := outcome{requeue: true, message: "buildkitd went away"}
	shutdown := outcome{requeue: true, handBack: true, message: "the worker running it shut down"}
	failed := outcome{status: proto.Status_FAILED, message: "exit code: 3"}
	tests := []struct {
		name    string
		out     outcome
		attempt int
		want    outcome
	}{
		{"lost, attempts left", lost, 2, lost},
		{"lost on the last attempt", lost, 3, outcome{status: proto.Status_ERROR,
			message: "attempt 3 of 3 stopped: buildkitd went away; Kiln gave up on it"}},
		{"lost past the last attempt", lost, 4, outcome{status: proto.Status_ERROR,
			message: "attempt 4 of 3 stopped: buildkitd went away; Kiln gave up on it"}},
		{"shutdown on the last attempt", shutdown, 3, shutdown},
		{"failed on the last attempt", failed, 3, failed},
		{"succeeded", outcome{status: proto.Status_SUCCEEDED}, 3, outcome{status: proto.Status_SUCCEEDED}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.out.within(tt.attempt, 3); got != tt.want {
				t.Errorf("%+v.within(%d, 3) = %+v, want %+v", tt.out, tt.attempt, got, tt.want)
			}
		})
	}
}
