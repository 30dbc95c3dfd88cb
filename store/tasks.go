package store

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

// maxTaskName is the longest task name: ACR allows 50 characters, and so does Kiln.
const maxTaskName = 50

// taskNameRule is how an invalid task name is explained.
const taskNameRule = "a task name is 1 to 50 ASCII letters, digits, '-' or '_', starting with a letter or digit"

// CheckTaskName returns nil when name can name a task, and otherwise a proto.Invalid error that states the rule:
// 1 to 50 ASCII letters, digits, '-' or '_', the first a letter or digit. Such a name is at once a KV key and a
// URL path segment that needs no escaping.
func CheckTaskName(name string) error {
	if !validTaskName(name) {
		return proto.Errorf(proto.Invalid, "%q is not a valid task name: %s", name, taskNameRule)
	}
	return nil
}

// validTaskName reports whether name follows the rule CheckTaskName states.
func validTaskName(name string) bool {
	if name == "" || len(name) > maxTaskName || name[0] == '-' || name[0] == '_' {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// CreateTask stores a new task under t.Name. A name already taken is a proto.Conflict; a name that breaks the
// rule of CheckTaskName is proto.Invalid. The store checks nothing else of the task: its callers do.
func (s *Store) CreateTask(ctx context.Context, t *proto.Task) error {
	if err := CheckTaskName(t.GetName()); err != nil {
		return err
	}
	b, err := gproto.Marshal(t)
	if err != nil {
		return proto.Errorf(proto.Internal, "encoding task %s: %w", t.Name, err)
	}
	// A task of the same name deleted earlier may have left its base image state: the new task starts afresh.
	if _, err := s.tasks.Get(ctx, t.Name); errors.Is(err, jetstream.ErrKeyNotFound) {
		if err := s.deleteTaskBases(ctx, t.Name); err != nil {
			return wrap(err, "creating task %s", t.Name)
		}
	}
	if _, err := s.tasks.Create(ctx, t.Name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return proto.Errorf(proto.Conflict, "a task named %s already exists", t.Name)
		}
		return wrap(err, "creating task %s", t.Name)
	}
	return nil
}

// Task returns the task with the given name, or a proto.NotFound error naming it.
func (s *Store) Task(ctx context.Context, name string) (*proto.Task, error) {
	t, _, err := s.readTask(ctx, name)
	return t, err
}

// readTask returns the task with the given name and the revision it is stored at.
func (s *Store) readTask(ctx context.Context, name string) (*proto.Task, uint64, error) {
	if !validTaskName(name) {
		return nil, 0, proto.Errorf(proto.NotFound, "no task named %q", name)
	}
	e, err := s.tasks.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, proto.Errorf(proto.NotFound, "no task named %s", name)
	}
	if err != nil {
		return nil, 0, wrap(err, "reading task %s", name)
	}
	t, err := decodeTask(name, e.Value())
	if err != nil {
		return nil, 0, err
	}
	return t, e.Revision(), nil
}

// decodeTask decodes the stored value of the task named name.
func decodeTask(name string, value []byte) (*proto.Task, error) {
	t := new(proto.Task)
	if err := gproto.Unmarshal(value, t); err != nil {
		return nil, proto.Errorf(proto.Internal, "decoding task %s: %w", name, err)
	}
	return t, nil
}

// UpdateTask changes a task by compare-and-swap, as UpdateRun changes a run: it reads the task, calls fn on it
// and writes the result only if nobody wrote the task in between, else tries again, up to 20 times. fn may be
// called more than once; an error from fn is returned unchanged and nothing is written. The name cannot change.
// UpdateTask returns the task as stored.
func (s *Store) UpdateTask(ctx context.Context, name string, fn func(t *proto.Task) error) (*proto.Task, error) {
	for range maxUpdateTries {
		t, rev, err := s.readTask(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := fn(t); err != nil {
			return nil, err
		}
		if t.GetName() != name {
			return nil, proto.Errorf(proto.Invalid, "updating task %s: the name cannot change (to %q)", name, t.GetName())
		}
		b, err := gproto.Marshal(t)
		if err != nil {
			return nil, proto.Errorf(proto.Internal, "encoding task %s: %w", name, err)
		}
		_, err = s.tasks.Update(ctx, name, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, wrap(err, "updating task %s", name)
		}
		return t, nil
	}
	return nil, proto.Errorf(proto.Conflict, "updating task %s: it kept changing underneath, %d tries", name, maxUpdateTries)
}

// DeleteTask deletes the task with the given name; a task that does not exist is a proto.NotFound error.
func (s *Store) DeleteTask(ctx context.Context, name string) error {
	for range maxUpdateTries {
		_, rev, err := s.readTask(ctx, name)
		if err != nil {
			return err
		}
		// Deleting at the revision read makes a concurrent delete answer NotFound instead of both succeeding.
		err = s.tasks.Delete(ctx, name, jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return wrap(err, "deleting task %s", name)
		}
		// The task is gone; its base image state is only tidied away. What a failure leaves, CreateTask
		// removes before a task of the same name is made again.
		_ = s.deleteTaskBases(ctx, name)
		return nil
	}
	return proto.Errorf(proto.Conflict, "deleting task %s: it kept changing underneath, %d tries", name, maxUpdateTries)
}

// ListTasks returns every task, sorted by name.
func (s *Store) ListTasks(ctx context.Context) ([]*proto.Task, error) {
	w, err := s.tasks.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, wrap(err, "listing tasks")
	}
	defer w.Stop()
	var tasks []*proto.Task
	for {
		select {
		case <-ctx.Done():
			return nil, wrap(ctx.Err(), "listing tasks")
		case e, ok := <-w.Updates():
			if !ok {
				return nil, proto.Errorf(proto.Unavailable, "listing tasks: the watch ended before the last task")
			}
			if e == nil { // every current value has been sent
				slices.SortFunc(tasks, func(a, b *proto.Task) int { return strings.Compare(a.Name, b.Name) })
				return tasks, nil
			}
			t, err := decodeTask(e.Key(), e.Value())
			if err != nil {
				return nil, err
			}
			tasks = append(tasks, t)
		}
	}
}
