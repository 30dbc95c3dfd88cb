package basepoll_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// TestSharedTags checks that a tag many tasks build on is asked for once per cycle: Tags names ten tags, each
// three times as an index that did not deduplicate would.
func TestSharedTags(t *testing.T) {
	env, reg, clk := storetest.New(t), newRegistry(t), newClock()
	tags := &tagList{}
	for i := range 10 {
		reg.push(t, fmt.Sprintf("team/base%d", i), "1")
		ref := reg.ref(fmt.Sprintf("team/base%d", i), "1")
		tags.refs = append(tags.refs, ref, ref, ref)
	}
	p := newPoller(t, env, tags, clk)
	for c := 1; c <= 3; c++ {
		if got, want := pollOnce(t, p), (basepoll.Pass{Due: 10, Polled: 10}); got != want {
			t.Errorf("cycle %d: PollOnce = %+v, want %+v", c, got, want)
		}
		if got := pollOnce(t, p); got != (basepoll.Pass{}) {
			t.Errorf("cycle %d: PollOnce again = %+v, want nothing due", c, got)
		}
		for i := range 10 {
			if n := reg.headsOf(fmt.Sprintf("team/base%d", i), "1"); n != c {
				t.Errorf("cycle %d: %d HEADs of team/base%d, want %d", c, n, i, c)
			}
		}
		clk.Advance(cycle)
	}
}

// TestTwoPollers runs two Pollers, as two Kiln processes would, each with its own NATS connection to the same
// JetStream, over several cycles: each tag is still asked for once per cycle, and each move published once.
func TestTwoPollers(t *testing.T) {
	env, reg, clk := storetest.New(t), newRegistry(t), newClock()
	other := secondProcess(t, env)

	const n = 10
	tags := &tagList{}
	for i := range n {
		reg.push(t, fmt.Sprintf("team/base%d", i), "1")
		tags.refs = append(tags.refs, reg.ref(fmt.Sprintf("team/base%d", i), "1"))
	}
	pollers := []*basepoll.Poller{newPoller(t, env, tags, clk), newPoller(t, other, tags, clk)}
	moved := 0
	for c := 1; c <= 4; c++ {
		if c == 3 { // three tags move between the second cycle and the third
			for i := range 3 {
				reg.push(t, fmt.Sprintf("team/base%d", i), "1")
				moved++
			}
		}
		passes := pollTogether(t, pollers...)
		if polled := passes[0].Polled + passes[1].Polled; polled != n {
			t.Errorf("cycle %d: the pollers polled %d and %d tags, want %d in all", c, passes[0].Polled, passes[1].Polled, n)
		}
		for i := range n {
			if got := reg.headsOf(fmt.Sprintf("team/base%d", i), "1"); got != c {
				t.Errorf("cycle %d: %d HEADs of team/base%d, want %d", c, got, i, c)
			}
		}
		clk.Advance(cycle)
	}
	if evs := pushedEvents(t, env); len(evs) != moved {
		t.Errorf("%d ImagePushed published, want %d: %v", len(evs), moved, evs)
	}
}

// TestRun checks that Run polls on its own and returns nil once ctx is done.
func TestRun(t *testing.T) {
	env, reg := storetest.New(t), newRegistry(t)
	digest := reg.push(t, "library/alpine", "3")
	ref := reg.ref("library/alpine", "3")
	p := newPoller(t, env, &tagList{refs: []string{ref}}, nil, func(p *basepoll.Poller) { p.Tick = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	deadline := time.Now().Add(5 * time.Second)
	for tagState(t, env, ref).GetDigest() != digest {
		if time.Now().After(deadline) {
			t.Fatalf("Run has not recorded %s of %s after 5s", digest, ref)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of ctx ending")
	}
	if n := reg.headsOf("library/alpine", "3"); n != 1 {
		t.Errorf("%d HEADs, want 1: the tag is not due again for minutes", n)
	}
}

// TestRunCancelDuringRequest checks that Run returns promptly when ctx ends while a registry keeps it waiting,
// and hands the tag back so that another process may poll it at once.
func TestRunCancelDuringRequest(t *testing.T) {
	env, reg := storetest.New(t), newRegistry(t)
	reg.push(t, "library/alpine", "3")
	ref := reg.ref("library/alpine", "3")
	reg.setHang(true)
	p := newPoller(t, env, &tagList{refs: []string{ref}}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	select {
	case <-reg.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no HEAD reached the registry after 5s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of ctx ending")
	}
	ts := tagState(t, env, ref)
	if next := ts.GetNextPoll().AsTime(); next.After(time.Now()) || ts.GetFailures() != 0 || ts.GetDigest() != "" {
		t.Errorf("TagState after shutdown = %v, want the tag handed back: due now, no failure, no digest", ts)
	}
}

// TestMissingParts checks that a Poller without its Store, Publisher or Tags refuses to start.
func TestMissingParts(t *testing.T) {
	env := storetest.New(t)
	tests := []struct {
		name string
		p    *basepoll.Poller
	}{
		{name: "no store", p: &basepoll.Poller{Publisher: env.JS, Tags: &tagList{}}},
		{name: "no publisher", p: &basepoll.Poller{Store: env.Store, Tags: &tagList{}}},
		{name: "no tags", p: &basepoll.Poller{Store: env.Store, Publisher: env.JS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Run(t.Context()); err == nil {
				t.Error("Run = nil, want an error")
			}
			if _, err := tt.p.PollOnce(t.Context()); err == nil {
				t.Error("PollOnce = nil error, want one")
			}
		})
	}
}
