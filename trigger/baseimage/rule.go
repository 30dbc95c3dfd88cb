package baseimage

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// The functions of this file are the rule, on one task's proto.TaskBases, with no I/O: the Watcher calls them
// inside the store's compare-and-swap, so that each decision is made on the state as stored.

// current is the digest a task is known to be on for one base: the later of the digest it last built on and
// the digest it was last started for; "" when neither is known.
func current(st *proto.BaseState) string {
	switch {
	case st.GetTriggeredDigest() == "":
		return st.GetBuiltDigest()
	case st.GetBuiltDigest() == "":
		return st.GetTriggeredDigest()
	case st.GetBuiltAt().AsTime().After(st.GetTriggeredAt().AsTime()):
		return st.GetBuiltDigest()
	}
	return st.GetTriggeredDigest()
}

// observe applies a report that ref now points to digest, and says whether tb changed. A digest the task is
// already on, or is being started for, changes nothing (and undoes a pending change of that base that it
// reverts). Another digest becomes a pending change, merged with any pending change of the same base; the
// first pending change opens the settle window, whose end is the due time of the task's one run.
//
// Reports are applied in the order they were observed: one observed no later than the last applied (a
// notification handled late by another process, say) is stale and changes nothing, so that an old digest never
// undoes or replaces a newer one.
func observe(tb *proto.TaskBases, ref, digest, source string, observed, now time.Time, settle time.Duration) bool {
	st := baseState(tb, ref)
	if st.GetReportedAt() != nil && !observed.After(st.GetReportedAt().AsTime()) {
		return false
	}
	st.ReportedAt = timestamppb.New(observed)
	for _, c := range tb.GetFiring() {
		if c.GetReference() == ref && c.GetNewDigest() == digest {
			return true // only reported_at moved
		}
	}
	cur := current(st)
	i := pendingIndex(tb, ref)
	switch {
	case digest == cur && i < 0:
		return true // only reported_at moved
	case digest == cur:
		tb.Pending = append(tb.Pending[:i], tb.Pending[i+1:]...)
		if len(tb.Pending) == 0 {
			tb.Due = nil
		}
		return true
	case i >= 0 && tb.Pending[i].GetNewDigest() == digest:
		return true // only reported_at moved
	case i >= 0:
		tb.Pending[i].NewDigest = digest
		tb.Pending[i].Source = source
		return true
	}
	tb.Pending = append(tb.Pending, &proto.BaseChange{Reference: ref, OldDigest: cur, NewDigest: digest, Source: source})
	if tb.Due == nil {
		tb.Due = timestamppb.New(now.Add(settle))
	}
	return true
}

// baseState returns tb's state of ref, made if there is none.
func baseState(tb *proto.TaskBases, ref string) *proto.BaseState {
	if tb.Bases == nil {
		tb.Bases = make(map[string]*proto.BaseState)
	}
	st := tb.Bases[ref]
	if st == nil {
		st = new(proto.BaseState)
		tb.Bases[ref] = st
	}
	return st
}

func pendingIndex(tb *proto.TaskBases, ref string) int {
	for i, c := range tb.GetPending() {
		if c.GetReference() == ref {
			return i
		}
	}
	return -1
}

// built records that the run runID, started at started, built on digest of ref, unless a later run is already
// recorded. A pending change to the same digest is dropped: the task is on it already.
func built(tb *proto.TaskBases, ref, digest, runID string, started time.Time) bool {
	st := baseState(tb, ref)
	if st.GetBuiltAt() != nil && st.GetBuiltAt().AsTime().After(started) {
		return false
	}
	st.BuiltDigest, st.BuiltAt, st.BuiltRun = digest, timestamppb.New(started), runID
	if i := pendingIndex(tb, ref); i >= 0 && tb.Pending[i].GetNewDigest() == digest {
		tb.Pending = append(tb.Pending[:i], tb.Pending[i+1:]...)
		if len(tb.Pending) == 0 {
			tb.Due = nil
		}
	}
	return true
}

// claim takes the changes whose run is to be queued now: the pending ones once due, or the firing ones of a
// process that stalled (firing for longer than stall). It moves them to firing and records each new digest as
// the one the task is started for. It returns nil when there is nothing to fire yet.
func claim(tb *proto.TaskBases, now time.Time, stall time.Duration) []*proto.BaseChange {
	if len(tb.GetFiring()) > 0 {
		if now.Sub(tb.GetFiringSince().AsTime()) < stall {
			return nil
		}
		tb.FiringSince = timestamppb.New(now)
		return tb.Firing
	}
	if len(tb.GetPending()) == 0 || tb.GetDue().AsTime().After(now) {
		return nil
	}
	tb.Firing, tb.Pending, tb.Due = tb.Pending, nil, nil
	tb.FiringSince = timestamppb.New(now)
	for _, c := range tb.Firing {
		st := baseState(tb, c.GetReference())
		st.TriggeredDigest, st.TriggeredAt, st.TriggeredRun = c.GetNewDigest(), timestamppb.New(now), ""
	}
	return tb.Firing
}

// finish ends a firing: the changes' run is runID ("" when none could be queued, and then none will be for
// these digests). It reports whether tb changed: it does not when another process has taken the firing over.
func finish(tb *proto.TaskBases, changes []*proto.BaseChange, runID string) bool {
	if !sameChanges(tb.GetFiring(), changes) {
		return false
	}
	for _, c := range changes {
		if st := tb.GetBases()[c.GetReference()]; st != nil && st.GetTriggeredDigest() == c.GetNewDigest() {
			st.TriggeredRun = runID
		}
	}
	tb.Firing, tb.FiringSince = nil, nil
	return true
}

func sameChanges(a, b []*proto.BaseChange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].GetReference() != b[i].GetReference() || a[i].GetNewDigest() != b[i].GetNewDigest() {
			return false
		}
	}
	return true
}

// dueAt is when the task's state next needs a look: its pending changes' due time, or when a firing counts as
// stalled; ok is false when there is nothing to do.
func dueAt(tb *proto.TaskBases, stall time.Duration) (at time.Time, ok bool) {
	switch {
	case len(tb.GetFiring()) > 0:
		return tb.GetFiringSince().AsTime().Add(stall), true
	case len(tb.GetPending()) > 0:
		return tb.GetDue().AsTime(), true
	}
	return time.Time{}, false
}
