package store

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

// maxUpdateTries bounds how often UpdateRun re-reads a run after another writer changed it first.
const maxUpdateTries = 20

// defaultListLimit is how many runs ListRuns returns when ListOptions.Limit is 0.
const defaultListLimit = 20

// CreateRun stores a new run under r.Id. An ID already taken is a proto.Conflict. An ID must be 1 to 64
// ASCII letters, digits, '-' or '_' (it is also a subject token and an object name); any other is
// proto.Invalid.
func (s *Store) CreateRun(ctx context.Context, r *proto.Run) error {
	if !validID(r.GetId()) {
		return proto.Errorf(proto.Invalid, "creating run: %q is not a run ID", r.GetId())
	}
	b, err := gproto.Marshal(r)
	if err != nil {
		return proto.Errorf(proto.Internal, "encoding run %s: %w", r.Id, err)
	}
	if _, err := s.runs.Create(ctx, r.Id, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return proto.Errorf(proto.Conflict, "a run with ID %s already exists", r.Id)
		}
		return wrap(err, "creating run %s", r.Id)
	}
	return nil
}

// Run returns the run with the given ID, or a proto.NotFound error naming the ID.
func (s *Store) Run(ctx context.Context, id string) (*proto.Run, error) {
	r, _, err := s.readRun(ctx, id)
	return r, err
}

// readRun returns the run with the given ID and the revision it is stored at.
func (s *Store) readRun(ctx context.Context, id string) (*proto.Run, uint64, error) {
	if !validID(id) {
		return nil, 0, proto.Errorf(proto.NotFound, "no run with ID %q", id)
	}
	e, err := s.runs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, proto.Errorf(proto.NotFound, "no run with ID %s", id)
	}
	if err != nil {
		return nil, 0, wrap(err, "reading run %s", id)
	}
	r := new(proto.Run)
	if err := gproto.Unmarshal(e.Value(), r); err != nil {
		return nil, 0, proto.Errorf(proto.Internal, "decoding run %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// UpdateRun changes a run by compare-and-swap: it reads the run, calls fn on it and writes the result only
// if nobody wrote the run in between; if somebody did, it reads the run again and calls fn again, up to 20
// times. fn may therefore be called more than once and must decide from the run it is given. If fn returns
// an error, nothing is written and that error is returned unchanged: this is how callers refuse a change
// (a run already finished, say). UpdateRun returns the run as stored.
func (s *Store) UpdateRun(ctx context.Context, id string, fn func(r *proto.Run) error) (*proto.Run, error) {
	for range maxUpdateTries {
		r, rev, err := s.readRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		if r.GetId() != id {
			return nil, proto.Errorf(proto.Invalid, "updating run %s: the ID cannot change (to %q)", id, r.GetId())
		}
		b, err := gproto.Marshal(r)
		if err != nil {
			return nil, proto.Errorf(proto.Internal, "encoding run %s: %w", id, err)
		}
		_, err = s.runs.Update(ctx, id, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, wrap(err, "updating run %s", id)
		}
		return r, nil
	}
	return nil, proto.Errorf(proto.Conflict, "updating run %s: it kept changing underneath, %d tries", id, maxUpdateTries)
}

// ListOptions chooses the runs ListRuns returns.
type ListOptions struct {
	Status proto.Status // only runs in this status; 0 means any
	Limit  int          // at most this many runs; 0 means 20
}

// ListRuns returns runs newest first. Run IDs come from the counter, so it walks the counter down from its
// latest value, skipping IDs that have no run, until it has Limit runs that match or reaches the first run.
// Runs created under IDs that did not come from NextRunID are not listed.
func (s *Store) ListRuns(ctx context.Context, opt ListOptions) ([]*proto.Run, error) {
	if opt.Limit < 0 {
		return nil, proto.Errorf(proto.Invalid, "listing runs: limit %d is negative", opt.Limit)
	}
	if opt.Limit == 0 {
		opt.Limit = defaultListLimit
	}
	last, _, err := s.counter(ctx)
	if err != nil {
		return nil, wrap(err, "listing runs")
	}
	var runs []*proto.Run
	for n := last; n > 0 && len(runs) < opt.Limit; n-- {
		r, _, err := s.readRun(ctx, FormatRunID(n))
		if proto.ErrorCode(err) == proto.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if opt.Status == proto.Status_STATUS_UNSPECIFIED || r.Status == opt.Status {
			runs = append(runs, r)
		}
	}
	return runs, nil
}
