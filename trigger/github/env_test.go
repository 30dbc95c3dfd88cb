package github

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
)

// reporterEnv is a Reporter running against an in-process NATS server with JetStream, the real store on it,
// and a fake GitHub.
type reporterEnv struct {
	js      jetstream.JetStream
	st      *store.Store
	gh      *fakeGitHub
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	lastSeq uint64 // the stream sequence of the latest event published
}

// startReporter starts a Reporter with cfg, its HTTP client set to reach the fake GitHub, and stops it when the
// test ends, failing the test unless Run then returns nil.
func startReporter(t *testing.T, cfg ReporterConfig) *reporterEnv {
	t.Helper()
	env := storetest.New(t)
	js, st := env.JS, env.Store

	e := &reporterEnv{js: js, st: st, gh: newFakeGitHub(t), logs: new(syncBuffer), done: make(chan error, 1)}
	cfg.HTTPClient = e.gh.client()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := NewReporter(cfg, js, st, logger)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("Reporter.Run = %v, want nil", err)
		}
	})
	e.waitForConsumer(t)
	return e
}

// stop cancels Run's context and returns what Run returned.
func (e *reporterEnv) stop() error {
	e.cancel()
	select {
	case err := <-e.done:
		e.done <- err // a second stop sees it too
		return err
	case <-time.After(20 * time.Second):
		return context.DeadlineExceeded
	}
}

// waitForConsumer waits until Run has created its consumer, so that the events published next reach it.
func (e *reporterEnv) waitForConsumer(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.js.Consumer(t.Context(), proto.StreamStatus, ConsumerName); err == nil {
			return
		}
		select {
		case err := <-e.done:
			t.Fatalf("Reporter.Run returned %v before creating its consumer", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no consumer %s on %s after 10s", ConsumerName, proto.StreamStatus)
		}
	}
}

// putRun writes run's record, creating it or replacing what is stored.
func (e *reporterEnv) putRun(t *testing.T, run *proto.Run) {
	t.Helper()
	_, err := e.st.UpdateRun(t.Context(), run.GetId(), func(r *proto.Run) error {
		gproto.Reset(r)
		gproto.Merge(r, run)
		return nil
	})
	if proto.ErrorCode(err) == proto.NotFound {
		err = e.st.CreateRun(t.Context(), run)
	}
	if err != nil {
		t.Fatalf("writing run %s: %v", run.GetId(), err)
	}
}

// publish publishes a RunStatusChanged as a worker does.
func (e *reporterEnv) publish(t *testing.T, id string, s proto.Status) {
	t.Helper()
	data, err := gproto.Marshal(&proto.RunStatusChanged{RunId: id, Status: s})
	if err != nil {
		t.Fatalf("encoding RunStatusChanged: %v", err)
	}
	ack, err := e.js.Publish(t.Context(), proto.StatusSubject(id), data)
	if err != nil {
		t.Fatalf("publishing the status of run %s: %v", id, err)
	}
	e.lastSeq = ack.Sequence
}

// waitSettled waits until the Reporter has acknowledged (or dropped for good) every event published so far.
func (e *reporterEnv) waitSettled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cons, err := e.js.Consumer(t.Context(), proto.StreamStatus, ConsumerName)
		if err != nil {
			t.Fatalf("js.Consumer: %v", err)
		}
		info := cons.CachedInfo()
		if info.AckFloor.Stream >= e.lastSeq && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events up to %d not settled after 30s: ack floor %d, %d pending; GitHub got %v; logs:\n%s",
				e.lastSeq, info.AckFloor.Stream, info.NumAckPending, e.gh.requests(), e.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errorLines returns the Error lines logged so far.
func (e *reporterEnv) errorLines() []string {
	var lines []string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			lines = append(lines, l)
		}
	}
	return lines
}

// syncBuffer is a bytes.Buffer that several goroutines may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
