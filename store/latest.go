package store

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// SetLatest records runID as the newest run of task on branch (a branch name, a tag name, or "pr/N" for a pull
// request; any characters). Run IDs from NextRunID count up, so the record only moves forward: when it already
// names a later run, because a concurrent delivery recorded its run first, SetLatest leaves it, and when this
// Store recorded a later run itself it does not look (recentLatest). An ID that did
// not come from NextRunID replaces whatever is recorded. Workers read the record to skip queued runs that a
// newer one has superseded.
func (s *Store) SetLatest(ctx context.Context, task, branch, runID string) error {
	key, err := latestKey(task, branch)
	if err != nil {
		return err
	}
	if !validID(runID) {
		return proto.Errorf(proto.Invalid, "recording the latest run of %s on %q: %q is not a run ID", task, branch, runID)
	}
	unlock := s.recent.lock(key)
	defer unlock()
	if !later(runID, s.recent.get(key)) {
		return nil // this Store recorded a later run: the record holds it, or a later one still
	}
	for try := range maxUpdateTries {
		if try > 0 {
			if err := backoff(ctx, try); err != nil {
				return wrap(err, "recording the latest run of %s on %q", task, branch)
			}
		}
		e, err := s.latest.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = s.latest.Create(ctx, key, []byte(runID))
		case err != nil:
			return wrap(err, "reading the latest run of %s on %q", task, branch)
		case !later(runID, string(e.Value())):
			s.recent.set(key, string(e.Value()))
			return nil
		default:
			_, err = s.latest.Update(ctx, key, []byte(runID), e.Revision())
		}
		switch {
		case err == nil:
			s.recent.set(key, runID)
			return nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another delivery recorded its run in between: compare with that one
		default:
			return wrap(err, "recording the latest run of %s on %q", task, branch)
		}
	}
	return proto.Errorf(proto.Conflict, "recording the latest run of %s on %q: it kept changing underneath, %d tries",
		task, branch, maxUpdateTries)
}

// Latest returns the ID of the newest run of task on branch that SetLatest recorded, or "" when there is none.
func (s *Store) Latest(ctx context.Context, task, branch string) (string, error) {
	key, err := latestKey(task, branch)
	if err != nil {
		return "", err
	}
	e, err := s.latest.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", wrap(err, "reading the latest run of %s on %q", task, branch)
	}
	return string(e.Value()), nil
}

// later reports whether run ID id should replace current as the latest: it is a later number of the counter,
// or either of them did not come from the counter.
func later(id, current string) bool {
	n, ok1 := ParseRunID(id)
	m, ok2 := ParseRunID(current)
	return !ok1 || !ok2 || n > m
}

// latestKey returns the key in kiln_latest of a task and branch.
func latestKey(task, branch string) (string, error) {
	if task == "" || branch == "" {
		return "", proto.Errorf(proto.Invalid, "the latest run needs a task and a branch, got %q and %q", task, branch)
	}
	return kvKey(task, branch), nil
}
