package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Timers returns the timers of task name, in the order they were added.
func (c *Client) Timers(ctx context.Context, name string) ([]Timer, error) {
	resp, err := c.do(ctx, http.MethodGet, taskPath(name)+"/timers", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list timerList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRequestPart)).Decode(&list); err != nil {
		return nil, fmt.Errorf("reading the timers of task %s in the answer: %w", name, err)
	}
	return list.Timers, nil
}

// AddTimer adds the timer t to task name and returns it as saved: named t1, t2, ... when t has no name.
func (c *Client) AddTimer(ctx context.Context, name string, t Timer) (*Timer, error) {
	resp, err := c.doJSON(ctx, http.MethodPost, taskPath(name)+"/timers", t)
	if err != nil {
		return nil, err
	}
	return decodeTimer(resp)
}

// UpdateTimer changes what p sets of timer timerName of task name and returns the timer as saved.
func (c *Client) UpdateTimer(ctx context.Context, name, timerName string, p TimerPatch) (*Timer, error) {
	resp, err := c.doJSON(ctx, http.MethodPatch, timerPath(name, timerName), p)
	if err != nil {
		return nil, err
	}
	return decodeTimer(resp)
}

// RemoveTimer removes timer timerName from task name.
func (c *Client) RemoveTimer(ctx context.Context, name, timerName string) error {
	resp, err := c.do(ctx, http.MethodDelete, timerPath(name, timerName), nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// timerPath is the API path of timer timerName of task name.
func timerPath(name, timerName string) string {
	return taskPath(name) + "/timers/" + url.PathEscape(timerName)
}

// decodeTimer reads a timer from a 2xx answer and closes it.
func decodeTimer(resp *http.Response) (*Timer, error) {
	defer resp.Body.Close()
	var t Timer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRequestPart)).Decode(&t); err != nil {
		return nil, fmt.Errorf("reading the timer in the answer: %w", err)
	}
	return &t, nil
}
