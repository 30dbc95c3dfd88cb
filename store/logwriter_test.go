package store_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// subjectMessages returns how many messages the log stream holds on the run's subject.
func subjectMessages(t *testing.T, js jetstream.JetStream, id string) uint64 {
	t.Helper()
	strm, err := js.Stream(t.Context(), proto.StreamLogs)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamLogs, err)
	}
	subject := proto.LogSubject(id)
	info, err := strm.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream info of %s: %v", subject, err)
	}
	return info.State.Subjects[subject]
}

// readLog returns the whole log of the run id, read without following.
func readLog(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.ReadLog(withTimeout(t, 10*time.Second), id, false, &b); err != nil {
		t.Fatalf("ReadLog(%s): %v", id, err)
	}
	return b.String()
}

// closeWriter closes w and fails the test on error.
func closeWriter(t *testing.T, w *store.LogWriter) {
	t.Helper()
	if err := w.Close(t.Context()); err != nil {
		t.Fatalf("LogWriter.Close: %v", err)
	}
}

func TestLogWriterBatches(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)

	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("#%d step %d\n", i/100, i)
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", line, n, err, len(line))
		}
	}
	closeWriter(t, w)

	// 1,000 writes of ~15 bytes in well under a second: a handful of chunks at most.
	if got := subjectMessages(t, js, id); got == 0 || got > 10 {
		t.Errorf("1000 small Writes made %d messages on %s, want between 1 and 10", got, proto.LogSubject(id))
	}
	if got := readLog(t, s, id); got != want.String() {
		t.Errorf("ReadLog(%s) = %d bytes, want the %d written, in order", id, len(got), want.Len())
	}
}

func TestLogWriterFlushesWhenFull(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)
	w.FlushInterval = time.Hour // only size can make it publish

	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	for range 100 { // 100 KiB: three full 32 KiB chunks, 4 KiB left buffered
		if _, err := w.Write(line); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got, want := subjectMessages(t, js, id), uint64(3); got != want {
		t.Errorf("messages after 100 KiB written with an hour's interval = %d, want %d", got, want)
	}
	closeWriter(t, w)
	if got, want := subjectMessages(t, js, id), uint64(4); got != want {
		t.Errorf("messages after Close = %d, want %d", got, want)
	}
	if got := readLog(t, s, id); got != strings.Repeat(string(line), 100) {
		t.Errorf("ReadLog(%s) = %d bytes, want the 100 KiB written", id, len(got))
	}
}

func TestLogWriterLargeWriteIsSplit(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)
	data := randomBytes(100 << 10)
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(100 KiB): %v", err)
	}
	closeWriter(t, w)
	if got, want := subjectMessages(t, js, id), uint64(4); got != want {
		t.Errorf("one 100 KiB Write made %d messages, want %d of at most 32 KiB", got, want)
	}
	if got := readLog(t, s, id); got != string(data) {
		t.Errorf("ReadLog(%s) = %d bytes, want the %d written", id, len(got), len(data))
	}
}

func TestLogWriterFlushesOnInterval(t *testing.T) {
	s, js := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)
	w.FlushInterval = 50 * time.Millisecond
	t.Cleanup(func() { w.Close(t.Context()) })

	if _, err := w.Write([]byte("step 1\n")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for subjectMessages(t, js, id) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing published 5s after a Write with a 50ms flush interval, and no Close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := readLog(t, s, id); got != "step 1\n" {
		t.Errorf("ReadLog(%s) before Close = %q, want %q", id, got, "step 1\n")
	}
}

func TestLogWriterConcurrentWrites(t *testing.T) {
	s, _ := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)

	const writers, lines = 4, 250
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				w.Write(fmt.Appendf(nil, "writer %d line %03d\n", g, i))
			}
		})
	}
	wg.Wait()
	closeWriter(t, w)

	// Every line arrives whole and once, and each writer's lines keep their order.
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(readLog(t, s, id), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(line, "writer %d line %03d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("ReadLog(%s) has line %q, want only whole lines as written", id, line)
		}
		if i != next[g] {
			t.Fatalf("ReadLog(%s): writer %d line %d came when line %d was due", id, g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("ReadLog(%s) has %d lines of writer %d, want %d", id, n, g, lines)
		}
	}
}

func TestLogWriterAfterClose(t *testing.T) {
	s, _ := newStore(t)
	id := createRun(t, s, proto.Status_RUNNING).Id
	w := s.LogWriter(id)
	w.Write([]byte("done\n"))
	closeWriter(t, w)
	if err := w.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Errorf("Write after Close = nil error, want one")
	}
	if got := readLog(t, s, id); got != "done\n" {
		t.Errorf("ReadLog(%s) = %q, want %q", id, got, "done\n")
	}
}

func TestLogWriterInvalidID(t *testing.T) {
	s, _ := newStore(t)
	w := s.LogWriter("k1.>")
	if _, err := w.Write([]byte("x")); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Write on LogWriter(k1.>) error = %v, want invalid", err)
	}
	if err := w.Close(t.Context()); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Close on LogWriter(k1.>) error = %v, want invalid", err)
	}
}
