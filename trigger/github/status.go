package github

import (
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// The limits GitHub and Kiln put on a status's description.
const (
	maxErrorRunes       = 100 // how much of a run's error a description quotes
	maxDescriptionRunes = 140 // GitHub's limit
)

// contextPrefix starts the context of every status Kiln posts; the task's name completes it.
const contextPrefix = "kiln/"

// commitStatus returns the commit status that says how run, of the task named taskName, is going. When
// publicURL is set the status links to the run's log there.
func commitStatus(run *proto.Run, taskName, publicURL string) *gh.RepoStatus {
	s := &gh.RepoStatus{
		State:       gh.String(state(run.GetStatus())),
		Context:     gh.String(contextPrefix + taskName),
		Description: gh.String(description(run)),
	}
	if publicURL != "" {
		s.TargetURL = gh.String(publicURL + "/v1/runs/" + run.GetId() + "/log")
	}
	return s
}

// state returns the commit status state GitHub shows for a run in status s.
func state(s proto.Status) string {
	switch s {
	case proto.Status_SUCCEEDED:
		return "success"
	case proto.Status_FAILED:
		return "failure"
	case proto.Status_CANCELED, proto.Status_ERROR, proto.Status_TIMEOUT:
		return "error"
	default: // Queued, Running
		return "pending"
	}
}

// description returns a short sentence about run: "Run k4 succeeded in 12s", "Run k4 failed: <its error>".
func description(run *proto.Run) string {
	id := run.GetId()
	var d string
	switch run.GetStatus() {
	case proto.Status_QUEUED:
		d = fmt.Sprintf("Run %s is queued", id)
	case proto.Status_RUNNING:
		d = fmt.Sprintf("Run %s is running", id)
	case proto.Status_SUCCEEDED:
		d = fmt.Sprintf("Run %s succeeded", id)
		if took, ok := duration(run); ok {
			d += " in " + took.String()
		}
	case proto.Status_FAILED:
		d = withError(fmt.Sprintf("Run %s failed", id), run.GetError())
	case proto.Status_CANCELED:
		d = fmt.Sprintf("Run %s was canceled", id)
	case proto.Status_TIMEOUT:
		d = fmt.Sprintf("Run %s timed out", id)
		if took, ok := duration(run); ok {
			d += " after " + took.String()
		}
	case proto.Status_ERROR:
		d = withError(fmt.Sprintf("Kiln could not run %s", id), run.GetError())
	default:
		d = fmt.Sprintf("Run %s is %s", id, strings.ToLower(run.GetStatus().String()))
	}
	return truncate(d, maxDescriptionRunes)
}

// withError appends the first maxErrorRunes of err, on one line, to sentence, with "…" when err was longer.
func withError(sentence, err string) string {
	err = strings.Join(strings.Fields(err), " ")
	if err == "" {
		return sentence
	}
	if cut := truncate(err, maxErrorRunes); cut != err {
		err = cut + "…"
	}
	return sentence + ": " + err
}

// duration returns how long run took, from its start (or, if it never started, its queueing) to its end,
// to the second.
func duration(run *proto.Run) (time.Duration, bool) {
	start := run.GetStartedAt()
	if start == nil {
		start = run.GetQueuedAt()
	}
	end := run.GetFinishedAt()
	if start == nil || end == nil {
		return 0, false
	}
	took := end.AsTime().Sub(start.AsTime()).Round(time.Second)
	return max(took, 0), true
}

// truncate returns s cut to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
