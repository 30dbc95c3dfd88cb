package github

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// t0 is when the test runs start.
var t0 = time.Date(2026, 5, 3, 4, 33, 42, 0, time.UTC)

// longError is a run error longer than a description quotes.
var longError = "RUN make test: exit code 2\n" + strings.Repeat("x", 120)

// testRun returns run id, of task web, at commit sha, in status s, with the times and error a run in s has.
func testRun(id string, s proto.Status, sha string) *proto.Run {
	r := &proto.Run{Id: id, Status: s, TaskName: "web", Trigger: proto.Trigger_COMMIT, QueuedAt: timestamppb.New(t0)}
	if sha != "" {
		r.Git = &proto.GitTrigger{Repository: "https://github.com/acme/app.git", Ref: "refs/heads/main", Commit: sha}
	}
	if s != proto.Status_QUEUED {
		r.StartedAt = timestamppb.New(t0.Add(3 * time.Second))
	}
	if proto.Terminal(s) {
		r.FinishedAt = timestamppb.New(t0.Add(15*time.Second + 400*time.Millisecond))
	}
	switch s {
	case proto.Status_FAILED:
		r.Error = longError
	case proto.Status_ERROR:
		r.Error = "the build context vanished"
	case proto.Status_CANCELED:
		r.Error = "canceled by a user"
	}
	return r
}

func TestCommitStatus(t *testing.T) {
	for _, tc := range []struct {
		status    proto.Status
		publicURL string
		state     string
		desc      string
		target    string
	}{
		{proto.Status_QUEUED, publicURL, "pending", "Run k4 is queued", publicURL + "/v1/runs/k4/log"},
		{proto.Status_RUNNING, publicURL, "pending", "Run k4 is running", publicURL + "/v1/runs/k4/log"},
		{proto.Status_SUCCEEDED, publicURL, "success", "Run k4 succeeded in 12s", publicURL + "/v1/runs/k4/log"},
		{proto.Status_SUCCEEDED, "", "success", "Run k4 succeeded in 12s", ""},
		{proto.Status_FAILED, publicURL, "failure", "Run k4 failed: RUN make test: exit code 2 " + strings.Repeat("x", 73) + "…", publicURL + "/v1/runs/k4/log"},
		{proto.Status_CANCELED, publicURL, "error", "Run k4 was canceled", publicURL + "/v1/runs/k4/log"},
		{proto.Status_ERROR, publicURL, "error", "Kiln could not run k4: the build context vanished", publicURL + "/v1/runs/k4/log"},
		{proto.Status_TIMEOUT, publicURL, "error", "Run k4 timed out after 12s", publicURL + "/v1/runs/k4/log"},
	} {
		t.Run(tc.status.String(), func(t *testing.T) {
			s := commitStatus(testRun("k4", tc.status, "abc"), "web", tc.publicURL)
			if s.GetState() != tc.state || s.GetDescription() != tc.desc || s.GetTargetURL() != tc.target ||
				s.GetContext() != "kiln/web" {
				t.Errorf("commitStatus(%s) = %s %q %q %s, want %s %q %q kiln/web", tc.status,
					s.GetState(), s.GetDescription(), s.GetTargetURL(), s.GetContext(), tc.state, tc.desc, tc.target)
			}
			if n := len([]rune(s.GetDescription())); n > maxDescriptionRunes {
				t.Errorf("description has %d characters, more than GitHub's %d", n, maxDescriptionRunes)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		if got := backoff(tc.attempt); got != tc.want {
			t.Errorf("backoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}
