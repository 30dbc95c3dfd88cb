package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// taskStore is what the task routes need of the store. *store.Store satisfies it.
type taskStore interface {
	CreateTask(ctx context.Context, t *proto.Task) error
	Task(ctx context.Context, name string) (*proto.Task, error)
	UpdateTask(ctx context.Context, name string, fn func(t *proto.Task) error) (*proto.Task, error)
	DeleteTask(ctx context.Context, name string) error
	ListTasks(ctx context.Context) ([]*proto.Task, error)
}

// HookRegistrar registers the webhook of a task's repository where the forge allows it (GitHub), and removes it.
type HookRegistrar interface {
	// Register registers the webhook of t's repository and returns its ID: 0, nil when the task's repository
	// is not one it handles or it lacks what it needs (a token, Kiln's public URL).
	Register(ctx context.Context, t *proto.Task) (hookID int64, err error)
	// Unregister removes the webhook t.GithubHookId of t's repository.
	Unregister(ctx context.Context, t *proto.Task) error
}

// hookTimeout bounds the registration steps of a task change. Like commitTimeout, they run on a context the
// client cannot cancel, so that a client that leaves does not leave a webhook without a task.
const hookTimeout = 60 * time.Second

// createTask is POST /v1/tasks: it checks the task, reads the base images of its Dockerfile (readBases),
// stores it, registers its webhook (Config.Hooks) and answers 201 with the task. A registration that fails
// leaves no task behind.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	var req Task
	if err := decodeJSON(r.Body, &req, "the body", "a valid task"); err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	t, err := taskOf(req, s.cfg.DefaultRegistry, s.cfg.AllowHostNetwork, now)
	if err != nil {
		return err
	}
	if err := s.readBases(r.Context(), t, now); err != nil {
		return err
	}
	if err := s.st.CreateTask(r.Context(), t); err != nil {
		return storeError(err, "creating task %s", t.Name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hookTimeout)
	defer cancel()
	if t, err = s.registerNewTask(ctx, t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, TaskFromProto(t))
	return nil
}

// registerNewTask registers the webhook of the task t just created and records its ID. When that fails, the
// task is deleted again (and its webhook, if registered) and the error says why.
func (s *Server) registerNewTask(ctx context.Context, t *proto.Task) (*proto.Task, error) {
	if s.cfg.Hooks == nil {
		return t, nil
	}
	id, err := s.cfg.Hooks.Register(ctx, t)
	if err != nil {
		s.dropTask(ctx, t.Name)
		return nil, hookError(err, "registering the webhook of task %s (the task was not created)", t.Name)
	}
	if id == 0 {
		return t, nil
	}
	stored, err := s.st.UpdateTask(ctx, t.Name, func(t *proto.Task) error {
		t.GithubHookId = id
		return nil
	})
	if err != nil {
		t.GithubHookId = id
		if uerr := s.cfg.Hooks.Unregister(ctx, t); uerr != nil {
			s.log.ErrorContext(ctx, "could not remove the webhook of a task not created",
				"task", t.Name, "hook", id, "err", uerr)
		}
		s.dropTask(ctx, t.Name)
		return nil, fmt.Errorf("recording the webhook of task %s (the task was not created): %w", t.Name, err)
	}
	return stored, nil
}

// dropTask deletes a task that could not be made whole. A failure is logged: there is nobody else to tell.
func (s *Server) dropTask(ctx context.Context, name string) {
	if err := s.st.DeleteTask(ctx, name); err != nil && proto.ErrorCode(err) != proto.NotFound {
		s.log.ErrorContext(ctx, "could not delete a half-created task", "task", name, "err", err)
	}
}

// hookError is a failure of the HookRegistrar: proto.Invalid when it says the request cannot work (a token
// without the right to add webhooks, say), and otherwise proto.Unavailable, as the forge may answer later.
func hookError(err error, format string, args ...any) error {
	code := proto.Unavailable
	if proto.ErrorCode(err) == proto.Invalid {
		code = proto.Invalid
	}
	return proto.Errorf(code, format+": %w", append(args, err)...)
}

// listTasks is GET /v1/tasks: every task, by name.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	tasks, err := s.st.ListTasks(r.Context())
	if err != nil {
		return fmt.Errorf("listing tasks: %w", err)
	}
	out := taskList{Tasks: make([]*Task, 0, len(tasks))}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, TaskFromProto(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getTask is GET /v1/tasks/{name}.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	t, err := s.st.Task(r.Context(), name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	writeJSON(w, http.StatusOK, TaskFromProto(t))
	return nil
}

// updateTask is PATCH /v1/tasks/{name}: the fields the TaskPatch sets change, the others stay. A change of
// what the base images are read from (TaskPatch.readsBases) reads them again first, and a Dockerfile that
// cannot be built changes nothing. A change of what the webhook depends on (TaskPatch.movesHook) moves it:
// the old one is removed first (a failure changes nothing), then the task is saved and the new one registered.
func (s *Server) updateTask(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var p TaskPatch
	if err := decodeJSON(r.Body, &p, "the body", "a valid task update"); err != nil {
		return err
	}
	apply, err := patchOf(p, s.cfg.DefaultRegistry, s.cfg.AllowHostNetwork)
	if err != nil {
		return err
	}
	old, err := s.st.Task(r.Context(), name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	now := s.cfg.Now().UTC()
	var bases *proto.Task // the task as patched, with its bases read again
	if p.readsBases() {
		bases = gproto.Clone(old).(*proto.Task)
		apply(bases)
		if err := s.readBases(r.Context(), bases, now); err != nil {
			return err
		}
	}
	rehook := s.cfg.Hooks != nil && p.movesHook()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hookTimeout)
	defer cancel()
	if rehook && old.GithubHookId != 0 {
		if err := s.cfg.Hooks.Unregister(ctx, old); err != nil {
			return hookError(err, "removing the old webhook of task %s (the task was not changed)", name)
		}
	}
	t, err := s.st.UpdateTask(ctx, name, func(t *proto.Task) error {
		apply(t)
		if bases != nil {
			keepBases(t, bases)
		}
		if rehook {
			t.GithubHookId = 0
		}
		t.UpdatedAt = timestamppb.New(now)
		return nil
	})
	if err != nil {
		return storeError(err, "updating task %s", name)
	}
	if rehook {
		if t, err = s.registerTask(ctx, t); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, TaskFromProto(t))
	return nil
}

// registerTask registers the webhook of the task t, saved without one, and records its ID.
func (s *Server) registerTask(ctx context.Context, t *proto.Task) (*proto.Task, error) {
	id, err := s.cfg.Hooks.Register(ctx, t)
	if err != nil {
		return nil, hookError(err,
			"task %s was updated, but registering its webhook failed (send the change again to retry)", t.Name)
	}
	if id == 0 {
		return t, nil
	}
	stored, err := s.st.UpdateTask(ctx, t.Name, func(t *proto.Task) error {
		t.GithubHookId = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording webhook %d of task %s: %w", id, t.Name, err)
	}
	return stored, nil
}

// deleteTask is DELETE /v1/tasks/{name}: it removes the task's webhook, then the task, and answers 204. When
// the webhook cannot be removed the task stays, so that deleting it again can try again.
func (s *Server) deleteTask(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	t, err := s.st.Task(r.Context(), name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hookTimeout)
	defer cancel()
	if s.cfg.Hooks != nil && t.GithubHookId != 0 {
		if err := s.cfg.Hooks.Unregister(ctx, t); err != nil {
			return hookError(err, "removing the webhook of task %s (the task was kept)", name)
		}
	}
	if err := s.st.DeleteTask(ctx, name); err != nil {
		return storeError(err, "deleting task %s", name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
