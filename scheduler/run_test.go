package scheduler

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// queueRun records run (its ID filled in) as the triggers do, with an uploaded context holding a Dockerfile, and
// publishes its RunRequested. It returns the run's ID.
func queueRun(t *testing.T, st *store.Store, js jetstream.JetStream, run *proto.Run) string {
	t.Helper()
	ctx := t.Context()
	id, err := st.NextRunID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	dockerfile := []byte("FROM scratch\n")
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(dockerfile); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutContext(ctx, id, &archive); err != nil {
		t.Fatal(err)
	}
	run.Id = id
	run.QueuedAt = timestamppb.Now()
	run.Spec = &proto.BuildSpec{ContextObject: id, Dockerfile: "Dockerfile"}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	data, err := gproto.Marshal(&proto.RunRequested{RunId: id})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, proto.SubjectRunRequested, data, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	return id
}

// nextMsg returns the next run request delivered to the workers' consumer, as Worker.Run would take it.
func nextMsg(t *testing.T, w *Worker) jetstream.Msg {
	t.Helper()
	cons, err := w.JS.CreateOrUpdateConsumer(t.Context(), proto.StreamRuns, jetstream.ConsumerConfig{
		Durable: proto.ConsumerWorkers, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.AckWait,
		MaxDeliver: -1, FilterSubject: proto.SubjectRunRequested,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("waiting for a run request: %v", err)
	}
	return msg
}

// lostBuildKit answers pings and loses every build, as a buildkitd SIGKILLed mid-build does: the e2e test
// TestBuildkitdKilledMidStep kills the real one; this makes the moment certain for the attempt rule.
type lostBuildKit struct{}

func (lostBuildKit) Ping(context.Context) error { return nil }

func (lostBuildKit) Build(context.Context, builder.Request, io.Writer) (*builder.Result, error) {
	return nil, proto.Errorf(proto.Unavailable, "building: buildkitd at unix:///gone.sock: error reading from server: EOF")
}

func (lostBuildKit) Exec(context.Context, builder.ExecRequest, io.Writer) (int, error) {
	return 0, proto.Errorf(proto.Unavailable, "running a command: buildkitd at unix:///gone.sock: error reading from server: EOF")
}

// TestAttemptLimitWhenBuildKitIsLost: a run whose attempts are stopped by buildkitd going away goes back to the
// queue until its last attempt, which ends it Error saying why, never Running and never past MaxAttempts.
func TestAttemptLimitWhenBuildKitIsLost(t *testing.T) {
	st, nc, js := newStore(t)
	w := &Worker{JS: js, Conn: nc, Store: st, Builder: lostBuildKit{}, Name: "w1", WorkDir: t.TempDir(), MaxAttempts: 3}
	w.setDefaults()
	id := queueRun(t, st, js, &proto.Run{Status: proto.Status_QUEUED})

	for attempt := 1; attempt <= 3; attempt++ {
		w.handle(t.Context(), nextMsg(t, w))
		r, err := st.Run(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		want := proto.Status_QUEUED
		if attempt == 3 {
			want = proto.Status_ERROR
		}
		if r.GetStatus() != want || int(r.GetAttempt()) != attempt {
			t.Fatalf("after attempt %d: run %s = %s attempt %d (%q), want %s attempt %d",
				attempt, id, r.GetStatus(), r.GetAttempt(), r.GetError(), want, attempt)
		}
	}
	r, err := st.Run(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.GetError(), "attempt 3 of 3 stopped: ") || !strings.Contains(r.GetError(), "buildkitd") ||
		!strings.HasSuffix(r.GetError(), "Kiln gave up on it") || r.GetFinishedAt() == nil {
		t.Errorf("run %s error = %q, finished %v; want attempt 3 of 3 stopped, naming buildkitd, and a finish time",
			id, r.GetError(), r.GetFinishedAt())
	}
	var log bytes.Buffer
	if err := st.ReadLog(t.Context(), id, false, &log); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Attempt 1 of 3 stopped: ", "Attempt 2 of 3 stopped: ", "ended in error: attempt 3 of 3 stopped: "} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log of %s has no %q:\n%s", id, line, log.String())
		}
	}

	// The message was acknowledged: nothing is delivered again, whatever comes after.
	info, err := js.Consumer(t.Context(), proto.StreamRuns, proto.ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	if ci, err := info.Info(t.Context()); err != nil || ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Errorf("workers' consumer after the run ended = %+v, %v; want nothing pending", ci, err)
	}
}

// TestNoAttemptWithoutBuildKit: a run delivered while buildkitd does not answer stays Queued with its attempts
// untouched, and its request goes back to the queue. buildkitd is a socket nobody listens on.
func TestNoAttemptWithoutBuildKit(t *testing.T) {
	st, nc, js := newStore(t)
	b, err := builder.New(t.Context(), "unix://"+filepath.Join(t.TempDir(), "gone.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w := &Worker{JS: js, Conn: nc, Store: st, Builder: b, Name: "w1", WorkDir: t.TempDir(), MaxAttempts: 3}
	w.setDefaults()
	id := queueRun(t, st, js, &proto.Run{Status: proto.Status_QUEUED})
	msg := nextMsg(t, w)
	w.handle(t.Context(), msg)
	if r, err := st.Run(t.Context(), id); err != nil || r.GetStatus() != proto.Status_QUEUED || r.GetAttempt() != 0 {
		t.Fatalf("run %s after a delivery with buildkitd down = %v, %v; want Queued, attempt 0", id, r, err)
	}
	if again := nextMsg(t, w); string(again.Data()) != string(msg.Data()) {
		t.Errorf("redelivered %q, want the run's request again", again.Data())
	}
}

// TestRequeue: a run goes back to the queue, Queued, only from the attempt that holds it; a hand-back gives the
// attempt back, and any other reason keeps it counted.
func TestRequeue(t *testing.T) {
	st, nc, js := newStore(t)
	w := &Worker{JS: js, Conn: nc, Store: st, Name: "w1", WorkDir: t.TempDir(), MaxAttempts: 3}
	w.setDefaults()
	tests := []struct {
		name        string
		record      *proto.Run // the run as the store holds it
		held        int32      // the attempt the worker holds
		handBack    bool
		wantStatus  proto.Status
		wantAttempt int32
	}{
		{"buildkitd lost", &proto.Run{Status: proto.Status_RUNNING, Attempt: 2, Worker: "w1"}, 2, false, proto.Status_QUEUED, 2},
		{"worker shut down", &proto.Run{Status: proto.Status_RUNNING, Attempt: 2, Worker: "w1"}, 2, true, proto.Status_QUEUED, 1},
		{"first attempt shut down", &proto.Run{Status: proto.Status_RUNNING, Attempt: 1, Worker: "w1"}, 1, true, proto.Status_QUEUED, 0},
		{"taken over by another worker", &proto.Run{Status: proto.Status_RUNNING, Attempt: 3, Worker: "w2"}, 2, true, proto.Status_RUNNING, 3},
		{"ended meanwhile", &proto.Run{Status: proto.Status_CANCELED, Attempt: 2}, 2, true, proto.Status_CANCELED, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := queueRun(t, st, js, tt.record)
			msg := nextMsg(t, w)
			held := gproto.Clone(tt.record).(*proto.Run)
			held.Attempt = tt.held
			w.requeue(t.Context(), msg, held, tt.handBack)
			got, err := st.Run(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetStatus() != tt.wantStatus || got.GetAttempt() != tt.wantAttempt {
				t.Errorf("requeue(%s, attempt %d, handBack %v) = %s attempt %d, want %s attempt %d",
					id, tt.held, tt.handBack, got.GetStatus(), got.GetAttempt(), tt.wantStatus, tt.wantAttempt)
			}
			// Take the Nak'd message off the consumer so that the next case gets its own.
			if m := nextMsg(t, w); string(m.Data()) != string(msg.Data()) {
				t.Fatalf("redelivered %q, want the requeued run's request", m.Data())
			} else if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
