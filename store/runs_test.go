package store_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// createRun takes the next run ID and stores a run under it in the given status.
func createRun(t *testing.T, s *store.Store, status proto.Status) *proto.Run {
	t.Helper()
	id, err := s.NextRunID(t.Context())
	if err != nil {
		t.Fatalf("NextRunID: %v", err)
	}
	r := &proto.Run{
		Id:       id,
		Status:   status,
		Trigger:  proto.Trigger_MANUAL,
		QueuedAt: timestamppb.Now(),
		Spec: &proto.BuildSpec{
			ContextObject: "ctx-" + id,
			Dockerfile:    "Dockerfile",
			Tags:          []string{"registry.example/app:" + id},
			BuildArgs:     map[string]string{"GO": "1.26"},
		},
	}
	if err := s.CreateRun(t.Context(), r); err != nil {
		t.Fatalf("CreateRun(%s): %v", id, err)
	}
	return r
}

func TestCreateAndReadRun(t *testing.T) {
	s, _ := newStore(t)
	want := createRun(t, s, proto.Status_QUEUED)

	got, err := s.Run(t.Context(), want.Id)
	if err != nil {
		t.Fatalf("Run(%s): %v", want.Id, err)
	}
	if !gproto.Equal(got, want) {
		t.Errorf("Run(%s) = %v, want %v", want.Id, got, want)
	}
}

func TestCreateRunErrors(t *testing.T) {
	s, _ := newStore(t)
	existing := createRun(t, s, proto.Status_QUEUED)

	tests := []struct {
		name string
		run  *proto.Run
		want proto.Code
	}{
		{name: "ID taken", run: &proto.Run{Id: existing.Id, Status: proto.Status_RUNNING}, want: proto.Conflict},
		{name: "no ID", run: &proto.Run{}, want: proto.Invalid},
		{name: "subject wildcard", run: &proto.Run{Id: "k>"}, want: proto.Invalid},
		{name: "dot", run: &proto.Run{Id: "k1.k2"}, want: proto.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateRun(t.Context(), tt.run)
			if got := proto.ErrorCode(err); got != tt.want {
				t.Errorf("CreateRun(%q) error = %v (%q), want code %q", tt.run.Id, err, got, tt.want)
			}
		})
	}

	// The run that was there is untouched.
	got, err := s.Run(t.Context(), existing.Id)
	if err != nil {
		t.Fatalf("Run(%s): %v", existing.Id, err)
	}
	if got.Status != proto.Status_QUEUED {
		t.Errorf("Run(%s).Status = %v after a conflicting create, want %v", existing.Id, got.Status, proto.Status_QUEUED)
	}
}

func TestRunNotFound(t *testing.T) {
	s, _ := newStore(t)
	for _, id := range []string{"k7", "", "a.b", "*"} {
		t.Run(id, func(t *testing.T) {
			_, err := s.Run(t.Context(), id)
			if got := proto.ErrorCode(err); got != proto.NotFound {
				t.Errorf("Run(%q) error = %v (%q), want code %q", id, err, got, proto.NotFound)
			}
			if err != nil && !strings.Contains(err.Error(), "no run with ID") {
				t.Errorf("Run(%q) error = %q, want it to say there is no run with that ID", id, err)
			}
		})
	}
	_, err := s.Run(t.Context(), "k7")
	if want := "no run with ID k7"; err == nil || err.Error() != want {
		t.Errorf("Run(k7) error = %v, want %q", err, want)
	}
}

func TestUpdateRun(t *testing.T) {
	s, _ := newStore(t)
	r := createRun(t, s, proto.Status_QUEUED)

	got, err := s.UpdateRun(t.Context(), r.Id, func(r *proto.Run) error {
		r.Status = proto.Status_RUNNING
		r.Worker = "w1"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateRun(%s): %v", r.Id, err)
	}
	if got.Status != proto.Status_RUNNING || got.Worker != "w1" {
		t.Errorf("UpdateRun(%s) = %v, want status RUNNING on worker w1", r.Id, got)
	}
	stored, err := s.Run(t.Context(), r.Id)
	if err != nil {
		t.Fatalf("Run(%s): %v", r.Id, err)
	}
	if !gproto.Equal(stored, got) {
		t.Errorf("Run(%s) = %v, want what UpdateRun returned, %v", r.Id, stored, got)
	}
}

func TestUpdateRunConcurrent(t *testing.T) {
	s, _ := newStore(t)
	r := createRun(t, s, proto.Status_QUEUED)

	const updaters = 10
	errs := make(chan error, updaters)
	var wg sync.WaitGroup
	for range updaters {
		wg.Go(func() {
			_, err := s.UpdateRun(t.Context(), r.Id, func(r *proto.Run) error {
				r.Attempt++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdateRun(%s): %v", r.Id, err)
		}
	}
	got, err := s.Run(t.Context(), r.Id)
	if err != nil {
		t.Fatalf("Run(%s): %v", r.Id, err)
	}
	if got.Attempt != updaters {
		t.Errorf("Run(%s).Attempt = %d after %d concurrent increments, want %d", r.Id, got.Attempt, updaters, updaters)
	}
}

func TestUpdateRunRefused(t *testing.T) {
	s, _ := newStore(t)
	r := createRun(t, s, proto.Status_SUCCEEDED)
	errFinished := errors.New("run already finished")

	got, err := s.UpdateRun(t.Context(), r.Id, func(r *proto.Run) error {
		r.Status = proto.Status_CANCELED // changed, then refused: must not be written
		return errFinished
	})
	if err != errFinished {
		t.Errorf("UpdateRun(%s) error = %v, want fn's error %v unchanged", r.Id, err, errFinished)
	}
	if got != nil {
		t.Errorf("UpdateRun(%s) = %v, want nil", r.Id, got)
	}
	stored, err := s.Run(t.Context(), r.Id)
	if err != nil {
		t.Fatalf("Run(%s): %v", r.Id, err)
	}
	if stored.Status != proto.Status_SUCCEEDED {
		t.Errorf("Run(%s).Status = %v after a refused update, want %v", r.Id, stored.Status, proto.Status_SUCCEEDED)
	}
}

func TestUpdateRunErrors(t *testing.T) {
	s, _ := newStore(t)
	r := createRun(t, s, proto.Status_QUEUED)

	tests := []struct {
		name string
		id   string
		fn   func(r *proto.Run) error
		want proto.Code
	}{
		{name: "missing run", id: "k99", fn: func(*proto.Run) error { return nil }, want: proto.NotFound},
		{name: "ID changed", id: r.Id, fn: func(r *proto.Run) error { r.Id = "k99"; return nil }, want: proto.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateRun(t.Context(), tt.id, tt.fn)
			if got := proto.ErrorCode(err); got != tt.want {
				t.Errorf("UpdateRun(%s) error = %v (%q), want code %q", tt.id, err, got, tt.want)
			}
		})
	}
	if _, err := s.Run(t.Context(), "k99"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("Run(k99) error = %v, want not found: a refused ID change must not create a run", err)
	}
}

func TestListRuns(t *testing.T) {
	s, _ := newStore(t)
	// k1 to k6, with no run under k4: an ID taken and never used.
	statuses := []proto.Status{
		proto.Status_SUCCEEDED, proto.Status_FAILED, proto.Status_SUCCEEDED, 0, proto.Status_RUNNING,
		proto.Status_SUCCEEDED,
	}
	for _, st := range statuses {
		if st == 0 {
			if _, err := s.NextRunID(t.Context()); err != nil {
				t.Fatalf("NextRunID: %v", err)
			}
			continue
		}
		createRun(t, s, st)
	}

	tests := []struct {
		name string
		opt  store.ListOptions
		want []string
	}{
		{name: "all, newest first", opt: store.ListOptions{}, want: []string{"k6", "k5", "k3", "k2", "k1"}},
		{name: "limit", opt: store.ListOptions{Limit: 2}, want: []string{"k6", "k5"}},
		{name: "limit across the gap", opt: store.ListOptions{Limit: 3}, want: []string{"k6", "k5", "k3"}},
		{name: "status", opt: store.ListOptions{Status: proto.Status_SUCCEEDED}, want: []string{"k6", "k3", "k1"}},
		{name: "status and limit", opt: store.ListOptions{Status: proto.Status_SUCCEEDED, Limit: 2}, want: []string{"k6", "k3"}},
		{name: "status with one run", opt: store.ListOptions{Status: proto.Status_FAILED}, want: []string{"k2"}},
		{name: "status with none", opt: store.ListOptions{Status: proto.Status_QUEUED}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := s.ListRuns(t.Context(), tt.opt)
			if err != nil {
				t.Fatalf("ListRuns(%+v): %v", tt.opt, err)
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.Id)
				if r.Spec.GetContextObject() != "ctx-"+r.Id {
					t.Errorf("ListRuns(%+v) run %s has context %q, want the whole record", tt.opt, r.Id, r.Spec.GetContextObject())
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ListRuns(%+v) = %v, want %v", tt.opt, got, tt.want)
			}
		})
	}
}

func TestListRunsDefaultLimitAndEmpty(t *testing.T) {
	s, _ := newStore(t)
	runs, err := s.ListRuns(t.Context(), store.ListOptions{})
	if err != nil || len(runs) != 0 {
		t.Errorf("ListRuns() on an empty store = %d runs, %v, want none and no error", len(runs), err)
	}
	for range 25 {
		createRun(t, s, proto.Status_QUEUED)
	}
	runs, err = s.ListRuns(t.Context(), store.ListOptions{})
	if err != nil {
		t.Fatalf("ListRuns(): %v", err)
	}
	if len(runs) != 20 || runs[0].Id != "kp" || runs[19].Id != "k6" {
		t.Errorf("ListRuns() = %d runs, want 20, kp down to k6", len(runs))
	}
	if _, err := s.ListRuns(t.Context(), store.ListOptions{Limit: -1}); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("ListRuns(Limit -1) error = %v, want invalid", err)
	}
}
