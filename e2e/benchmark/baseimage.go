package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/nats-io/nats.go"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// The shape of the base image benchmarks.
const (
	// baseSettle is the settle window (--base-settle) of the kiln serves they start: every figure is what Kiln
	// takes beyond it.
	baseSettle = time.Second
	// fanOutTasks is how many tasks build on the one base of the fan-out benchmark, fanOutRounds how many
	// pushes of it are measured.
	fanOutTasks  = 100
	fanOutRounds = 5
	// indexLag is how long the benchmarks wait after saving tasks before they push their base: the tasks
	// reach each process's index of tracked tags through a watch of the store, and a registry notification
	// of a tag no task tracks yet is dropped.
	indexLag = 500 * time.Millisecond
	// runTimeout bounds the wait for one run to be queued or to finish.
	runTimeout = 2 * time.Minute
)

// baseResults are the base image trigger measurements.
type baseResults struct {
	notify  baseLatency // a base pushed straight to the registry, learned by its notification
	ownPush baseLatency // a base pushed by a Kiln run, learned from the run's own ImagePushed
	fanOut  fanOutResults
	poll    pollResults
}

// benchBaseImages measures base image triggers: on a kiln serve with no workers, how soon a base pushed with
// go-containerregistry queues its dependent's run through the registry's notification, and then its 100
// dependents' runs; on a kiln serve whose registry notifies no one, how soon a base built and pushed by a
// Kiln run queues its dependent's; and, in this process, what polling 1,000 tags shared by 3,000 tasks asks
// of the registry.
func (b *bench) benchBaseImages(ctx context.Context, rounds int) (baseResults, error) {
	var r baseResults
	h, err := newGitHost(filepath.Join(b.tmp, "basegit"))
	if err != nil {
		return r, err
	}
	defer h.stop()
	ref, err := name.ParseReference(b.registry + "/base/busybox:1")
	if err != nil {
		return r, err
	}
	src, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return r, fmt.Errorf("reading the busybox base: %w", err)
	}
	settle := "--base-settle=" + baseSettle.String()

	log.Printf("base images: notification latency, %d rounds; fan-out to %d tasks, %d rounds", rounds, fanOutTasks, fanOutRounds)
	err = b.withServe(ctx, "kiln-base-notify", []string{"--workers", "0", settle}, func(s *served) error {
		var err error
		if r.notify, err = notifyLatency(ctx, s, h, src, rounds); err != nil {
			return fmt.Errorf("notification latency: %w", err)
		}
		if r.fanOut, err = fanOut(ctx, s, h, src, fanOutTasks, fanOutRounds); err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
		return nil
	})
	if err != nil {
		return r, err
	}

	log.Printf("base images: own-push latency, %d rounds", rounds)
	busybox, err := os.ReadFile(filepath.Join(b.root, "examples", "base", "busybox"))
	if err != nil {
		return r, err
	}
	err = b.withServe(ctx, "kiln-base-push", []string{"--workers", "2", settle, "--registry-notify=false"}, func(s *served) error {
		var err error
		if r.ownPush, err = ownPushLatency(ctx, s, h, busybox, rounds); err != nil {
			return fmt.Errorf("own-push latency: %w", err)
		}
		return nil
	})
	if err != nil {
		return r, err
	}

	log.Printf("base images: polling %d tags of %d tasks", pollTags, pollTags*pollTasksPerTag)
	if r.poll, err = benchPolling(ctx, filepath.Join(b.tmp, "basepoll")); err != nil {
		return r, fmt.Errorf("polling: %w", err)
	}
	return r, nil
}

// withServe starts a kiln serve with args, runs fn on it and stops it.
func (b *bench) withServe(ctx context.Context, name string, args []string, fn func(*served) error) error {
	s, err := b.startServe(ctx, name, args...)
	if err != nil {
		return err
	}
	defer s.stop()
	return fn(s)
}

// createTracking saves task and checks that Kiln read from its Dockerfile that it builds on base.
func createTracking(ctx context.Context, c *api.Client, task api.Task, base string) error {
	t, err := c.CreateTask(ctx, task)
	if err != nil {
		return fmt.Errorf("creating task %s: %w", task.Name, err)
	}
	for _, b := range t.Bases {
		if b.Reference == base && b.Runtime {
			return nil
		}
	}
	return fmt.Errorf("task %s was saved with bases %+v (%s), want %s", task.Name, t.Bases, t.BasesError, base)
}

// pushStamped pushes src with one more layer, holding /stamp, to the tag to with go-containerregistry, and
// returns the digest pushed and when remote.Write returned.
func pushStamped(ctx context.Context, src v1.Image, to, stamp string) (string, time.Time, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "stamp", Mode: 0o644, Size: int64(len(stamp))}); err != nil {
		return "", time.Time{}, err
	}
	if _, err := io.WriteString(tw, stamp); err != nil {
		return "", time.Time{}, err
	}
	if err := tw.Close(); err != nil {
		return "", time.Time{}, err
	}
	img, err := mutate.Append(src, mutate.Addendum{Layer: static.NewLayer(buf.Bytes(), types.OCILayer)})
	if err != nil {
		return "", time.Time{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return "", time.Time{}, err
	}
	ref, err := name.ParseReference(to)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(logins)); err != nil {
		return "", time.Time{}, fmt.Errorf("pushing %s: %w", to, err)
	}
	return d.String(), time.Now(), nil
}

// seen is a message published on a kiln serve's NATS, and when the benchmark received it.
type seen struct {
	data []byte
	at   time.Time
}

// subscribe receives what is published on subject at the NATS server at url, until stop. The channel is
// closed once stop has drained the subscription.
func subscribe(url, subject string) (msgs <-chan seen, stop func(), err error) {
	ch := make(chan seen, 4096)
	nc, err := nats.Connect(url, nats.ClosedHandler(func(*nats.Conn) { close(ch) }))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { ch <- seen{data: m.Data, at: time.Now()} }); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("subscribing to %s: %w", subject, err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return ch, func() { _ = nc.Drain() }, nil
}

// errSkip tells next that a message is not the one awaited.
var errSkip = errors.New("not this one")

// next returns the first message of msgs that accept takes (returns nil for), skipping those it answers
// errSkip and stopping at any other error, or at timeout.
func next(msgs <-chan seen, timeout time.Duration, what string, accept func(seen) error) (seen, error) {
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return seen{}, fmt.Errorf("waiting for %s: the subscription ended", what)
			}
			err := accept(m)
			if errors.Is(err, errSkip) {
				continue
			}
			return m, err
		case <-deadline:
			return seen{}, fmt.Errorf("no %s after %s", what, timeout)
		}
	}
}

// nextBaseRun waits for the RunRequested of task's base image run for digest, skipping any other run's, and
// returns the run's record and when its RunRequested was received.
func nextBaseRun(ctx context.Context, c *api.Client, requested <-chan seen, task, digest string) (*api.Run, time.Time, error) {
	var run *api.Run
	m, err := next(requested, runTimeout, "base image run of "+task, func(m seen) error {
		ev := new(proto.RunRequested)
		if err := gproto.Unmarshal(m.data, ev); err != nil {
			return err
		}
		r, err := c.Run(ctx, ev.GetRunId())
		if err != nil {
			return err
		}
		if r.TaskName != task || r.Trigger != "base_image" || len(r.BaseImage) != 1 || r.BaseImage[0].NewDigest != digest {
			return errSkip
		}
		run = r
		return nil
	})
	return run, m.at, err
}

// waitDone waits until run id has ended and checks that it succeeded.
func waitDone(ctx context.Context, c *api.Client, id string) error {
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		r, err := c.Run(ctx, id)
		if err != nil {
			return err
		}
		switch r.Status {
		case "Queued", "Running":
			time.Sleep(20 * time.Millisecond)
			continue
		case "Succeeded":
			return nil
		}
		return fmt.Errorf("run %s of task %s ended %s: %s", id, r.TaskName, r.Status, r.Error)
	}
	return fmt.Errorf("run %s has not ended after %s", id, runTimeout)
}

// baseLatency is, for each round, how long after a base image was pushed the run of the task built on it was
// queued, beyond the settle window.
type baseLatency struct {
	queued    []time.Duration // to the run record's queuedAt, which the watcher stamps once it has claimed the change
	requested []time.Duration // to the moment the benchmark received the run's RunRequested from NATS
	sources   map[string]int  // how the runs say Kiln learned of the push
}

func (l *baseLatency) add(run *api.Run, requested, pushed time.Time) {
	l.queued = append(l.queued, run.QueuedAt.Sub(pushed)-baseSettle)
	l.requested = append(l.requested, requested.Sub(pushed)-baseSettle)
	if l.sources == nil {
		l.sources = make(map[string]int)
	}
	l.sources[run.BaseImage[0].Source]++
}

// markdown is the base image sections of BENCHMARKS.md.
func (r baseResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Base image pushed → dependent run queued\n\n")
	fmt.Fprintf(&b, "Each on its own kiln serve with a settle window of %s (`--base-settle`), which every figure here "+
		"leaves out: it is the time Kiln waits on purpose for more changes. The window opens when the watcher "+
		"handles the first report of the change, so the figures hold what comes before (the report's way from the "+
		"push to the watcher) and after (the watcher noticing the window's end, claiming the change, resolving the "+
		"task's branch with a git ls-remote of its repository, served by git http-backend on loopback). Two end "+
		"points: the run record's queuedAt, which the watcher stamps when it has claimed the change, before it resolves "+
		"the branch, takes a run ID, writes the run and publishes its RunRequested; and the moment the benchmark received that RunRequested from the "+
		"kiln serve's NATS (a core subscription), when all of that is done. Each round waits for its run before the "+
		"next push, so no two land in one window; a first round, after the tasks are saved, is not counted. With %d "+
		"rounds, p99 is the slowest round.\n\n", baseSettle, len(r.notify.queued))
	fmt.Fprintf(&b, "- **By notification**: a kiln serve with no workers (`--workers 0`); a task whose Dockerfile is "+
		"FROM a tag of its embedded registry; each round pushes a new digest of that tag (the busybox base with one "+
		"more layer holding a stamp) straight to the registry with go-containerregistry (`remote.Write`), from the "+
		"moment remote.Write returns. The registry notifies Kiln's /v1/webhooks/registry, which publishes an "+
		"ImagePushed; the run is then canceled. Sources recorded by the runs: %s.\n", sourcesText(r.notify.sources))
	fmt.Fprintf(&b, "- **By Kiln's own push**: a kiln serve with two workers and its registry's notifications off "+
		"(`--registry-notify=false`), so that only the run's own report counts; a base task builds FROM scratch + "+
		"static busybox + a file that each round commits anew to its git repository, tagged bench/own-base:latest, "+
		"and an app task builds FROM it. Each round runs the base task (`RunTask`); from the ImagePushed's "+
		"observed_at, which the worker stamps right after the registry accepted the manifest and just before it "+
		"publishes the event. Each round waits for both builds to finish. Sources recorded: %s.\n\n", sourcesText(r.ownPush.sources))
	fmt.Fprintf(&b, "| learned by | to queuedAt p50 | p99 | to RunRequested received p50 | p99 | target | p99 ÷ target |\n|---|---|---|---|---|---|---|\n")
	for _, row := range []struct {
		name, label string
		l           baseLatency
		target      time.Duration
	}{
		{"registry notification", "1 s", r.notify, time.Second},
		{"Kiln's own push", "100 ms", r.ownPush, 100 * time.Millisecond},
	} {
		p99 := quantile(row.l.queued, 0.99)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | p99 ≤ %s after the window: %s | %.2f |\n", row.name,
			ms(quantile(row.l.queued, 0.5)), ms(p99), ms(quantile(row.l.requested, 0.5)), ms(quantile(row.l.requested, 0.99)),
			row.label, met(p99 <= row.target), float64(p99)/float64(row.target))
	}
	b.WriteString("\n")
	b.WriteString(r.fanOut.markdown())
	b.WriteString(r.poll.markdown())
	return b.String()
}

// sourcesText is the sources the runs recorded, with how many of each: "notification ×20".
func sourcesText(sources map[string]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(sources)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", s, sources[s]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
