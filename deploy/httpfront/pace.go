package httpfront

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// The pace a request body must keep.
const (
	// BodyGrace is the time a body has, on top of what its bytes earn it, to arrive: its first bytes, a
	// handler that reads it late, a link that stalls for a while.
	BodyGrace = 30 * time.Second
	// MinBodyRate is the average, in bytes a second, below which a body is cut once the grace is spent:
	// 16 KiB/s, under which a 1 GiB build context would take more than 18 hours.
	MinBodyRate = 16 << 10
)

// Pace gives the body of every request next serves a read deadline that moves with it: BodyGrace from the
// start, plus a second for each MinBodyRate bytes read. A trickled body is cut once it falls behind that
// average, where a fixed deadline would cut a large upload over a slow link too. A request the handler
// refuses without reading its body keeps the first deadline, which bounds the little net/http reads of it
// afterwards. The deadline is lifted when the body ends: net/http then watches the connection for the
// client leaving, and a deadline passing there would end the request's context in the middle of a long
// answer.
func Pace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &pacedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), start: time.Now()}
		b.deadline(b.start.Add(BodyGrace))
		r.Body = b
		next.ServeHTTP(w, r)
	})
}

// pacedBody moves its connection's read deadline as it is read.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	read  int64     // bytes read so far
	set   time.Time // the deadline last set
	ended bool
}

// Read reads from the body and moves the deadline.
func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	switch {
	case b.ended:
	case errors.Is(err, io.EOF):
		b.ended = true
		b.deadline(time.Time{})
	case n > 0:
		earned := time.Duration(float64(b.read) / MinBodyRate * float64(time.Second))
		if d := b.start.Add(BodyGrace + earned); d.Sub(b.set) >= time.Second {
			b.deadline(d)
		}
	}
	return n, err
}

// deadline sets the connection's read deadline to d; the zero time lifts it. A connection that cannot
// have one (none of net/http's HTTP/1 connections) is left to the server's own timeouts.
func (b *pacedBody) deadline(d time.Time) {
	b.set = d
	_ = b.rc.SetReadDeadline(d)
}
