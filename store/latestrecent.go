package store

import (
	"hash/maphash"
	"sync"
)

// maxRecent bounds how many keys recentLatest remembers; past it, it forgets them all and starts again.
const maxRecent = 10000

// recentLatest remembers, per key of kiln_latest, the newest run one Store recorded there, and keeps that Store's
// SetLatest calls on one key from running at once. The record only moves forward, so a run older than one
// recorded needs no look at it, and calls in one process never collide on a key: in a burst of deliveries for one
// branch, each of which would otherwise be a read and a compare-and-swap written to disk, most need neither.
type recentLatest struct {
	seed  maphash.Seed
	locks [64]sync.Mutex // by the key's hash

	mu  sync.Mutex
	ids map[string]string
}

func newRecentLatest() *recentLatest {
	return &recentLatest{seed: maphash.MakeSeed(), ids: map[string]string{}}
}

// lock holds the key's lock until the returned function is called.
func (r *recentLatest) lock(key string) (unlock func()) {
	m := &r.locks[maphash.String(r.seed, key)%uint64(len(r.locks))]
	m.Lock()
	return m.Unlock
}

// get returns the run recorded for key, or "" when this Store recorded none or forgot it.
func (r *recentLatest) get(key string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[key]
}

// set remembers id as the run recorded for key.
func (r *recentLatest) set(key, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) >= maxRecent {
		clear(r.ids)
	}
	r.ids[key] = id
}
