package webhook

import (
	"context"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/kilnbuild/kiln/proto"
)

// DefaultBudget is the size of a Handler's memory budget when its Config gives none: 64 MiB, room for two
// of the largest deliveries GitHub sends at once.
const DefaultBudget = 64 << 20

// budgetWait is how long a delivery waits for room in the budget before it is answered 503: long enough
// for a delivery ahead of it to finish, short enough that a flood does not queue without bound.
const budgetWait = 2 * time.Second

// Budget bounds the bytes of webhook bodies that are in memory at once, whoever sent them: a delivery
// holds its share from before its body is read, while its signature is unproven, until its answer is
// sent. One Budget may be shared by several handlers. A Budget is safe for concurrent use.
type Budget struct {
	sem  *semaphore.Weighted
	size int64
}

// NewBudget returns a budget of size bytes; a size of 0 or less means DefaultBudget.
func NewBudget(size int64) *Budget {
	if size <= 0 {
		size = DefaultBudget
	}
	return &Budget{sem: semaphore.NewWeighted(size), size: size}
}

// Size is the budget's size in bytes: no body larger than it is taken.
func (b *Budget) Size() int64 { return b.size }

// reserve takes n bytes of the budget, waiting up to budgetWait for them. When they do not come free in
// that time, or ctx ends first, the error is proto.Unavailable: the sender may try again later.
func (b *Budget) reserve(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, budgetWait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		return proto.Errorf(proto.Unavailable,
			"Kiln is reading as many webhook bodies as its memory budget of %d bytes holds: try again later", b.size)
	}
	return nil
}

// release gives n bytes back to the budget.
func (b *Budget) release(n int64) {
	if n > 0 {
		b.sem.Release(n)
	}
}
