package api

import (
	"fmt"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// The bounds of GET /v1/runs?limit=.
const (
	defaultListLimit = 20
	maxListLimit     = 1000
)

// runList is the answer of GET /v1/runs.
type runList struct {
	Runs []*Run `json:"runs"`
}

// getRun is GET /v1/runs/{id}.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	run, err := s.st.Run(r.Context(), id)
	if err != nil {
		return storeError(err, "reading run %s", id)
	}
	writeJSON(w, http.StatusOK, RunFromProto(run))
	return nil
}

// listRuns is GET /v1/runs?status=&limit=: the latest runs first, of one status when status is given.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opt := store.ListOptions{Limit: defaultListLimit}
	if v := q.Get("status"); v != "" {
		st, err := ParseStatus(v)
		if err != nil {
			return err
		}
		opt.Status = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return proto.Errorf(proto.Invalid, "limit %q must be a whole number from 1 to %d", v, maxListLimit)
		}
		opt.Limit = n
	}
	runs, err := s.st.ListRuns(r.Context(), opt)
	if err != nil {
		return fmt.Errorf("listing runs: %w", err)
	}
	out := runList{Runs: make([]*Run, 0, len(runs))}
	for _, run := range runs {
		out.Runs = append(out.Runs, RunFromProto(run))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// readLog is GET /v1/runs/{id}/log?follow=: the run's log as plain text. With follow it streams, each chunk
// flushed to the client as it comes, until the log is finished or the client leaves.
func (s *Server) readLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	follow := false
	if v := r.URL.Query().Get("follow"); v != "" {
		var err error
		if follow, err = strconv.ParseBool(v); err != nil {
			return proto.Errorf(proto.Invalid, "follow %q must be true or false", v)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.st.ReadLog(r.Context(), id, follow, w); err != nil {
		return storeError(err, "reading the log of run %s", id)
	}
	return nil
}

// cancelAction is what a cancel did to a run.
type cancelAction int

const (
	canceledInQueue cancelAction = iota + 1 // the run was Queued and is now Canceled
	askedWorker                             // the run is Running: its worker must stop it
)

// cancelRun is POST /v1/runs/{id}/cancel. A Queued run ends Canceled at once; a Running one is marked
// CancelRequested and the cancel is announced to the worker running it, which ends it Canceled. A run that
// has ended is a conflict.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	var action cancelAction
	now := timestamppb.New(s.cfg.Now().UTC())
	run, err := s.st.UpdateRun(ctx, id, func(run *proto.Run) error {
		switch st := run.GetStatus(); {
		case proto.Terminal(st):
			return proto.Errorf(proto.Conflict, "run %s already ended: %s", id, StatusName(st))
		case st == proto.Status_QUEUED:
			action = canceledInQueue
			run.Status = proto.Status_CANCELED
			run.FinishedAt = now
			run.Error = "canceled by request"
		case st == proto.Status_RUNNING:
			action = askedWorker
			run.CancelRequested = true
		default:
			return proto.Errorf(proto.Internal, "run %s has the unknown status %v", id, st)
		}
		return nil
	})
	if err != nil {
		return storeError(err, "canceling run %s", id)
	}
	switch action {
	case canceledInQueue:
		// The run is canceled whatever happens here; an open log only keeps its followers waiting. Both
		// cleanups run even when the client has gone.
		ctx, cancel := cleanupContext(ctx)
		defer cancel()
		if err := s.st.FinishLog(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "could not finish the log of a canceled run", "run", id, "err", err)
		}
		if err := s.st.DeleteContext(ctx, id); err != nil { // no worker will fetch it now
			s.log.ErrorContext(ctx, "could not delete the context of a canceled run", "run", id, "err", err)
		}
	case askedWorker:
		if err := s.cancel.Publish(proto.CancelSubject(id), nil); err != nil {
			return proto.Errorf(proto.Unavailable,
				"run %s is marked for cancel, but the cancel could not be announced to its worker (try again): %w", id, err)
		}
	}
	writeJSON(w, http.StatusAccepted, RunFromProto(run))
	return nil
}

// storeError returns a store error that answers the request by itself (a run not found, a conflict) as it
// is, and wraps any other with what was being done.
func storeError(err error, format string, args ...any) error {
	switch proto.ErrorCode(err) {
	case proto.NotFound, proto.Conflict:
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
