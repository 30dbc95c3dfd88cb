package github

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// statusRequest is the request that posts a commit status of run k1 of task web on acme/app, with the API's
// paths starting with prefix.
func statusRequest(prefix, state, description string) request {
	return request{
		Method: "POST",
		Path:   prefix + "/repos/acme/app/statuses/" + sha,
		Auth:   "Bearer " + testToken,
		Body: map[string]any{
			"state":       state,
			"context":     "kiln/web",
			"description": description,
			"target_url":  publicURL + "/v1/runs/k1/log",
		},
	}
}

// step writes run k1's record with one status, unless it is STATUS_UNSPECIFIED, then publishes an event with
// another, and waits until the Reporter has settled it.
type step struct {
	record proto.Status
	event  proto.Status
}

func TestReporter(t *testing.T) {
	const (
		running   = proto.Status_RUNNING
		succeeded = proto.Status_SUCCEEDED
		none      = proto.Status_STATUS_UNSPECIFIED
	)
	longFailure := "Run k1 failed: RUN make test: exit code 2 " + strings.Repeat("x", 73) + "…"
	for _, tc := range []struct {
		name      string
		apiURL    string
		retries   int
		taskURL   string // "" means https://github.com/acme/app.git
		noToken   bool
		noCommit  bool
		otherTask bool // the run names a task that does not exist
		script    []int
		steps     []step
		want      []request
		wantError string // a word of the one Error line logged; "" means none
	}{
		{
			name:  "pending then success",
			steps: []step{{running, running}, {succeeded, succeeded}},
			want:  []request{statusRequest("", "pending", "Run k1 is running"), statusRequest("", "success", "Run k1 succeeded in 12s")},
		},
		{
			name:  "queued",
			steps: []step{{proto.Status_QUEUED, proto.Status_QUEUED}},
			want:  []request{statusRequest("", "pending", "Run k1 is queued")},
		},
		{
			name:  "failure",
			steps: []step{{running, running}, {proto.Status_FAILED, proto.Status_FAILED}},
			want:  []request{statusRequest("", "pending", "Run k1 is running"), statusRequest("", "failure", longFailure)},
		},
		{
			name:  "canceled is an error",
			steps: []step{{proto.Status_CANCELED, proto.Status_CANCELED}},
			want:  []request{statusRequest("", "error", "Run k1 was canceled")},
		},
		{
			name:  "timeout is an error",
			steps: []step{{proto.Status_TIMEOUT, proto.Status_TIMEOUT}},
			want:  []request{statusRequest("", "error", "Run k1 timed out after 12s")},
		},
		{
			name:  "Kiln's error is an error",
			steps: []step{{proto.Status_ERROR, proto.Status_ERROR}},
			want:  []request{statusRequest("", "error", "Kiln could not run k1: the build context vanished")},
		},
		{
			name:    "enterprise",
			apiURL:  "https://ghe.example.com/api/v3/",
			taskURL: "https://ghe.example.com/acme/app.git",
			steps:   []step{{running, running}, {succeeded, succeeded}},
			want: []request{statusRequest("/api/v3", "pending", "Run k1 is running"),
				statusRequest("/api/v3", "success", "Run k1 succeeded in 12s")},
		},
		{
			name:   "a server error is retried",
			script: []int{http.StatusInternalServerError},
			steps:  []step{{succeeded, succeeded}},
			want:   []request{statusRequest("", "success", "Run k1 succeeded in 12s"), statusRequest("", "success", "Run k1 succeeded in 12s")},
		},
		{
			name:      "server errors until the retries run out",
			retries:   2,
			script:    []int{http.StatusBadGateway, http.StatusBadGateway, http.StatusBadGateway},
			steps:     []step{{succeeded, succeeded}},
			want:      []request{statusRequest("", "success", "Run k1 succeeded in 12s"), statusRequest("", "success", "Run k1 succeeded in 12s")},
			wantError: "giving up reporting the run's status to GitHub",
		},
		{
			name:      "a refused token is not retried",
			script:    []int{http.StatusUnauthorized},
			steps:     []step{{succeeded, succeeded}},
			want:      []request{statusRequest("", "success", "Run k1 succeeded in 12s")},
			wantError: "GitHub refused the token: posting status success of run k1 on acme/app@0123456789ab: 401 Bad credentials",
		},
		{
			name:  "a late running event posts nothing",
			steps: []step{{succeeded, running}, {none, succeeded}},
			want:  []request{statusRequest("", "success", "Run k1 succeeded in 12s")},
		},
		{
			name:      "an event ahead of the run's record",
			retries:   2,
			steps:     []step{{running, succeeded}},
			wantError: "is SUCCEEDED on the bus but still RUNNING in its record",
		},
		{name: "a task not on GitHub", taskURL: "https://gitlab.com/acme/app.git", steps: []step{{running, running}, {succeeded, succeeded}}},
		{name: "a task on github.com with an Enterprise API", apiURL: "https://ghe.example.com/api/v3/", steps: []step{{succeeded, succeeded}}},
		{name: "a task without a token", noToken: true, steps: []step{{succeeded, succeeded}}},
		{name: "a run without a commit", noCommit: true, steps: []step{{succeeded, succeeded}}},
		{name: "a run of a task that is gone", otherTask: true, steps: []step{{succeeded, succeeded}}},
		{name: "a run that is gone", steps: []step{{none, succeeded}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startReporter(t, ReporterConfig{Config: Config{APIURL: tc.apiURL, PublicURL: publicURL}, Retries: tc.retries})
			e.gh.script("POST /repos/acme/app/statuses/"+sha, tc.script...)
			tk := task(tc.taskURL)
			if tc.taskURL == "" {
				tk.Source.Url = "https://github.com/acme/app.git"
			}
			if tc.noToken {
				tk.GitToken = ""
			}
			if err := e.st.CreateTask(t.Context(), tk); err != nil {
				t.Fatalf("CreateTask: %v", err)
			}

			for _, s := range tc.steps {
				if s.record != proto.Status_STATUS_UNSPECIFIED {
					run := testRun("k1", s.record, sha)
					if tc.noCommit {
						run.Git = nil
					}
					if tc.otherTask {
						run.TaskName = "gone"
					}
					e.putRun(t, run)
				}
				e.publish(t, "k1", s.event)
				e.waitSettled(t)
			}

			checkRequests(t, e.gh.requests(), tc.want)
			errs := e.errorLines()
			switch {
			case tc.wantError == "" && len(errs) > 0:
				t.Errorf("Error lines logged: %q, want none", errs)
			case tc.wantError != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.wantError) || !strings.Contains(errs[0], "run=k1")):
				t.Errorf("Error lines logged: %q, want one naming run k1 and containing %q", errs, tc.wantError)
			}
			if strings.Contains(e.logs.String(), testToken) {
				t.Errorf("the logs contain the token:\n%s", e.logs)
			}
		})
	}
}

// TestReporterFinishesPostsInFlight stops a Reporter while GitHub is answering a status, and checks that Run
// returns only after that answer, with the event acknowledged.
func TestReporterFinishesPostsInFlight(t *testing.T) {
	e := startReporter(t, ReporterConfig{Config: Config{PublicURL: publicURL}})
	release := make(chan struct{})
	e.gh.mu.Lock()
	e.gh.hold = release
	e.gh.mu.Unlock()
	if err := e.st.CreateTask(t.Context(), task("https://github.com/acme/app.git")); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	e.putRun(t, testRun("k1", proto.Status_SUCCEEDED, sha))
	e.publish(t, "k1", proto.Status_SUCCEEDED)
	e.gh.waitFor(t, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned %v while a post was in flight", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	e.waitSettled(t)
	checkRequests(t, e.gh.requests(), []request{statusRequest("", "success", "Run k1 succeeded in 12s")})
}

// TestReporterPendingOvertaken ends a run while its pending status is on its way to GitHub, and checks that the
// Reporter then posts the final status once more, so that pending is not the last word.
func TestReporterPendingOvertaken(t *testing.T) {
	e := startReporter(t, ReporterConfig{Config: Config{PublicURL: publicURL}})
	release := make(chan struct{})
	e.gh.mu.Lock()
	e.gh.hold = release
	e.gh.mu.Unlock()
	if err := e.st.CreateTask(t.Context(), task("https://github.com/acme/app.git")); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	e.putRun(t, testRun("k1", proto.Status_RUNNING, sha))
	e.publish(t, "k1", proto.Status_RUNNING)
	e.gh.waitFor(t, 1)

	e.putRun(t, testRun("k1", proto.Status_SUCCEEDED, sha)) // its own event comes later, or was handled first
	close(release)
	e.waitSettled(t)
	checkRequests(t, e.gh.requests(), []request{
		statusRequest("", "pending", "Run k1 is running"),
		statusRequest("", "success", "Run k1 succeeded in 12s"),
	})
}
