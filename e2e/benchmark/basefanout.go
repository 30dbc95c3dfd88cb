package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// fanOutResults are, for each push of the fan-out benchmark's base, when its dependents' runs were queued,
// from the push, less the settle window.
type fanOutResults struct {
	tasks        int
	first, last  []time.Duration // the earliest and the latest queuedAt of the round's runs
	lastReceived []time.Duration // the last of the round's RunRequested received from NATS
}

// fanOut measures, over rounds pushes, how soon a new digest of one base pushed straight to the embedded
// registry of s queues the runs of all tasks built on it. s runs no workers, so that the runs stay queued
// and no build takes the machine's cores meanwhile.
func fanOut(ctx context.Context, s *served, h *gitHost, src v1.Image, tasks, rounds int) (fanOutResults, error) {
	r := fanOutResults{tasks: tasks}
	c := api.NewClient(s.api, s.token)
	base := s.registry + "/bench/fan-base:1"
	if _, _, err := pushStamped(ctx, src, base, "initial"); err != nil {
		return r, err
	}
	repo, err := h.repo(ctx, "bench/fan-app.git", map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /stamp\n"})
	if err != nil {
		return r, err
	}
	for i := range tasks {
		name := fmt.Sprintf("fan-%03d", i)
		task := api.Task{Name: name, Context: repo.url + "#main", Tags: []string{"bench/" + name + ":{{.Run.ID}}"}}
		if err := createTracking(ctx, c, task, base); err != nil {
			return r, err
		}
	}
	requested, stop, err := subscribe(s.nats, proto.SubjectRunRequested)
	if err != nil {
		return r, err
	}
	defer stop()
	time.Sleep(indexLag)

	for round := -1; round < rounds; round++ { // round -1 is not counted
		digest, pushed, err := pushStamped(ctx, src, base, fmt.Sprintf("round %d at %d", round, time.Now().UnixNano()))
		if err != nil {
			return r, err
		}
		// Only the records are read while the runs are queued; the records are read once all are.
		var ids []string
		var last time.Time
		for len(ids) < tasks {
			m, err := next(requested, runTimeout, fmt.Sprintf("run %d of %d", len(ids)+1, tasks), func(seen) error { return nil })
			if err != nil {
				return r, err
			}
			ev := new(proto.RunRequested)
			if err := gproto.Unmarshal(m.data, ev); err != nil {
				return r, err
			}
			ids, last = append(ids, ev.GetRunId()), m.at
		}
		var first, final time.Time
		for _, id := range ids {
			run, err := c.Run(ctx, id)
			if err != nil {
				return r, err
			}
			if !strings.HasPrefix(run.TaskName, "fan-") || run.Trigger != "base_image" || len(run.BaseImage) != 1 || run.BaseImage[0].NewDigest != digest {
				return r, fmt.Errorf("run %s (task %s, trigger %s, changes %+v) is not one of the fan-out's for %s", id, run.TaskName, run.Trigger, run.BaseImage, digest)
			}
			if q := *run.QueuedAt; first.IsZero() || q.Before(first) {
				first = q
			}
			if q := *run.QueuedAt; q.After(final) {
				final = q
			}
		}
		if round >= 0 {
			r.first = append(r.first, first.Sub(pushed)-baseSettle)
			r.last = append(r.last, final.Sub(pushed)-baseSettle)
			r.lastReceived = append(r.lastReceived, last.Sub(pushed)-baseSettle)
		}
	}
	return r, nil
}

// markdown is the fan-out section of BENCHMARKS.md.
func (r fanOutResults) markdown() string {
	var b strings.Builder
	last, worst := quantile(r.last, 0.5), quantile(r.last, 1)
	fmt.Fprintf(&b, "## Base image fan-out\n\n")
	fmt.Fprintf(&b, "%d tasks build FROM one tag of the embedded registry of a kiln serve with no workers (the runs "+
		"stay queued, and no build takes the two cores meanwhile), settle window %s. Each of %d rounds (a first one "+
		"not counted) pushes a new digest of the tag straight to the registry with go-containerregistry, which "+
		"notifies Kiln, and waits until it has received the RunRequested of all %d runs on the kiln serve's NATS; "+
		"it then reads their records. From the moment remote.Write returned, less the settle window:\n\n",
		r.tasks, baseSettle, len(r.last), r.tasks)
	fmt.Fprintf(&b, "| | p50 | worst | target |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| first run queued (queuedAt) | %s | %s | |\n", ms(quantile(r.first, 0.5)), ms(quantile(r.first, 1)))
	fmt.Fprintf(&b, "| %dth run queued (latest queuedAt) | %s | %s | ≤ 2 s after the window, every round: %s |\n", r.tasks, ms(last), ms(worst), met(worst <= 2*time.Second))
	fmt.Fprintf(&b, "| %dth RunRequested received | %s | %s | |\n", r.tasks, ms(quantile(r.lastReceived, 0.5)), ms(quantile(r.lastReceived, 1)))
	spread := make([]time.Duration, len(r.last))
	for i := range r.last {
		spread[i] = r.last[i] - r.first[i]
	}
	fmt.Fprintf(&b, "\nSpread from the first run queued to the %dth: p50 %s, worst %s.\n\n", r.tasks, ms(quantile(spread, 0.5)), ms(quantile(spread, 1)))
	return b.String()
}
