package baseimage

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

const ref = "127.0.0.1:5000/base:latest"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestObserve(t *testing.T) {
	const settle = 10 * time.Second
	builtOn := func(d string, at time.Time) *proto.TaskBases {
		return &proto.TaskBases{Bases: map[string]*proto.BaseState{ref: {BuiltDigest: d, BuiltAt: timestamppb.New(at)}}}
	}
	tests := []struct {
		name        string
		tb          *proto.TaskBases
		digest      string
		wantPending []string // new digests pending
		wantOld     string   // old digest of the first pending change
		wantDue     time.Time
	}{
		{name: "never built: any digest is a change", tb: &proto.TaskBases{}, digest: "sha256:b",
			wantPending: []string{"sha256:b"}, wantDue: t0.Add(settle)},
		{name: "the digest built on changes nothing", tb: builtOn("sha256:a", t0), digest: "sha256:a"},
		{name: "a new digest is pending, old is the one built on", tb: builtOn("sha256:a", t0), digest: "sha256:b",
			wantPending: []string{"sha256:b"}, wantOld: "sha256:a", wantDue: t0.Add(settle)},
		{name: "the digest started for changes nothing", digest: "sha256:b", tb: &proto.TaskBases{Bases: map[string]*proto.BaseState{ref: {
			BuiltDigest: "sha256:a", BuiltAt: timestamppb.New(t0), TriggeredDigest: "sha256:b", TriggeredAt: timestamppb.New(t0.Add(time.Second))}}}},
		{name: "a later build wins over an earlier start", digest: "sha256:b", wantPending: []string{"sha256:b"}, wantOld: "sha256:c",
			wantDue: t0.Add(settle), tb: &proto.TaskBases{Bases: map[string]*proto.BaseState{ref: {
				BuiltDigest: "sha256:c", BuiltAt: timestamppb.New(t0.Add(time.Minute)), TriggeredDigest: "sha256:b", TriggeredAt: timestamppb.New(t0)}}}},
		{name: "a second digest in the window replaces the first, keeping the window", digest: "sha256:c",
			wantPending: []string{"sha256:c"}, wantOld: "sha256:a", wantDue: t0.Add(3 * time.Second),
			tb: &proto.TaskBases{Bases: builtOn("sha256:a", t0).Bases, Due: timestamppb.New(t0.Add(3 * time.Second)),
				Pending: []*proto.BaseChange{{Reference: ref, OldDigest: "sha256:a", NewDigest: "sha256:b"}}}},
		{name: "the same digest again in the window changes nothing", digest: "sha256:b",
			wantPending: []string{"sha256:b"}, wantOld: "sha256:a", wantDue: t0.Add(3 * time.Second),
			tb: &proto.TaskBases{Bases: builtOn("sha256:a", t0).Bases, Due: timestamppb.New(t0.Add(3 * time.Second)),
				Pending: []*proto.BaseChange{{Reference: ref, OldDigest: "sha256:a", NewDigest: "sha256:b"}}}},
		{name: "a revert inside the window drops the change", digest: "sha256:a",
			tb: &proto.TaskBases{Bases: builtOn("sha256:a", t0).Bases, Due: timestamppb.New(t0.Add(3 * time.Second)),
				Pending: []*proto.BaseChange{{Reference: ref, OldDigest: "sha256:a", NewDigest: "sha256:b"}}}},
		{name: "the digest being fired changes nothing", digest: "sha256:b",
			tb: &proto.TaskBases{Firing: []*proto.BaseChange{{Reference: ref, NewDigest: "sha256:b"}}, FiringSince: timestamppb.New(t0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := observe(tt.tb, ref, tt.digest, "push", t0, t0, settle)
			if !changed {
				t.Fatalf("observe() = false for a report newer than any applied")
			}
			var pending []string
			for _, c := range tt.tb.GetPending() {
				pending = append(pending, c.GetNewDigest())
			}
			if len(pending) != len(tt.wantPending) || (len(pending) > 0 && pending[0] != tt.wantPending[0]) {
				t.Fatalf("pending = %v, want %v", pending, tt.wantPending)
			}
			if len(pending) > 0 {
				if got := tt.tb.Pending[0].GetOldDigest(); got != tt.wantOld {
					t.Errorf("old digest = %q, want %q", got, tt.wantOld)
				}
				if got := tt.tb.GetDue().AsTime(); !got.Equal(tt.wantDue) {
					t.Errorf("due = %v, want %v", got, tt.wantDue)
				}
			} else if tt.tb.GetDue() != nil {
				t.Errorf("due = %v with nothing pending", tt.tb.GetDue().AsTime())
			}
		})
	}
}

func TestObserveIgnoresStaleReports(t *testing.T) {
	tb := &proto.TaskBases{}
	// The newer report (sha256:c, observed at t0+2s) is handled first, the older one (sha256:b, t0+1s) after.
	if !observe(tb, ref, "sha256:c", "notification", t0.Add(2*time.Second), t0, 10*time.Second) {
		t.Fatal("observe(c) = false")
	}
	if observe(tb, ref, "sha256:b", "notification", t0.Add(time.Second), t0, 10*time.Second) {
		t.Error("a stale report changed the state")
	}
	if len(tb.GetPending()) != 1 || tb.GetPending()[0].GetNewDigest() != "sha256:c" {
		t.Errorf("pending = %v, want the newer digest, sha256:c", tb.GetPending())
	}
	// A stale report of the digest the task is on must not undo the pending change either.
	tb = &proto.TaskBases{Bases: map[string]*proto.BaseState{ref: {BuiltDigest: "sha256:a", BuiltAt: timestamppb.New(t0)}}}
	observe(tb, ref, "sha256:c", "push", t0.Add(2*time.Second), t0, 10*time.Second)
	if observe(tb, ref, "sha256:a", "poll", t0.Add(time.Second), t0, 10*time.Second) || len(tb.GetPending()) != 1 {
		t.Errorf("a stale report of the digest built on undid the pending change: %v", tb.GetPending())
	}
}

func TestClaimFinish(t *testing.T) {
	const stall = 30 * time.Second
	tb := &proto.TaskBases{}
	observe(tb, ref, "sha256:b", "push", t0, t0, 10*time.Second)
	observe(tb, "127.0.0.1:5000/other:1", "sha256:x", "poll", t0.Add(time.Second), t0.Add(time.Second), 10*time.Second)
	if got := claim(tb, t0.Add(9*time.Second), stall); got != nil {
		t.Fatalf("claim before due = %v, want nil", got)
	}
	changes := claim(tb, t0.Add(10*time.Second), stall)
	if len(changes) != 2 {
		t.Fatalf("claim at due = %v, want both changes in one run", changes)
	}
	if again := claim(tb, t0.Add(11*time.Second), stall); again != nil {
		t.Fatalf("a second claim while firing = %v, want nil", again)
	}
	if got := current(tb.Bases[ref]); got != "sha256:b" {
		t.Errorf("current after claim = %q, want the digest started for", got)
	}
	observe(tb, ref, "sha256:b", "notification", t0.Add(12*time.Second), t0.Add(12*time.Second), 10*time.Second)
	if len(tb.GetPending()) != 0 {
		t.Errorf("the digest being started for made a new change: %v", tb.GetPending())
	}
	if stalled := claim(tb, t0.Add(41*time.Second), stall); len(stalled) != 2 {
		t.Fatalf("claim of a stalled firing = %v, want its two changes", stalled)
	}
	if !finish(tb, changes, "k7") {
		t.Fatal("finish() = false for the firing's own changes")
	}
	if tb.GetFiring() != nil || tb.Bases[ref].GetTriggeredRun() != "k7" {
		t.Errorf("after finish: firing %v, triggered run %q; want none and k7", tb.GetFiring(), tb.Bases[ref].GetTriggeredRun())
	}
	if finish(tb, changes, "k8") {
		t.Error("a second finish of the same changes changed the state")
	}
}

func TestBuilt(t *testing.T) {
	tb := &proto.TaskBases{}
	observe(tb, ref, "sha256:b", "push", t0, t0, 10*time.Second)
	if !built(tb, ref, "sha256:b", "k3", t0.Add(time.Second)) {
		t.Fatal("built() = false on a first build")
	}
	if len(tb.GetPending()) != 0 || tb.GetDue() != nil {
		t.Errorf("a build on the pending digest left it pending: %v", tb.GetPending())
	}
	if built(tb, ref, "sha256:a", "k2", t0) {
		t.Error("an earlier run's build replaced a later one's")
	}
	if got := tb.Bases[ref].GetBuiltRun(); got != "k3" {
		t.Errorf("built run = %q, want k3", got)
	}
}
