package api

import (
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// Step is how one step of a multi-step run went, as the API shows it.
type Step struct {
	ID string `json:"id"`
	// Kind is build, cmd or push.
	Kind string `json:"kind"`
	// Status is Queued until the step starts, then as a run's; Skipped when a step it waited for failed.
	Status     string     `json:"status"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	ExitCode   int        `json:"exitCode,omitempty"`
	// Images are what a build step built or a push step pushed.
	Images       []Image `json:"images,omitempty"`
	Attempts     int     `json:"attempts,omitempty"`
	Error        string  `json:"error,omitempty"`
	ErrorIgnored bool    `json:"errorIgnored,omitempty"`
}

// TimerTrigger is the timer occurrence that started a run.
type TimerTrigger struct {
	Name        string    `json:"name"`
	ScheduledAt time.Time `json:"scheduledAt"`
}

// stepsOf returns the API's view of a run's steps.
func stepsOf(r *proto.Run) []Step {
	var out []Step
	for _, s := range r.GetSteps() {
		status := StatusName(s.GetStatus())
		if s.GetStatus() == proto.Status_STATUS_UNSPECIFIED {
			status = "Skipped"
		}
		st := Step{ID: s.GetId(), Kind: s.GetKind(), Status: status, StartedAt: timeOf(s.GetStartedAt()),
			FinishedAt: timeOf(s.GetFinishedAt()), ExitCode: int(s.GetExitCode()), Attempts: int(s.GetAttempts()),
			Error: s.GetError(), ErrorIgnored: s.GetErrorIgnored()}
		for _, im := range s.GetImages() {
			st.Images = append(st.Images, Image{Reference: im.GetReference(), Digest: im.GetDigest()})
		}
		out = append(out, st)
	}
	return out
}

// timerOf returns the API's view of the timer occurrence that started r, or nil.
func timerOf(r *proto.Run) *TimerTrigger {
	t := r.GetTimer()
	if t == nil {
		return nil
	}
	return &TimerTrigger{Name: t.GetName(), ScheduledAt: t.GetScheduledAt().AsTime().UTC()}
}
