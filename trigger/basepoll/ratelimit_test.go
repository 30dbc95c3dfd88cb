package basepoll_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// TestRateLimited checks that a registry answering 429 (or 503 with a Retry-After) is asked nothing more by
// this process, on behalf of any tag, until the time it names or a backoff, and that the tags left alone
// stay free for other processes to claim.
func TestRateLimited(t *testing.T) {
	tests := []struct {
		name             string
		status           int
		retryAfter       func() string // the header, made when the registry answers
		minHold, maxHold time.Duration
	}{
		{name: "429 with Retry-After in seconds", status: http.StatusTooManyRequests,
			retryAfter: func() string { return "120" }, minHold: 120 * time.Second, maxHold: 120 * time.Second},
		{name: "429 with Retry-After as a date", status: http.StatusTooManyRequests,
			retryAfter: func() string { return time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat) },
			minHold:    85 * time.Second, maxHold: 90 * time.Second},
		{name: "429 without Retry-After", status: http.StatusTooManyRequests,
			retryAfter: func() string { return "" }, minHold: basepoll.DefaultBackoff, maxHold: basepoll.DefaultBackoff},
		{name: "503 with Retry-After", status: http.StatusServiceUnavailable,
			retryAfter: func() string { return "60" }, minHold: time.Minute, maxHold: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, reg, clk := storetest.New(t), newRegistry(t), newClock()
			repos := []string{"library/alpine", "library/debian", "library/golang"}
			var refs []string
			for _, repo := range repos {
				reg.push(t, repo, "latest")
				refs = append(refs, reg.ref(repo, "latest"))
			}
			// One at a time, so that the first 429 comes before any other request of the pass.
			p := newPoller(t, env, &tagList{refs: refs}, clk, func(p *basepoll.Poller) { p.Concurrency = 1 })
			pollOnce(t, p)

			clk.Advance(cycle)
			reg.setFailure(&failure{status: tt.status, retryAfter: tt.retryAfter()})
			before := reg.allRequests()
			if got, want := pollOnce(t, p), (basepoll.Pass{Due: 3, Polled: 1, Failed: 1, Held: 2}); got != want {
				t.Errorf("PollOnce = %+v, want %+v", got, want)
			}
			if n := reg.allRequests() - before; n != 1 {
				t.Errorf("%d requests after the registry asked to slow down, want only the one it answered", n)
			}
			now := clk.Now()
			ts := tagState(t, env, refs[0])
			hold := ts.GetNextPoll().AsTime().Sub(now)
			if hold < tt.minHold || hold > tt.maxHold || ts.GetFailures() != 1 {
				t.Errorf("TagState of the tag told to wait = %v: next poll in %s with %d failures, want in %s to %s with 1",
					ts, hold, ts.GetFailures(), tt.minHold, tt.maxHold)
			}
			for _, ref := range refs[1:] {
				if next := tagState(t, env, ref).GetNextPoll().AsTime(); next.After(now) {
					t.Errorf("next_poll of %s = %s, want it unclaimed (not after %s)", ref, next, now)
				}
			}

			clk.Advance(hold - time.Second)
			before = reg.allRequests()
			if got := pollOnce(t, p); got != (basepoll.Pass{}) {
				t.Errorf("PollOnce a second before the time = %+v, want nothing due", got)
			}
			if n := reg.allRequests() - before; n != 0 {
				t.Errorf("%d requests before the time the registry named, want none", n)
			}

			reg.setFailure(nil)
			clk.Advance(time.Second)
			if got, want := pollOnce(t, p), (basepoll.Pass{Due: 3, Polled: 3}); got != want {
				t.Errorf("PollOnce at the time = %+v, want %+v", got, want)
			}
			if ts := tagState(t, env, refs[0]); ts.GetFailures() != 0 || ts.GetError() != "" {
				t.Errorf("TagState after the wait = %v, want no failures", ts)
			}
		})
	}
}
