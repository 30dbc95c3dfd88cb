package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// repoLocks hands out one lock per repository cache, so that the Fetches of one process take turns on it. Each
// lock is a channel of capacity one, which, unlike a sync.Mutex, can be waited for until a context ends.
type repoLocks struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

// acquire waits until the lock of key is free or ctx ends.
func (l *repoLocks) acquire(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	ch, ok := l.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[key] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// lockFile takes an exclusive flock(2) on path, creating the file if needed, so that processes sharing a cache
// directory take turns on a repository. flock cannot be interrupted, so it is tried without blocking and retried
// until it succeeds or ctx ends. unlock releases the lock and closes the file; the file itself stays, since
// removing it would let two processes lock two different files of the same name.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
