package store

import (
	"context"
	"sync"
	"time"
)

// counterTimeout bounds one compare-and-swap of the run counter for a batch of NextRunID calls, which runs on
// a context of its own: the callers waiting for it each keep their own.
const counterTimeout = 30 * time.Second

// idBatcher gathers the NextRunID calls of one Store that wait at the same time, so that one compare-and-swap
// of the counter, written to disk once, hands out a run ID to each. Calls in one process then never collide
// on the counter; only other processes' do. Without it, each call is one disk sync on the one key every
// delivery needs, and the calls of a burst retry each other's collisions.
type idBatcher struct {
	mu      sync.Mutex
	waiting []chan idResult // the calls the next compare-and-swap serves, in the order they came
	busy    bool            // a goroutine is serving batches
}

// idResult is one call's share of a batch: its run number, or why there is none.
type idResult struct {
	n   uint64
	err error
}

// next returns a new run number, taken with advance (which adds by to the counter and returns its new
// value) together with those of the other calls waiting now. A call whose ctx ends first returns its error;
// the number taken for it is never handed out.
func (b *idBatcher) next(ctx context.Context, advance func(ctx context.Context, by uint64) (uint64, error)) (uint64, error) {
	ch := make(chan idResult, 1)
	b.mu.Lock()
	b.waiting = append(b.waiting, ch)
	if !b.busy {
		b.busy = true
		go b.serve(advance)
	}
	b.mu.Unlock()
	select {
	case r := <-ch:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// serve advances the counter once for each batch of waiting calls, until none waits.
func (b *idBatcher) serve(advance func(ctx context.Context, by uint64) (uint64, error)) {
	for {
		b.mu.Lock()
		batch := b.waiting
		b.waiting = nil
		if len(batch) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), counterTimeout)
		last, err := advance(ctx, uint64(len(batch)))
		cancel()
		first := last - uint64(len(batch)) + 1
		for i, ch := range batch {
			ch <- idResult{n: first + uint64(i), err: err}
		}
	}
}
