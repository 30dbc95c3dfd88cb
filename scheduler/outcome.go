package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// The causes a build's context is canceled with; outcome tells them apart.
var (
	errCanceled = errors.New("canceled by request")
	errTimeout  = errors.New("timed out")
	errShutdown = errors.New("worker shutting down")
)

// outcome is how an attempt at a run ended: the status to record, or requeue when the run must go back to the
// queue for another worker (or this one, later) to take.
type outcome struct {
	status  proto.Status
	message string
	requeue bool
	// handBack says the worker stopped the attempt, not the run's build: the run goes back to the queue without
	// using up one of its attempts.
	handBack bool
}

// ended says how a run ended, for the last line of its log.
var ended = map[proto.Status]string{
	proto.Status_SUCCEEDED: "succeeded",
	proto.Status_FAILED:    "failed",
	proto.Status_CANCELED:  "was canceled",
	proto.Status_ERROR:     "ended in error",
	proto.Status_TIMEOUT:   "timed out",
}

// outcomeOf decides, from the error an attempt ended with and the cause its context was canceled with, what
// becomes of the run. This is the one table that maps error kinds to what a worker does with a message:
// Unavailable goes back to the queue (Nak), everything else ends the run (Ack). How many times a run may go back
// is within's to say.
func outcomeOf(ctx context.Context, err error, timeout time.Duration) outcome {
	if err == nil {
		return outcome{status: proto.Status_SUCCEEDED}
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCanceled):
		return outcome{status: proto.Status_CANCELED, message: "canceled by request"}
	case errors.Is(cause, errTimeout):
		return outcome{status: proto.Status_TIMEOUT, message: "the run took longer than its timeout of " + timeout.String()}
	case errors.Is(cause, errShutdown):
		return outcome{requeue: true, handBack: true, message: "the worker running it shut down"}
	}
	switch proto.ErrorCode(err) {
	case proto.Unavailable:
		return outcome{requeue: true, message: oneLine(err.Error())}
	case proto.Invalid, proto.TooLarge, proto.Unauthorized:
		return outcome{status: proto.Status_FAILED, message: oneLine(err.Error())}
	case proto.NotFound:
		return outcome{status: proto.Status_ERROR, message: oneLine(err.Error())}
	default:
		return outcome{status: proto.Status_ERROR, message: oneLine(err.Error())}
	}
}

// within returns o for a run's attempt number attempt of max: an attempt that would send the run back to the
// queue ends it Error instead when it was the last, whatever stopped it, saying why. A hand-back uses no attempt.
func (o outcome) within(attempt, max int) outcome {
	if !o.requeue || o.handBack || attempt < max {
		return o
	}
	return outcome{status: proto.Status_ERROR, message: gaveUp(attempt, max, o.message)}
}

// gaveUp is the error of a run whose last attempt, attempt of max, was stopped for reason.
func gaveUp(attempt, max int, reason string) string {
	return fmt.Sprintf("attempt %d of %d stopped: %s; Kiln gave up on it", attempt, max, reason)
}

// oneLine keeps the first line of s: run records carry a sentence, the log carries the rest.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}
