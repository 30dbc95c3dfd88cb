package basepoll

import (
	"math/rand/v2"
	"time"
)

// nextPoll returns when a tag polled at now is next due: Interval later, moved at random by up to Jitter of
// it either way.
func (p *Poller) nextPoll(now time.Time) time.Time {
	d := p.interval()
	if j := p.jitter(); j > 0 {
		d += time.Duration(float64(d) * j * (2*rand.Float64() - 1))
	}
	return now.Add(d)
}

// backoff returns how long to wait after failures failures in a row: Backoff, doubled for each failure after
// the first, never more than Interval.
func (p *Poller) backoff(failures int) time.Duration {
	limit := p.interval()
	d := p.firstBackoff()
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// current returns the tags Tags names, each once, and forgets what it knew of the tags no longer named.
func (p *Poller) current() []string {
	refs := p.Tags.Refs()
	seen := make(map[string]bool, len(refs))
	out := make([]string, 0, len(refs))
	for _, ref := range refs {
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ref := range p.due {
		if !seen[ref] {
			delete(p.due, ref)
		}
	}
	return out
}

// isDue reports whether ref may be due at now, as far as this process knows: a tag it knows nothing of is.
func (p *Poller) isDue(ref string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.due[ref]
	return !ok || !at.After(now)
}

// setDue remembers that ref is not due before at.
func (p *Poller) setDue(ref string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.due[ref] = at
}

// untilNext returns how long Run waits before its next pass: until the earliest tag is due, at most Tick and
// at least a second (or Tick, if shorter), so that a tag that stays due cannot make it spin.
func (p *Poller) untilNext() time.Duration {
	tick := p.tick()
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	wait := tick
	for _, at := range p.due {
		wait = min(wait, at.Sub(now))
	}
	return max(wait, min(time.Second, tick))
}
