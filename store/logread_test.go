package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// flushBuffer is a writer for concurrent use that counts its Flush calls, as an http.ResponseWriter would
// receive them.
type flushBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	flushes int
}

func (f *flushBuffer) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.Write(p)
}

func (f *flushBuffer) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
}

func (f *flushBuffer) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.b.String()
}

func (f *flushBuffer) Flushes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushes
}

// follow starts ReadLog with follow on the run id into w and waits until its consumer is on the log
// stream. The returned channel gets ReadLog's result.
func follow(t *testing.T, ctx context.Context, s *store.Store, js jetstream.JetStream, id string, w *flushBuffer) <-chan error {
	t.Helper()
	before := logConsumers(t, js)
	done := make(chan error, 1)
	go func() { done <- s.ReadLog(ctx, id, true, w) }()
	waitFor(t, 5*time.Second, "the follower's consumer", func() bool { return logConsumers(t, js) > before })
	return done
}

// logConsumers returns how many consumers the log stream has.
func logConsumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	strm, err := js.Stream(t.Context(), proto.StreamLogs)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamLogs, err)
	}
	return strm.CachedInfo().State.Consumers
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result waits up to d for a ReadLog started by follow to return.
func result(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("ReadLog with follow had not returned after %v", d)
		return nil
	}
}

func TestReadLogFollowsLive(t *testing.T) {
	s, js := newStore(t)
	// The run stays Running in its record: only the end marker can end the follow.
	id := createRun(t, s, proto.Status_RUNNING).Id
	var out flushBuffer
	done := follow(t, withTimeout(t, 30*time.Second), s, js, id, &out)

	w := s.LogWriter(id)
	w.FlushInterval = 20 * time.Millisecond
	var want strings.Builder
	for _, batch := range []string{"#1 FROM golang\n", "#2 RUN go build\n#2 DONE 1.2s\n", "#3 pushing\n"} {
		w.Write([]byte(batch))
		want.WriteString(batch)
		waitFor(t, 5*time.Second, "the follower to receive "+batch, func() bool { return out.String() == want.String() })
		// A reader that does not follow gets what is there and returns.
		if got := readLog(t, s, id); got != want.String() {
			t.Errorf("ReadLog(%s, no follow) while running = %q, want %q", id, got, want.String())
		}
	}
	closeWriter(t, w)
	if err := s.FinishLog(t.Context(), id); err != nil {
		t.Fatalf("FinishLog(%s): %v", id, err)
	}

	if err := result(t, done, 5*time.Second); err != nil {
		t.Errorf("ReadLog(%s, follow) = %v, want nil", id, err)
	}
	if got := out.String(); got != want.String() {
		t.Errorf("ReadLog(%s, follow) wrote %q, want %q", id, got, want.String())
	}
	if out.Flushes() < 3 {
		t.Errorf("ReadLog(%s, follow) flushed %d times for 3 chunks, want at least 3", id, out.Flushes())
	}
}

func TestReadLogAfterFinishComesFromObject(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_FAILED).Id
	w := s.LogWriter(id)
	want := strings.Repeat("#5 ERROR: process did not complete successfully\n", 2000) // ~100 KiB, several chunks
	w.Write([]byte(want))
	closeWriter(t, w)
	if err := s.FinishLog(t.Context(), id); err != nil {
		t.Fatalf("FinishLog(%s): %v", id, err)
	}

	// With the chunks gone from the stream, as after LogMaxAge, the log is still whole.
	strm, err := js.Stream(t.Context(), proto.StreamLogs)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamLogs, err)
	}
	if err := strm.Purge(t.Context(), jetstream.WithPurgeSubject(proto.LogSubject(id))); err != nil {
		t.Fatalf("purging %s: %v", proto.LogSubject(id), err)
	}
	for _, follow := range []bool{false, true} {
		var out flushBuffer
		if err := s.ReadLog(withTimeout(t, 10*time.Second), id, follow, &out); err != nil {
			t.Fatalf("ReadLog(%s, follow %t): %v", id, follow, err)
		}
		if got := out.String(); got != want {
			t.Errorf("ReadLog(%s, follow %t) = %d bytes, want the %d written", id, follow, len(got), len(want))
		}
		if out.Flushes() == 0 {
			t.Errorf("ReadLog(%s, follow %t) never flushed", id, follow)
		}
	}
}

func TestFinishLogTwice(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_SUCCEEDED).Id
	w := s.LogWriter(id)
	w.Write([]byte("built\n"))
	closeWriter(t, w)
	chunks := subjectMessages(t, js, id)

	for i := range 2 {
		if err := s.FinishLog(t.Context(), id); err != nil {
			t.Fatalf("FinishLog(%s) call %d: %v", id, i+1, err)
		}
	}
	if got, want := subjectMessages(t, js, id), chunks+1; got != want {
		t.Errorf("messages on %s after FinishLog twice = %d, want %d chunks and one end marker", proto.LogSubject(id), got, chunks)
	}
	if got := readLog(t, s, id); got != "built\n" {
		t.Errorf("ReadLog(%s) = %q, want %q", id, got, "built\n")
	}
}

func TestFinishLogWithoutChunks(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_CANCELED).Id
	if err := s.FinishLog(t.Context(), id); err != nil {
		t.Fatalf("FinishLog(%s) with no chunks: %v", id, err)
	}
	if got := subjectMessages(t, js, id); got != 1 {
		t.Errorf("messages on %s = %d, want the end marker alone", proto.LogSubject(id), got)
	}
	info, err := objectInfo(t, js, id)
	if err != nil {
		t.Fatalf("log object %s: %v", id, err)
	}
	if info.Size != 0 {
		t.Errorf("log object %s has %d bytes, want 0", id, info.Size)
	}
}

func objectInfo(t *testing.T, js jetstream.JetStream, name string) (*jetstream.ObjectInfo, error) {
	t.Helper()
	obs, err := js.ObjectStore(t.Context(), "kiln_logs")
	if err != nil {
		t.Fatalf("ObjectStore(kiln_logs): %v", err)
	}
	return obs.GetInfo(t.Context(), name)
}

func TestFollowRunEndingWithoutChunks(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_QUEUED).Id
	var out flushBuffer
	done := follow(t, withTimeout(t, 30*time.Second), s, js, id, &out)

	// Canceled while queued: no worker ever wrote a line.
	if err := s.FinishLog(t.Context(), id); err != nil {
		t.Fatalf("FinishLog(%s): %v", id, err)
	}
	if err := result(t, done, 5*time.Second); err != nil {
		t.Errorf("ReadLog(%s, follow) = %v, want nil", id, err)
	}
	if got := out.String(); got != "" {
		t.Errorf("ReadLog(%s, follow) wrote %q, want nothing", id, got)
	}
}

// TestFollowFinishesFromObjectWithoutMarker is slow (over 2s): it waits for the follower's safeguard.
func TestFollowFinishesFromObjectWithoutMarker(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)
	w.Write([]byte("#1 started\n"))
	closeWriter(t, w)

	var out flushBuffer
	done := follow(t, withTimeout(t, 30*time.Second), s, js, id, &out)
	waitFor(t, 5*time.Second, "the first chunk", func() bool { return out.String() == "#1 started\n" })

	// The run ends and its log object is there, but no end marker is ever published.
	obs, err := js.ObjectStore(t.Context(), "kiln_logs")
	if err != nil {
		t.Fatalf("ObjectStore(kiln_logs): %v", err)
	}
	if _, err := obs.PutString(t.Context(), id, "#1 started\n#1 DONE\n"); err != nil {
		t.Fatalf("putting log object %s: %v", id, err)
	}
	_, err = s.UpdateRun(t.Context(), id, func(r *proto.Run) error {
		r.Status = proto.Status_ERROR
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateRun(%s): %v", id, err)
	}

	if err := result(t, done, 10*time.Second); err != nil {
		t.Errorf("ReadLog(%s, follow) = %v, want nil", id, err)
	}
	if got, want := out.String(), "#1 started\n#1 DONE\n"; got != want {
		t.Errorf("ReadLog(%s, follow) wrote %q, want %q: the chunk, then the rest from the object", id, got, want)
	}
}

func TestReadLogNotFound(t *testing.T) {
	s, _ := newStore(t)
	for _, tt := range []struct {
		name   string
		id     string
		follow bool
	}{
		{name: "no run", id: "k42"},
		{name: "no run, follow", id: "k42", follow: true},
		{name: "not an ID", id: "k1.*", follow: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ReadLog(withTimeout(t, 10*time.Second), tt.id, tt.follow, &bytes.Buffer{})
			if got := proto.ErrorCode(err); got != proto.NotFound {
				t.Errorf("ReadLog(%q, follow %t) error = %v (%q), want code %q", tt.id, tt.follow, err, got, proto.NotFound)
			}
		})
	}
}

func TestReadLogOfRunNotStarted(t *testing.T) {
	s, _ := newStore(t)
	id := createRun(t, s, proto.Status_QUEUED).Id
	if got := readLog(t, s, id); got != "" {
		t.Errorf("ReadLog(%s) of a queued run = %q, want empty", id, got)
	}
}

func TestReadLogFollowStopsWithContext(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out flushBuffer
	done := follow(t, ctx, s, js, id, &out)

	cancel()
	if err := result(t, done, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadLog(%s, follow) after cancel = %v, want %v", id, err, context.Canceled)
	}
}
