package basepoll_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// TestPollDigest polls one tag over cycles, pushing a new image before some of them: the first digest seen
// is only recorded, and each move afterwards publishes one ImagePushed before it is recorded.
func TestPollDigest(t *testing.T) {
	tests := []struct {
		name  string
		moves []bool // before each cycle after the first, whether a new image is pushed
	}{
		{name: "first observation only"},
		{name: "same digest", moves: []bool{false, false}},
		{name: "moved", moves: []bool{true}},
		{name: "moved, stayed, moved", moves: []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, reg, clk := storetest.New(t), newRegistry(t), newClock()
			ref := reg.ref("library/alpine", "3")
			p := newPoller(t, env, &tagList{refs: []string{ref}}, clk)

			digest := reg.push(t, "library/alpine", "3")
			if got, want := pollOnce(t, p), (basepoll.Pass{Due: 1, Polled: 1}); got != want {
				t.Fatalf("first PollOnce = %+v, want %+v", got, want)
			}
			var want []string
			for i, move := range tt.moves {
				clk.Advance(cycle)
				if move {
					digest = reg.push(t, "library/alpine", "3")
					want = append(want, digest)
				}
				pass := pollOnce(t, p)
				if pass.Polled != 1 || pass.Changed != b2i(move) {
					t.Errorf("PollOnce of cycle %d = %+v, want 1 polled and %d changed", i+2, pass, b2i(move))
				}
			}

			evs := pushedEvents(t, env)
			if len(evs) != len(want) {
				t.Fatalf("%d ImagePushed published, want %d: %v", len(evs), len(want), evs)
			}
			for i, ev := range evs {
				if ev.GetReference() != ref || ev.GetDigest() != want[i] || ev.GetSource() != "poll" || ev.GetObservedAt() == nil {
					t.Errorf("ImagePushed %d = %v, want %s at %s from poll", i, ev, ref, want[i])
				}
			}
			ts := tagState(t, env, ref)
			now := clk.Now()
			if ts.GetDigest() != digest || ts.GetSource() != "poll" || !ts.GetCheckedAt().AsTime().Equal(now) ||
				ts.GetError() != "" || ts.GetFailures() != 0 {
				t.Errorf("TagState = %v, want digest %s from poll checked at %s, no error", ts, digest, now)
			}
			next := ts.GetNextPoll().AsTime()
			if lo, hi := now.Add(basepoll.DefaultInterval*9/10), now.Add(basepoll.DefaultInterval*11/10); next.Before(lo) || next.After(hi) {
				t.Errorf("next_poll = %s, want between %s and %s", next, lo, hi)
			}
			if got, want := reg.headsOf("library/alpine", "3"), 1+len(tt.moves); got != want {
				t.Errorf("%d HEADs, want %d", got, want)
			}
		})
	}
}

// TestPollAfterOtherSource checks that a move another source (a run's push, a registry notification) has
// already recorded is not published again.
func TestPollAfterOtherSource(t *testing.T) {
	env, reg, clk := storetest.New(t), newRegistry(t), newClock()
	ref := reg.ref("team/base", "v1")
	p := newPoller(t, env, &tagList{refs: []string{ref}}, clk)
	reg.push(t, "team/base", "v1")
	pollOnce(t, p)

	clk.Advance(time.Minute)
	moved := reg.push(t, "team/base", "v1")
	_, err := env.Store.UpdateTagState(t.Context(), ref, func(ts *proto.TagState) error {
		ts.Digest, ts.CheckedAt, ts.Source = moved, timestamppb.New(clk.Now()), "push"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTagState: %v", err)
	}
	clk.Advance(cycle)
	if pass := pollOnce(t, p); pass.Polled != 1 || pass.Changed != 0 {
		t.Errorf("PollOnce = %+v, want 1 polled and none changed", pass)
	}
	if evs := pushedEvents(t, env); len(evs) != 0 {
		t.Errorf("published %v, want nothing", evs)
	}
	if ts := tagState(t, env, ref); ts.GetDigest() != moved || ts.GetSource() != "poll" {
		t.Errorf("TagState = %v, want digest %s, checked by poll", ts, moved)
	}
}

// TestPollServerError checks that a failing registry is recorded on the tag with a doubling backoff, asked
// once per poll, and that nothing is published until it answers again.
func TestPollServerError(t *testing.T) {
	env, reg, clk := storetest.New(t), newRegistry(t), newClock()
	bad, good := reg.ref("team/bad", "1"), reg.ref("team/good", "1")
	p := newPoller(t, env, &tagList{refs: []string{bad, good}}, clk)
	reg.push(t, "team/bad", "1")
	reg.push(t, "team/good", "1")
	pollOnce(t, p)

	reg.setFailure(&failure{path: "/team/bad/", status: http.StatusInternalServerError})
	moved := reg.push(t, "team/bad", "1")
	steps := []struct {
		advance      time.Duration
		wantHeads    int // of bad, in all
		wantFailures int32
		wantNext     time.Duration // after the poll, from now
	}{
		{advance: cycle, wantHeads: 2, wantFailures: 1, wantNext: 30 * time.Second},
		{advance: 29 * time.Second, wantHeads: 2, wantFailures: 1, wantNext: time.Second}, // not yet due
		{advance: time.Second, wantHeads: 3, wantFailures: 2, wantNext: time.Minute},
		{advance: time.Minute, wantHeads: 4, wantFailures: 3, wantNext: 2 * time.Minute},
		{advance: 2 * time.Minute, wantHeads: 5, wantFailures: 4, wantNext: 4 * time.Minute},
		{advance: 4 * time.Minute, wantHeads: 6, wantFailures: 5, wantNext: basepoll.DefaultInterval}, // capped
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		pollOnce(t, p)
		if got := reg.headsOf("team/bad", "1"); got != s.wantHeads {
			t.Errorf("step %d: %d HEADs of the failing tag, want %d", i, got, s.wantHeads)
		}
		ts := tagState(t, env, bad)
		if ts.GetFailures() != s.wantFailures || !strings.Contains(ts.GetError(), "500") {
			t.Errorf("step %d: TagState = %v, want %d failures and the 500 recorded", i, ts, s.wantFailures)
		}
		if got, want := ts.GetNextPoll().AsTime(), clk.Now().Add(s.wantNext); !got.Equal(want) {
			t.Errorf("step %d: next_poll = %s, want %s", i, got, want)
		}
	}
	if evs := pushedEvents(t, env); len(evs) != 0 {
		t.Errorf("published %v while the registry failed, want nothing", evs)
	}
	// The good tag was polled at t0, after the first step's cycle, and once Interval give or take a tenth had
	// passed again, by the last step.
	if got := reg.headsOf("team/good", "1"); got != 3 {
		t.Errorf("%d HEADs of the good tag, want 3: one per cycle", got)
	}

	reg.setFailure(nil)
	clk.Advance(basepoll.DefaultInterval)
	if pass := pollOnce(t, p); pass.Changed != 1 || pass.Failed != 0 {
		t.Errorf("PollOnce after the registry recovered = %+v, want the move found", pass)
	}
	if ts := tagState(t, env, bad); ts.GetDigest() != moved || ts.GetError() != "" || ts.GetFailures() != 0 {
		t.Errorf("TagState after recovery = %v, want digest %s and no failures", ts, moved)
	}
	if evs := pushedEvents(t, env); len(evs) != 1 || evs[0].GetDigest() != moved {
		t.Errorf("published %v, want one ImagePushed of %s", evs, moved)
	}
}

// TestPollNotATag checks that a reference that is not a tag is recorded as a failed poll, without a request.
func TestPollNotATag(t *testing.T) {
	env, reg, clk := storetest.New(t), newRegistry(t), newClock()
	ref := reg.host + "/team/app@sha256:" + strings.Repeat("a", 64)
	p := newPoller(t, env, &tagList{refs: []string{ref}}, clk)
	if got, want := pollOnce(t, p), (basepoll.Pass{Due: 1, Failed: 1}); got != want {
		t.Errorf("PollOnce = %+v, want %+v", got, want)
	}
	if ts := tagState(t, env, ref); ts.GetFailures() != 1 || ts.GetError() == "" {
		t.Errorf("TagState = %v, want one failure recorded", ts)
	}
	if n := reg.allHeads(); n != 0 {
		t.Errorf("%d HEADs, want none", n)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
