package scheduler

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
)

// newStore starts an in-process JetStream server and opens the store on it.
func newStore(t *testing.T) (*store.Store, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	env := storetest.New(t)
	return env.Store, env.Conn, env.JS
}

func TestClaim(t *testing.T) {
	st, _, _ := newStore(t)
	w := &Worker{Store: st, Name: "w1", MaxAttempts: 3}
	tests := []struct {
		name        string
		run         *proto.Run
		wantErr     error
		wantStatus  proto.Status
		wantAttempt int32
		wantError   string
	}{
		{"queued", &proto.Run{Status: proto.Status_QUEUED}, nil, proto.Status_RUNNING, 1, ""},
		{"worker lost once", &proto.Run{Status: proto.Status_RUNNING, Attempt: 1, Worker: "w0"}, nil, proto.Status_RUNNING, 2, ""},
		{"worker lost on the last attempt", &proto.Run{Status: proto.Status_RUNNING, Attempt: 3, Worker: "w0"}, nil, proto.Status_ERROR, 3,
			"attempt 3 of 3 stopped: the worker running it (w0) was lost; Kiln gave up on it"},
		{"handed back on the last attempt", &proto.Run{Status: proto.Status_QUEUED, Attempt: 2}, nil, proto.Status_RUNNING, 3, ""},
		{"queued with no attempts left", &proto.Run{Status: proto.Status_QUEUED, Attempt: 5}, nil, proto.Status_ERROR, 5,
			"attempt 5 of 3 stopped: no attempts are left; Kiln gave up on it"},
		{"canceled while queued", &proto.Run{Status: proto.Status_QUEUED, CancelRequested: true}, nil, proto.Status_CANCELED, 0, "canceled"},
		{"already ended", &proto.Run{Status: proto.Status_SUCCEEDED, Attempt: 1}, errNothingToDo, proto.Status_SUCCEEDED, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			id, err := st.NextRunID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tt.run.Id = id
			tt.run.QueuedAt = timestamppb.Now()
			if err := st.CreateRun(ctx, tt.run); err != nil {
				t.Fatal(err)
			}
			_, err = w.claim(ctx, id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("claim(%s) = %v, want %v", id, err, tt.wantErr)
			}
			got, err := st.Run(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetStatus() != tt.wantStatus || got.GetAttempt() != tt.wantAttempt || !strings.Contains(got.GetError(), tt.wantError) {
				t.Errorf("after claim(%s): %s attempt %d error %q, want %s attempt %d error containing %q",
					id, got.GetStatus(), got.GetAttempt(), got.GetError(), tt.wantStatus, tt.wantAttempt, tt.wantError)
			}
			if tt.wantStatus == proto.Status_RUNNING && (got.GetWorker() != "w1" || got.GetStartedAt() == nil) {
				t.Errorf("after claim(%s): worker %q, started %v; want w1 and a start time", id, got.GetWorker(), got.GetStartedAt())
			}
		})
	}
}

// TestWorkerWaitsForBuildKit: with buildkitd unreachable the worker takes nothing: the run stays Queued, its
// event stays on the stream, and Ready says why.
func TestWorkerWaitsForBuildKit(t *testing.T) {
	st, nc, js := newStore(t)
	ctx := context.Background()
	b, err := builder.New(ctx, "unix://"+filepath.Join(t.TempDir(), "nobody.sock"))
	if err != nil {
		t.Fatalf("builder.New() = %v", err)
	}
	t.Cleanup(func() { b.Close() })

	id, _ := st.NextRunID(ctx)
	if err := st.CreateRun(ctx, &proto.Run{Id: id, Status: proto.Status_QUEUED, Spec: &proto.BuildSpec{ContextObject: id}}); err != nil {
		t.Fatal(err)
	}
	data, _ := gproto.Marshal(&proto.RunRequested{RunId: id})
	if _, err := js.Publish(ctx, proto.SubjectRunRequested, data, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}

	w := &Worker{JS: js, Conn: nc, Store: st, Builder: b, Name: "w1", WorkDir: t.TempDir()}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	time.Sleep(1500 * time.Millisecond)
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "buildkitd") {
		t.Errorf("Ready() with buildkitd down = %v, want an error naming buildkitd", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run() = %v after its context ended, want nil", err)
	}
	if r, _ := st.Run(ctx, id); r.GetStatus() != proto.Status_QUEUED || r.GetAttempt() != 0 {
		t.Errorf("run %s = %s attempt %d, want Queued and untouched", id, r.GetStatus(), r.GetAttempt())
	}
	info, err := js.Stream(ctx, proto.StreamRuns)
	if err != nil {
		t.Fatal(err)
	}
	if si, _ := info.Info(ctx); si.State.Msgs != 1 {
		t.Errorf("%s holds %d messages, want the run's event still there", proto.StreamRuns, si.State.Msgs)
	}
}
