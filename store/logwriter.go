package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// maxChunk is the most a LogWriter buffers before it publishes, and the most one chunk on the log stream
// holds.
const maxChunk = 32 << 10

// defaultFlushInterval is LogWriter.FlushInterval when it is left 0.
const defaultFlushInterval = 200 * time.Millisecond

// publishTimeout bounds one chunk's publish when no caller's ctx is at hand (Write and the ticker).
const publishTimeout = 10 * time.Second

// errWriterClosed is returned by a Write after Close.
var errWriterClosed = errors.New("log writer is closed")

// publisher is what a LogWriter needs of JetStream.
type publisher interface {
	Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// LogWriter is an io.Writer for a run's log. It buffers what is written and publishes it in chunks on the
// run's subject of the log stream: at most every FlushInterval, or as soon as 32 KiB are buffered, never one
// message per Write. It is safe for concurrent Writes. A publish error does not fail Write, so that a build
// never stops because of its log; the chunk is lost, and Close returns the first such error.
type LogWriter struct {
	// FlushInterval is the longest written bytes wait before they are published. Set it before the first
	// Write; 0 means 200ms.
	FlushInterval time.Duration

	pub     publisher
	runID   string
	subject string
	invalid error // set when runID cannot name a run

	pubMu sync.Mutex // held while publishing, so that chunks stay in order

	mu      sync.Mutex // guards the fields below
	buf     []byte
	err     error // the first publish error
	started bool  // the flushing goroutine runs
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// LogWriter returns a writer for the log of the run id. The caller must Close it, then call FinishLog once
// the run has ended.
func (s *Store) LogWriter(id string) *LogWriter {
	w := &LogWriter{
		FlushInterval: defaultFlushInterval,
		pub:           s.js,
		runID:         id,
		subject:       proto.LogSubject(id),
		stop:          make(chan struct{}),
		done:          make(chan struct{}),
	}
	if !validID(id) {
		w.invalid = proto.Errorf(proto.Invalid, "writing log: %q is not a run ID", id)
	}
	return w
}

// Write buffers p for publishing. It publishes at once, and waits for that, when 32 KiB or more are
// buffered. It fails only after Close or for a run ID that is not valid.
func (w *LogWriter) Write(p []byte) (int, error) {
	if w.invalid != nil {
		return 0, w.invalid
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, errWriterClosed
	}
	if !w.started {
		w.started = true
		go w.flushEvery(w.interval())
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= maxChunk
	w.mu.Unlock()

	if full {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		w.flush(ctx)
	}
	return len(p), nil
}

// Close publishes what is still buffered and stops the flushing goroutine. It returns the first publish
// error the writer saw, then and on every later call.
func (w *LogWriter) Close(ctx context.Context) error {
	if w.invalid != nil {
		return w.invalid
	}
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.closed = true
	started := w.started
	w.mu.Unlock()

	if started {
		close(w.stop)
		<-w.done
	}
	w.flush(ctx)

	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// interval returns FlushInterval, or its default when it is not positive.
func (w *LogWriter) interval() time.Duration {
	if w.FlushInterval <= 0 {
		return defaultFlushInterval
	}
	return w.FlushInterval
}

// flushEvery publishes the buffer every interval until Close stops it.
func (w *LogWriter) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			w.flush(ctx)
			cancel()
		}
	}
}

// flush publishes everything buffered, in chunks of at most maxChunk bytes, and records the first error.
func (w *LogWriter) flush(ctx context.Context) {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()

	w.mu.Lock()
	data := w.buf
	w.buf = nil
	w.mu.Unlock()

	for len(data) > 0 {
		n := min(len(data), maxChunk)
		if _, err := w.pub.Publish(ctx, w.subject, data[:n]); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = wrap(err, "publishing log of run %s", w.runID)
			}
			w.mu.Unlock()
		}
		data = data[n:]
	}
}
