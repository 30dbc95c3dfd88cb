package scheduler

import (
	"bytes"
	"io"
	"sync"
)

// maxPartial is the most of a line with no end that a log keeps: past it, what can be written is written.
const maxPartial = 64 << 10

// runLog is a run's log with every secret the run knows masked: the worker writes everything of a run
// (BuildKit's progress, the git fetch, each step's output, its own lines, the last line) through it, and adds
// each secret to secrets as soon as it reads it. It keeps a partial line until its end, so that a secret split
// across two writes is masked all the same; Flush writes what is left. It is safe for concurrent use.
type runLog struct {
	secrets *masker
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

func newRunLog(w io.Writer) *runLog {
	return &runLog{secrets: newMasker(), w: w}
}

func (l *runLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	n := bytes.LastIndexAny(l.partial, "\n\r") + 1 // a progress bar ends its lines with \r
	if n == 0 && len(l.partial) > maxPartial {
		n = l.secrets.ready(l.partial)
	}
	if n == 0 {
		return len(p), nil
	}
	_, err := l.w.Write(l.secrets.mask(l.partial[:n]))
	l.partial = append(l.partial[:0], l.partial[n:]...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the partial line kept, masked.
func (l *runLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) == 0 {
		return nil
	}
	_, err := l.w.Write(l.secrets.mask(l.partial))
	l.partial = l.partial[:0]
	return err
}

// stepLog is the shared log of a multi-step run: steps running at once write whole lines to it, each prefixed
// with the step's id. It writes to the run's log, which masks them.
type stepLog struct {
	mu  sync.Mutex
	log *runLog
}

func newStepLog(log *runLog) *stepLog {
	return &stepLog{log: log}
}

// line writes one line of the run's own (not a step's).
func (l *stepLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Write([]byte(s + "\n"))
}

// step returns the writer of one step: it keeps a partial line until its end, so that lines of parallel steps
// never mix and a secret split across two writes is still masked. Close writes what is left.
func (l *stepLog) step(id string) *stepWriter {
	return &stepWriter{log: l, prefix: []byte("[" + id + "] ")}
}

type stepWriter struct {
	log     *stepLog
	prefix  []byte
	partial []byte
}

func (s *stepWriter) Write(p []byte) (int, error) {
	s.partial = append(s.partial, p...)
	i := bytes.LastIndexByte(s.partial, '\n')
	if i < 0 {
		if len(s.partial) > maxPartial { // a line with no end: write what no secret runs past
			n := s.log.log.secrets.ready(s.partial)
			s.flush(s.partial[:n])
			s.partial = append(s.partial[:0], s.partial[n:]...)
		}
		return len(p), nil
	}
	s.flush(s.partial[:i+1])
	s.partial = append(s.partial[:0], s.partial[i+1:]...)
	return len(p), nil
}

func (s *stepWriter) flush(b []byte) {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out = append(out, s.prefix...)
		out = append(out, line...)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.log.Write(out)
}

// Close writes a last line without its end.
func (s *stepWriter) Close() error {
	if len(s.partial) > 0 {
		s.flush(s.partial)
		s.partial = nil
	}
	return nil
}
