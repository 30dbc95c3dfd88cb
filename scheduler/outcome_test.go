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
		{"shutdown", canceledBy(errShutdown), context.Canceled, outcome{requeue: true, message: "the worker running it shut down"}},
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
