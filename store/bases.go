package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

// TaskBases returns the base image state of the named task; a task with none yet has an empty one.
func (s *Store) TaskBases(ctx context.Context, task string) (*proto.TaskBases, error) {
	if !validTaskName(task) {
		return nil, proto.Errorf(proto.NotFound, "no task named %q", task)
	}
	tb := new(proto.TaskBases)
	if _, err := readMessage(ctx, s.bases, task, tb); err != nil {
		return nil, wrap(err, "reading the base images of task %s", task)
	}
	return tb, nil
}

// UpdateTaskBases changes the base image state of the named task by compare-and-swap, creating it when there
// is none: fn may be called more than once, an error from fn is returned unchanged and nothing is written.
// It returns the state as stored.
func (s *Store) UpdateTaskBases(ctx context.Context, task string, fn func(tb *proto.TaskBases) error) (*proto.TaskBases, error) {
	if !validTaskName(task) {
		return nil, proto.Errorf(proto.NotFound, "no task named %q", task)
	}
	tb := new(proto.TaskBases)
	if err := updateMessage(ctx, s.bases, task, tb, func() error { return fn(tb) }); err != nil {
		return nil, wrap(err, "updating the base images of task %s", task)
	}
	return tb, nil
}

// TagState returns what Kiln last learned of the tag ref (a normalized repository:tag); a tag never seen has
// an empty one.
func (s *Store) TagState(ctx context.Context, ref string) (*proto.TagState, error) {
	ts := new(proto.TagState)
	if _, err := readMessage(ctx, s.tags, tagKey(ref), ts); err != nil {
		return nil, wrap(err, "reading the state of tag %s", ref)
	}
	return ts, nil
}

// UpdateTagState changes what Kiln knows of the tag ref by compare-and-swap, as UpdateTaskBases does.
func (s *Store) UpdateTagState(ctx context.Context, ref string, fn func(ts *proto.TagState) error) (*proto.TagState, error) {
	ts := new(proto.TagState)
	if err := updateMessage(ctx, s.tags, tagKey(ref), ts, func() error { return fn(ts) }); err != nil {
		return nil, wrap(err, "updating the state of tag %s", ref)
	}
	return ts, nil
}

// tagKey is the KV key of a tag's state: references hold characters keys may not (':', '@'), so the key is the
// reference in unpadded URL-safe base64.
func tagKey(ref string) string { return base64.RawURLEncoding.EncodeToString([]byte(ref)) }

// readMessage reads key of kv into m and returns its revision; a missing key leaves m empty at revision 0.
func readMessage(ctx context.Context, kv jetstream.KeyValue, key string, m gproto.Message) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := gproto.Unmarshal(e.Value(), m); err != nil {
		return 0, proto.Errorf(proto.Internal, "decoding %s: %w", key, err)
	}
	return e.Revision(), nil
}

// updateMessage is the compare-and-swap loop of the state buckets: it reads key into m, calls change, and
// writes m only if nobody wrote key in between (or, for a missing key, created it), else tries again.
func updateMessage(ctx context.Context, kv jetstream.KeyValue, key string, m gproto.Message, change func() error) error {
	for range maxUpdateTries {
		gproto.Reset(m)
		rev, err := readMessage(ctx, kv, key, m)
		if err != nil {
			return err
		}
		if err := change(); err != nil {
			return err
		}
		b, err := gproto.Marshal(m)
		if err != nil {
			return proto.Errorf(proto.Internal, "encoding %s: %w", key, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		return err
	}
	return proto.Errorf(proto.Conflict, "it kept changing underneath, %d tries", maxUpdateTries)
}

// TaskBasesUpdate is one value a WatchTaskBases sends: a task's new base image state, or its removal.
type TaskBasesUpdate struct {
	Task    string
	Bases   *proto.TaskBases // nil when Deleted
	Deleted bool
}

// WatchTaskBases sends the current base image state of every task, then a zero TaskBasesUpdate, then every
// change as it happens, until ctx ends; then it closes the channel. A value that does not decode is skipped.
func (s *Store) WatchTaskBases(ctx context.Context) (<-chan TaskBasesUpdate, error) {
	return watch(ctx, s.bases, "the base images of tasks", func(key string, value []byte, deleted bool) (TaskBasesUpdate, bool) {
		u := TaskBasesUpdate{Task: key, Deleted: deleted}
		if deleted {
			return u, true
		}
		u.Bases = new(proto.TaskBases)
		return u, gproto.Unmarshal(value, u.Bases) == nil
	})
}

// TaskUpdate is one value a WatchTasks sends: a task as now stored, or its removal.
type TaskUpdate struct {
	Name    string
	Task    *proto.Task // nil when Deleted
	Deleted bool
}

// WatchTasks sends every task, then a zero TaskUpdate, then every change as it happens, until ctx ends; then
// it closes the channel. A task that does not decode is skipped.
func (s *Store) WatchTasks(ctx context.Context) (<-chan TaskUpdate, error) {
	return watch(ctx, s.tasks, "tasks", func(key string, value []byte, deleted bool) (TaskUpdate, bool) {
		u := TaskUpdate{Name: key, Deleted: deleted}
		if deleted {
			return u, true
		}
		t, err := decodeTask(key, value)
		u.Task = t
		return u, err == nil
	})
}

// watch turns a KV watch of kv into a channel of decoded values, with a zero value once the current ones are
// sent. The channel closes when ctx ends or the watch fails.
func watch[T any](ctx context.Context, kv jetstream.KeyValue, what string, decode func(key string, value []byte, deleted bool) (T, bool)) (<-chan T, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, wrap(err, "watching %s", what)
	}
	out := make(chan T, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var v T
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					deleted := e.Operation() != jetstream.KeyValuePut
					var keep bool
					if v, keep = decode(e.Key(), e.Value(), deleted); !keep {
						continue
					}
				}
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// deleteTaskBases removes a deleted task's base image state. A failure only leaves a value no task reads.
func (s *Store) deleteTaskBases(ctx context.Context, task string) error {
	if _, err := s.bases.Get(ctx, task); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil // nothing to remove, and no delete marker to write
	}
	if err := s.bases.Purge(ctx, task); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("purging the base images of task %s: %w", task, err)
	}
	return nil
}
