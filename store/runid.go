package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// runIDPrefix starts every run ID the counter hands out.
const runIDPrefix = "k"

// counterKey is the key in kiln_meta that holds the last run number handed out, in decimal.
const counterKey = "run_counter"

// maxCounterTries bounds how often NextRunID retries after losing a compare-and-swap to another caller.
const maxCounterTries = 200

// NextRunID returns a new run ID, unique across every process sharing the store and across restarts: "k"
// followed by the base-36 value of a counter kept in kiln_meta (k1, k2, ..., kz, k10, ...). The counter is
// advanced by compare-and-swap, so concurrent callers never get the same ID; the calls of one Store that wait at
// the same time share one compare-and-swap (idBatcher). A call whose ctx ends while it waits may leave a number
// unused.
func (s *Store) NextRunID(ctx context.Context) (string, error) {
	n, err := s.ids.next(ctx, s.advanceCounter)
	if err != nil {
		return "", wrap(err, "taking a run ID")
	}
	return FormatRunID(n), nil
}

// advanceCounter adds by to the run counter and returns its new value.
func (s *Store) advanceCounter(ctx context.Context, by uint64) (uint64, error) {
	for try := range maxCounterTries {
		if try > 0 {
			if err := backoff(ctx, try); err != nil {
				return 0, err
			}
		}
		n, rev, err := s.counter(ctx)
		if err != nil {
			return 0, err
		}
		value := []byte(strconv.FormatUint(n+by, 10))
		if rev == 0 {
			_, err = s.meta.Create(ctx, counterKey, value)
		} else {
			_, err = s.meta.Update(ctx, counterKey, value, rev)
		}
		switch {
		case err == nil:
			return n + by, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another process got there first
		default:
			return 0, err
		}
	}
	return 0, proto.Errorf(proto.Unavailable, "counter still contended after %d tries", maxCounterTries)
}

// counter returns the last run number handed out and the revision it is stored at; both are 0 before the
// first run.
func (s *Store) counter(ctx context.Context) (n, rev uint64, err error) {
	e, err := s.meta.Get(ctx, counterKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	n, err = strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, 0, proto.Errorf(proto.Internal, "run counter holds %q, not a number", e.Value())
	}
	return n, e.Revision(), nil
}

// backoff waits a short, random, growing time before try, so that callers that keep colliding spread out.
func backoff(ctx context.Context, try int) error {
	d := time.Duration(rand.Int64N(int64(min(try, 20)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FormatRunID returns the run ID of run number n: "k" and n in base 36.
func FormatRunID(n uint64) string {
	return runIDPrefix + strconv.FormatUint(n, 36)
}

// ParseRunID returns the run number of an ID made by FormatRunID, and false for any other string.
func ParseRunID(id string) (uint64, bool) {
	digits, ok := strings.CutPrefix(id, runIDPrefix)
	if !ok || digits == "" || digits[0] == '0' || strings.ToLower(digits) != digits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 36, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// validID reports whether id can name a run: ASCII letters, digits, '-' and '_', so that it is at once a
// KV key, one subject token and an object name.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
