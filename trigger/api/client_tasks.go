package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/kilnbuild/kiln/proto"
)

// CreateTask creates the task t and returns it as saved, defaults filled in and secrets left out.
func (c *Client) CreateTask(ctx context.Context, t Task) (*Task, error) {
	resp, err := c.doJSON(ctx, http.MethodPost, "/v1/tasks", t)
	if err != nil {
		return nil, err
	}
	return decodeTask(resp)
}

// ListTasks returns every task, by name.
func (c *Client) ListTasks(ctx context.Context) ([]*Task, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/tasks", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list taskList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("reading the list of tasks: %w", err)
	}
	return list.Tasks, nil
}

// Task returns the task with the given name.
func (c *Client) Task(ctx context.Context, name string) (*Task, error) {
	resp, err := c.do(ctx, http.MethodGet, taskPath(name), nil, "")
	if err != nil {
		return nil, err
	}
	return decodeTask(resp)
}

// UpdateTask changes the fields of task name that p sets and returns the task as saved.
func (c *Client) UpdateTask(ctx context.Context, name string, p TaskPatch) (*Task, error) {
	resp, err := c.doJSON(ctx, http.MethodPatch, taskPath(name), p)
	if err != nil {
		return nil, err
	}
	return decodeTask(resp)
}

// DeleteTask deletes task name, and the webhook Kiln registered for it.
func (c *Client) DeleteTask(ctx context.Context, name string) error {
	resp, err := c.do(ctx, http.MethodDelete, taskPath(name), nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// RunTask starts a manual run of the current head of task name's branch and returns the run as queued.
func (c *Client) RunTask(ctx context.Context, name string) (*Run, error) {
	resp, err := c.do(ctx, http.MethodPost, taskPath(name)+"/runs", nil, "")
	if err != nil {
		return nil, err
	}
	return decodeRun(resp)
}

// TaskDeps returns the base images of task name's Dockerfile, and what Kiln knows of each.
func (c *Client) TaskDeps(ctx context.Context, name string) (*TaskDeps, error) {
	resp, err := c.do(ctx, http.MethodGet, taskPath(name)+"/deps", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var deps TaskDeps
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRequestPart)).Decode(&deps); err != nil {
		return nil, fmt.Errorf("reading the base images of task %s in the answer: %w", name, err)
	}
	return &deps, nil
}

// taskPath is the API path of task name.
func taskPath(name string) string {
	return "/v1/tasks/" + url.PathEscape(name)
}

// doJSON sends v as the JSON body of a request; see do.
func (c *Client) doJSON(ctx context.Context, method, path string, v any) (*http.Response, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "encoding the body of %s %s: %w", method, path, err)
	}
	return c.do(ctx, method, path, bytes.NewReader(body), "application/json")
}

// decodeTask reads a task from a 2xx answer and closes it.
func decodeTask(resp *http.Response) (*Task, error) {
	defer resp.Body.Close()
	var t Task
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRequestPart)).Decode(&t); err != nil {
		return nil, fmt.Errorf("reading the task in the answer: %w", err)
	}
	return &t, nil
}
