package main

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// notifyLatency measures, over rounds pushes, how soon a new digest of a base pushed straight to the embedded
// registry of s queues the run of the task built on it. Kiln learns of the push only by the registry's
// notification. s runs no workers: each run is canceled while it waits in the queue.
func notifyLatency(ctx context.Context, s *served, h *gitHost, src v1.Image, rounds int) (baseLatency, error) {
	var l baseLatency
	c := api.NewClient(s.api, s.token)
	base := s.registry + "/bench/base:1"
	if _, _, err := pushStamped(ctx, src, base, "initial"); err != nil {
		return l, err
	}
	repo, err := h.repo(ctx, "bench/notify-app.git", map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /stamp\n"})
	if err != nil {
		return l, err
	}
	task := api.Task{Name: "notify-app", Context: repo.url + "#main", Tags: []string{"bench/notify-app:{{.Run.ID}}"}}
	if err := createTracking(ctx, c, task, base); err != nil {
		return l, err
	}
	requested, stop, err := subscribe(s.nats, proto.SubjectRunRequested)
	if err != nil {
		return l, err
	}
	defer stop()
	time.Sleep(indexLag)

	for i := -1; i < rounds; i++ { // round -1 is not counted
		digest, pushed, err := pushStamped(ctx, src, base, fmt.Sprintf("round %d at %d", i, time.Now().UnixNano()))
		if err != nil {
			return l, err
		}
		run, received, err := nextBaseRun(ctx, c, requested, task.Name, digest)
		if err != nil {
			return l, err
		}
		if i >= 0 {
			l.add(run, received, pushed)
		}
		if _, err := c.Cancel(ctx, run.ID); err != nil {
			return l, fmt.Errorf("canceling run %s: %w", run.ID, err)
		}
	}
	return l, nil
}
