package scheduler

import (
	"bytes"
	"io"
	"sync"
)

// stepLog is the shared log of a multi-step run: steps running at once write whole lines to it, each prefixed
// with the step's id, and every secret value the run knows is replaced by *** before a line is written.
type stepLog struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

func newStepLog(w io.Writer, secrets []string) *stepLog {
	l := &stepLog{w: w}
	for _, s := range secrets {
		if s != "" {
			l.secrets = append(l.secrets, []byte(s))
		}
	}
	return l
}

// line writes one line of the run's own (not a step's), masked.
func (l *stepLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(l.mask([]byte(s + "\n")))
}

func (l *stepLog) mask(b []byte) []byte {
	for _, s := range l.secrets {
		b = bytes.ReplaceAll(b, s, []byte("***"))
	}
	return b
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
		if len(s.partial) > 64<<10 { // a line with no end: write it anyway
			s.flush(s.partial)
			s.partial = nil
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
	s.log.w.Write(s.log.mask(out))
}

// Close writes a last line without its end.
func (s *stepWriter) Close() error {
	if len(s.partial) > 0 {
		s.flush(s.partial)
		s.partial = nil
	}
	return nil
}
