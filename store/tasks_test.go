package store_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// newTask returns a task named name with every kind of field set.
func newTask(name string) *proto.Task {
	return &proto.Task{
		Name:          name,
		Source:        &proto.GitContext{Url: "https://git.example/acme/app.git", Ref: "main", Subdir: "docker"},
		Dockerfile:    "Dockerfile",
		Tags:          []string{"app:{{.Run.Commit}}"},
		BuildArgs:     map[string]string{"GO": "1.26"},
		CommitTrigger: true,
		PathFilters:   []string{"src/**"},
		LatestOnly:    true,
		GitToken:      "secret-token",
		WebhookSecret: "hook-secret",
		CreatedAt:     timestamppb.Now(),
		Push:          true,
	}
}

// createTask stores newTask(name).
func createTask(t *testing.T, s *store.Store, name string) *proto.Task {
	t.Helper()
	task := newTask(name)
	if err := s.CreateTask(t.Context(), task); err != nil {
		t.Fatalf("CreateTask(%s): %v", name, err)
	}
	return task
}

func TestCreateAndReadTask(t *testing.T) {
	s, _ := newStore(t)
	want := createTask(t, s, "app")
	got, err := s.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("Task(app): %v", err)
	}
	if !gproto.Equal(got, want) {
		t.Errorf("Task(app) = %v, want %v", got, want)
	}
}

func TestCreateTaskErrors(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	tests := []struct {
		name string
		task string
		want proto.Code
	}{
		{"name taken", "app", proto.Conflict},
		{"empty", "", proto.Invalid},
		{"too long", strings.Repeat("a", 51), proto.Invalid},
		{"starts with a dash", "-app", proto.Invalid},
		{"starts with an underscore", "_app", proto.Invalid},
		{"dot", "my.app", proto.Invalid},
		{"slash", "acme/app", proto.Invalid},
		{"space", "my app", proto.Invalid},
		{"subject wildcard", "app>", proto.Invalid},
		{"not ASCII", "äpp", proto.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateTask(t.Context(), newTask(tt.task))
			if got := proto.ErrorCode(err); got != tt.want {
				t.Fatalf("CreateTask(%q) error = %v (%q), want code %q", tt.task, err, got, tt.want)
			}
			if tt.want == proto.Invalid && !strings.Contains(err.Error(), "1 to 50 ASCII letters, digits") {
				t.Errorf("CreateTask(%q) error = %q, want it to state the naming rule", tt.task, err)
			}
		})
	}
}

func TestTaskNamesAccepted(t *testing.T) {
	s, _ := newStore(t)
	for _, name := range []string{"a", "7", "App-1_x", "0-build", strings.Repeat("z", 50)} {
		t.Run(name, func(t *testing.T) {
			if err := store.CheckTaskName(name); err != nil {
				t.Errorf("CheckTaskName(%q) = %v, want nil", name, err)
			}
			createTask(t, s, name)
			if _, err := s.Task(t.Context(), name); err != nil {
				t.Errorf("Task(%q): %v", name, err)
			}
		})
	}
}

func TestTaskNotFound(t *testing.T) {
	s, _ := newStore(t)
	for _, name := range []string{"missing", "", "a.b", "*"} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Task(t.Context(), name)
			if got := proto.ErrorCode(err); got != proto.NotFound || !strings.Contains(err.Error(), "no task named") {
				t.Errorf("Task(%q) error = %v (%q), want %q saying there is no task named so", name, err, got, proto.NotFound)
			}
		})
	}
	_, err := s.Task(t.Context(), "missing")
	if want := "no task named missing"; err == nil || err.Error() != want {
		t.Errorf("Task(missing) error = %v, want %q", err, want)
	}
}

func TestUpdateTask(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	got, err := s.UpdateTask(t.Context(), "app", func(task *proto.Task) error {
		task.Tags = []string{"app:latest"}
		task.GithubHookId = 42
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateTask(app): %v", err)
	}
	want := newTask("app")
	want.Tags, want.GithubHookId, want.CreatedAt = []string{"app:latest"}, 42, got.CreatedAt
	if !gproto.Equal(got, want) {
		t.Errorf("UpdateTask(app) = %v, want %v", got, want)
	}
	stored, err := s.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("Task(app): %v", err)
	}
	if !gproto.Equal(stored, got) {
		t.Errorf("Task(app) = %v, want what UpdateTask returned, %v", stored, got)
	}
}

func TestUpdateTaskConcurrent(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	const updaters = 10
	errs := make(chan error, updaters)
	var wg sync.WaitGroup
	for range updaters {
		wg.Go(func() {
			_, err := s.UpdateTask(t.Context(), "app", func(task *proto.Task) error {
				task.TimeoutSeconds++
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdateTask(app): %v", err)
		}
	}
	got, err := s.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("Task(app): %v", err)
	}
	if got.TimeoutSeconds != updaters {
		t.Errorf("Task(app).TimeoutSeconds = %d after %d concurrent increments, want %d", got.TimeoutSeconds, updaters, updaters)
	}
}

func TestUpdateTaskErrors(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	refused := errors.New("refused")
	tests := []struct {
		name    string
		task    string
		fn      func(t *proto.Task) error
		want    proto.Code
		wantErr error
	}{
		{name: "missing task", task: "other", fn: func(*proto.Task) error { return nil }, want: proto.NotFound},
		{name: "name changed", task: "app", fn: func(t *proto.Task) error { t.Name = "other"; return nil }, want: proto.Invalid},
		{name: "refused", task: "app", fn: func(t *proto.Task) error { t.Tags = nil; return refused }, wantErr: refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.UpdateTask(t.Context(), tt.task, tt.fn)
			switch {
			case got != nil:
				t.Errorf("UpdateTask(%s) = %v, want nil", tt.task, got)
			case tt.wantErr != nil && err != tt.wantErr:
				t.Errorf("UpdateTask(%s) error = %v, want fn's error %v unchanged", tt.task, err, tt.wantErr)
			case tt.wantErr == nil && proto.ErrorCode(err) != tt.want:
				t.Errorf("UpdateTask(%s) error = %v (%q), want code %q", tt.task, err, proto.ErrorCode(err), tt.want)
			}
		})
	}
	stored, err := s.Task(t.Context(), "app")
	if err != nil {
		t.Fatalf("Task(app): %v", err)
	}
	if want := newTask("app"); !slices.Equal(stored.Tags, want.Tags) {
		t.Errorf("Task(app).Tags = %q after refused updates, want %q", stored.Tags, want.Tags)
	}
}

func TestDeleteTask(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	createTask(t, s, "other")
	if err := s.DeleteTask(t.Context(), "app"); err != nil {
		t.Fatalf("DeleteTask(app): %v", err)
	}
	if _, err := s.Task(t.Context(), "app"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("Task(app) after delete error = %v, want %q", err, proto.NotFound)
	}
	if err := s.DeleteTask(t.Context(), "app"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("DeleteTask(app) again error = %v, want %q", err, proto.NotFound)
	}
	if _, err := s.Task(t.Context(), "other"); err != nil {
		t.Errorf("Task(other) after deleting app: %v", err)
	}
	// The name is free again.
	createTask(t, s, "app")
}

func TestDeleteTaskConcurrent(t *testing.T) {
	s, _ := newStore(t)
	createTask(t, s, "app")
	const deleters = 5
	errs := make(chan error, deleters)
	var wg sync.WaitGroup
	for range deleters {
		wg.Go(func() { errs <- s.DeleteTask(t.Context(), "app") })
	}
	wg.Wait()
	close(errs)
	deleted := 0
	for err := range errs {
		switch proto.ErrorCode(err) {
		case "":
			deleted++
		case proto.NotFound:
		default:
			t.Errorf("DeleteTask(app): %v", err)
		}
	}
	if deleted != 1 {
		t.Errorf("%d of %d concurrent DeleteTask(app) succeeded, want 1", deleted, deleters)
	}
}

func TestListTasks(t *testing.T) {
	s, _ := newStore(t)
	got, err := s.ListTasks(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("ListTasks on no tasks = %v, %v; want none", got, err)
	}
	for _, name := range []string{"web", "api", "Zeta", "db"} {
		createTask(t, s, name)
	}
	if err := s.DeleteTask(t.Context(), "db"); err != nil {
		t.Fatalf("DeleteTask(db): %v", err)
	}
	if _, err := s.UpdateTask(t.Context(), "web", func(task *proto.Task) error { task.Target = "final"; return nil }); err != nil {
		t.Fatalf("UpdateTask(web): %v", err)
	}
	got, err = s.ListTasks(t.Context())
	if err != nil {
		t.Fatalf("ListTasks: %v", err)
	}
	var names []string
	for _, task := range got {
		names = append(names, task.Name)
	}
	if want := []string{"Zeta", "api", "web"}; !slices.Equal(names, want) {
		t.Errorf("ListTasks names = %q, want %q", names, want)
	}
	if last := got[len(got)-1]; last.Target != "final" || last.GitToken != "secret-token" {
		t.Errorf("ListTasks()[web] = %v, want the updated task, whole", last)
	}
}
