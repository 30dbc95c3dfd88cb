package main

import (
	"context"
	"fmt"
	"time"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// The base task's Dockerfile: a file committed to git is 0644, hence the --chmod.
const ownBaseDockerfile = "FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\n" +
	"RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY version /base-version\n"

// ownPushLatency measures, over rounds runs of a base task on s, how soon the base's push queues the run of an
// app task built on it. s's registry notifies no one, so Kiln learns of the push only from the ImagePushed its
// worker publishes once the push is done; the push's moment is that event's observed_at. Each round commits a
// new version file to the base's repository, so that each build pushes a new digest, and waits for the base's
// and the app's runs to finish.
func ownPushLatency(ctx context.Context, s *served, h *gitHost, busybox []byte, rounds int) (baseLatency, error) {
	var l baseLatency
	c := api.NewClient(s.api, s.token)
	base := s.registry + "/bench/own-base:latest"
	baseRepo, err := h.repo(ctx, "bench/own-base.git", map[string]string{
		"Dockerfile": ownBaseDockerfile, "busybox": string(busybox), "version": "initial\n"})
	if err != nil {
		return l, err
	}
	appRepo, err := h.repo(ctx, "bench/own-app.git", map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN cat /base-version > /app-saw\n"})
	if err != nil {
		return l, err
	}
	if _, err := c.CreateTask(ctx, api.Task{Name: "own-base", Context: baseRepo.url + "#main", Tags: []string{"bench/own-base:latest"}}); err != nil {
		return l, fmt.Errorf("creating task own-base: %w", err)
	}
	app := api.Task{Name: "own-app", Context: appRepo.url + "#main", Tags: []string{"bench/own-app:{{.Run.ID}}"}}
	if err := createTracking(ctx, c, app, base); err != nil {
		return l, err
	}
	pushes, stopPushes, err := subscribe(s.nats, proto.SubjectImagePushed)
	if err != nil {
		return l, err
	}
	defer stopPushes()
	requested, stopRequested, err := subscribe(s.nats, proto.SubjectRunRequested)
	if err != nil {
		return l, err
	}
	defer stopRequested()
	time.Sleep(indexLag)

	for i := -1; i < rounds; i++ { // round -1 builds the initial commit and is not counted
		if i >= 0 {
			if err := baseRepo.commit(ctx, map[string]string{"version": fmt.Sprintf("round %d\n", i)}); err != nil {
				return l, err
			}
		}
		baseRun, err := c.RunTask(ctx, "own-base")
		if err != nil {
			return l, fmt.Errorf("running task own-base: %w", err)
		}
		pushed := new(proto.ImagePushed)
		_, err = next(pushes, runTimeout, "ImagePushed of run "+baseRun.ID, func(m seen) error {
			if err := gproto.Unmarshal(m.data, pushed); err != nil {
				return err
			}
			if pushed.GetRunId() != baseRun.ID || pushed.GetSource() != "push" {
				return errSkip
			}
			return nil
		})
		if err != nil {
			return l, fmt.Errorf("%w (base run: %v)", err, waitDone(ctx, c, baseRun.ID))
		}
		appRun, received, err := nextBaseRun(ctx, c, requested, app.Name, pushed.GetDigest())
		if err != nil {
			return l, err
		}
		if i >= 0 {
			l.add(appRun, received, pushed.GetObservedAt().AsTime())
		}
		for _, id := range []string{baseRun.ID, appRun.ID} {
			if err := waitDone(ctx, c, id); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}
