package webhook

import "context"

// Reserve and Release let the tests hold part of a budget, as a delivery being read does.
func (b *Budget) Reserve(ctx context.Context, n int64) error { return b.reserve(ctx, n) }
func (b *Budget) Release(n int64)                            { b.release(n) }
