package basepoll

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRetryAfter bounds the wait a registry's Retry-After imposes, against a value that is garbage. Docker
// Hub counts its pull limits over six hours.
const maxRetryAfter = 6 * time.Hour

// hold is a registry this process leaves alone until a time, after it answered 429 Too Many Requests.
type hold struct {
	until   time.Time
	strikes int // rate-limited answers since the registry last answered otherwise
}

// limitWatch is the http.RoundTripper beneath go-containerregistry's own. It tells the observer in a
// request's context of each answer that asks the client to slow down, with its Retry-After:
// go-containerregistry's transport.Error keeps the status code of an answer but not its headers.
type limitWatch struct{ inner http.RoundTripper }

// RoundTrip sends req with the inner RoundTripper and reports the answer to req's observer, if it has one.
func (w limitWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if o, ok := req.Context().Value(observerKey{}).(*observer); ok {
		o.saw(resp, time.Now())
	}
	return resp, nil
}

// observer collects what the requests of one poll (a ping, a token, the HEAD) were told about rate limits.
type observer struct {
	mu         sync.Mutex
	limited    bool
	retryAfter time.Duration // the longest Retry-After seen; 0 when none was
}

type observerKey struct{}

// withObserver returns ctx carrying o, for limitWatch.
func withObserver(ctx context.Context, o *observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}

// saw notes resp when it is a 429, or a 503 that says when to come back.
func (o *observer) saw(resp *http.Response, now time.Time) {
	d := retryAfter(resp.Header.Get("Retry-After"), now)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
	case resp.StatusCode == http.StatusServiceUnavailable && d > 0:
	default:
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.limited = true
	o.retryAfter = max(o.retryAfter, d)
}

// result reports whether a request was rate limited, and for how long the registry asked to be left alone.
func (o *observer) result() (bool, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.limited, o.retryAfter
}

// retryAfter reads a Retry-After header, in seconds or an HTTP date, as a wait from now. A missing, past or
// unreadable value is 0; a longer one than maxRetryAfter is maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs >= int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// holdRegistry leaves the registry reg alone until retryAfter from now, or for a backoff that doubles with
// each rate-limited answer in a row when the registry named no time, and returns until when it is held.
func (p *Poller) holdRegistry(reg string, retryAfter time.Duration, now time.Time) time.Time {
	p.mu.Lock()
	h := p.holds[reg]
	if h == nil {
		h = new(hold)
		p.holds[reg] = h
	}
	h.strikes++
	d := retryAfter
	if d <= 0 {
		d = p.backoff(h.strikes)
	}
	longer := now.Add(d).After(h.until)
	if longer {
		h.until = now.Add(d)
	}
	until, strikes := h.until, h.strikes
	p.mu.Unlock()
	if longer {
		p.log.Warn("registry asks to slow down; leaving it alone", "registry", reg, "until", until,
			"retry_after", retryAfter, "strikes", strikes)
	}
	return until
}

// heldUntil returns until when the registry reg is left alone, and whether that is after now.
func (p *Poller) heldUntil(reg string, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.holds[reg]
	if h == nil || !h.until.After(now) {
		return time.Time{}, false
	}
	return h.until, true
}

// unhold forgets the rate limiting of the registry reg, which has just answered a request, once its hold is
// over.
func (p *Poller) unhold(reg string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.holds[reg]; h != nil && !h.until.After(now) {
		delete(p.holds, reg)
	}
}
