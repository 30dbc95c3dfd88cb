package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/deploy/natsd"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/baseimage"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// The shape of the polling benchmark: pollTags tags, in pollRepos repositories, each the base of
// pollTasksPerTag tasks, polled by pollProcesses Pollers over pollCycles cycles.
const (
	pollTags        = 1000
	pollRepos       = 100
	pollTasksPerTag = 3
	pollProcesses   = 2
	pollCycles      = 3
	// pollStep moves the clock past the latest next poll any tag can have: the interval and its jitter.
	pollStep = basepoll.DefaultInterval + basepoll.DefaultInterval/10 + time.Second
)

// pollCycle is what reached the registry in one cycle of the Pollers, and how long the cycle took.
type pollCycle struct {
	heads, pings, other int                // manifest HEADs, pings (GET /v2/), and requests of any other kind
	polled              [pollProcesses]int // tags each Poller asked for
	failed              int                // polls that failed, all Pollers together
	took                time.Duration
}

// pollResults are the cycles of the polling benchmark.
type pollResults struct {
	first  pollCycle // the first, which records each tag's first digest
	cycles []pollCycle
}

// requestCounter counts the requests that reach a registry.
type requestCounter struct {
	mu                  sync.Mutex
	heads, pings, other int
}

func (c *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		switch {
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/"):
			c.heads++
		case r.Method == http.MethodGet && r.URL.Path == "/v2/":
			c.pings++
		default:
			c.other++
		}
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *requestCounter) counts() (heads, pings, other int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heads, c.pings, c.other
}

// fakeClock is the Pollers' time, which moves only when the benchmark says.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// benchPolling measures, in this process, what the Pollers of two Kiln processes ask of a registry to follow
// pollTags tags that pollTags*pollTasksPerTag tasks build on: an embedded NATS JetStream in dir, the store
// opened on two connections to it, in each "process" a baseimage.Index fed by the store and a Poller over it,
// and go-containerregistry's in-process registry counting the requests that reach it.
func benchPolling(ctx context.Context, dir string) (pollResults, error) {
	var r pollResults
	ns, err := natsd.Start(ctx, natsd.Config{Dir: filepath.Join(dir, "nats"), User: "bench", Password: "bench-password"})
	if err != nil {
		return r, err
	}
	defer ns.Shutdown()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	counter := &requestCounter{}
	polled := httptest.NewServer(counter.wrap(reg))
	defer polled.Close()
	direct := httptest.NewServer(reg) // the benchmark's own pushes, not counted
	defer direct.Close()
	refs, err := pushPollTags(ctx, strings.TrimPrefix(direct.URL, "http://"), strings.TrimPrefix(polled.URL, "http://"))
	if err != nil {
		return r, err
	}

	// The indexes stop (cancel, wg) before their connections close, and those before the server stops.
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	clk := &fakeClock{now: time.Now()}
	var pollers []*basepoll.Poller
	for i := range pollProcesses {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("bench", "bench-password"))
		if err != nil {
			return r, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return r, err
		}
		st, err := store.Open(ctx, js, store.Config{})
		if err != nil {
			return r, err
		}
		if i == 0 {
			if err := createPollTasks(ctx, st, refs); err != nil {
				return r, err
			}
		}
		ix := baseimage.NewIndex()
		wg.Go(func() {
			if err := ix.Run(ctx, st); err != nil {
				log.Printf("polling: index: %v", err)
			}
		})
		select {
		case <-ix.Ready():
		case <-time.After(time.Minute):
			return r, fmt.Errorf("the index of process %d is not ready after a minute", i+1)
		}
		if n := len(ix.Refs()); n != pollTags {
			return r, fmt.Errorf("the index of process %d tracks %d tags, want %d", i+1, n, pollTags)
		}
		pollers = append(pollers, &basepoll.Poller{Store: st, Publisher: js, Tags: ix, Now: clk.Now})
	}

	if r.first, err = pollCycleOnce(ctx, pollers, counter); err != nil {
		return r, err
	}
	for range pollCycles {
		clk.advance(pollStep)
		c, err := pollCycleOnce(ctx, pollers, counter)
		if err != nil {
			return r, err
		}
		r.cycles = append(r.cycles, c)
	}
	return r, nil
}

// pushPollTags pushes pollTags tags, pollTags/pollRepos to a repository each on one random image, through
// the registry at pushHost, and returns their references as the Pollers name them, at pollHost.
func pushPollTags(ctx context.Context, pushHost, pollHost string) ([]string, error) {
	pusher, err := remote.NewPusher(remote.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	var refs []string
	for repo := range pollRepos {
		img, err := random.Image(256, 1)
		if err != nil {
			return nil, err
		}
		for tag := range pollTags / pollRepos {
			path := fmt.Sprintf("bench/poll%02d:%d", repo, tag)
			t, err := name.NewTag(pushHost + "/" + path)
			if err != nil {
				return nil, err
			}
			if err := pusher.Push(ctx, t, img); err != nil {
				return nil, fmt.Errorf("pushing %s: %w", t, err)
			}
			refs = append(refs, pollHost+"/"+path)
		}
	}
	return refs, nil
}

// createPollTasks saves pollTasksPerTag tasks on each of refs, 16 at a time.
func createPollTasks(ctx context.Context, st *store.Store, refs []string) error {
	jobs := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				t := &proto.Task{
					Name:      fmt.Sprintf("poll-%04d", i),
					Source:    &proto.GitContext{Url: "http://127.0.0.1:1/poll.git", Ref: "main"},
					Tags:      []string{"{{.Run.Registry}}/poll:{{.Run.ID}}"},
					Push:      true,
					Bases:     []*proto.BaseDependency{{Reference: refs[i%len(refs)], Runtime: true}},
					UpdatedAt: timestamppb.Now(),
				}
				if err := st.CreateTask(ctx, t); err != nil {
					errs <- fmt.Errorf("creating task %s: %w", t.Name, err)
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range len(refs) * pollTasksPerTag {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	return err
}

// pollCycleOnce has every Poller pass over the tags at the same time, as their processes would, and returns
// what reached the registry meanwhile.
func pollCycleOnce(ctx context.Context, pollers []*basepoll.Poller, counter *requestCounter) (pollCycle, error) {
	var c pollCycle
	heads, pings, other := counter.counts()
	passes := make([]basepoll.Pass, len(pollers))
	errs := make([]error, len(pollers))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pollers {
		wg.Go(func() { passes[i], errs[i] = p.PollOnce(ctx) })
	}
	wg.Wait()
	c.took = time.Since(start)
	h, p, o := counter.counts()
	c.heads, c.pings, c.other = h-heads, p-pings, o-other
	for i, p := range passes {
		if errs[i] != nil {
			return c, fmt.Errorf("PollOnce of process %d: %w", i+1, errs[i])
		}
		c.polled[i] = p.Polled
		c.failed += p.Failed
	}
	return c, nil
}

// markdown is the polling section of BENCHMARKS.md.
func (r pollResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Polling tracked base image tags\n\n")
	fmt.Fprintf(&b, "In the benchmark's own process, as %d Kiln processes would: an embedded NATS JetStream "+
		"(deploy/natsd, file storage) with the store opened on %d connections to it; %d tasks saved in the store, %d "+
		"on each of %d tags (%d repositories of %d tags) of go-containerregistry's in-process registry, which "+
		"counts the requests that reach it; in each \"process\" a `baseimage.Index` fed by the store's watch of "+
		"tasks, and a `basepoll.Poller` over that index, with its defaults (interval %s, jitter 10%%, %d polls at a "+
		"time) and a clock that moves only when the benchmark says. In each cycle the Pollers call PollOnce at the "+
		"same time; between cycles the clock moves on by %s, after which every tag is due again. The first pass "+
		"records each tag's first digest and pays for most of the Pollers' pings; the %d cycles after it "+
		"are the ones measured. A ping is go-containerregistry's `GET /v2/`, which a Poller sends the first time it asks "+
		"for a tag of a repository, and whose answer it reuses for an hour. The time is the cycle's, on the wall clock.\n\n",
		pollProcesses, pollProcesses, pollTags*pollTasksPerTag, pollTasksPerTag, pollTags, pollRepos, pollTags/pollRepos,
		basepoll.DefaultInterval, basepoll.DefaultConcurrency, pollStep, len(r.cycles))
	fmt.Fprintf(&b, "| pass | manifest HEADs | pings (GET /v2/) | other requests | requests per distinct tag | tags polled, process 1 + 2 | failed | time |\n|---|---|---|---|---|---|---|---|\n")
	row := func(label string, c pollCycle) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.3f | %d + %d | %d | %s |\n", label, c.heads, c.pings, c.other,
			float64(c.heads+c.pings+c.other)/pollTags, c.polled[0], c.polled[1], c.failed, ms(c.took))
	}
	row("first (records the first digests)", r.first)
	headsOK, allOK := len(r.cycles) > 0, len(r.cycles) > 0
	var took []time.Duration
	for i, c := range r.cycles {
		row(fmt.Sprintf("cycle %d", i+1), c)
		headsOK = headsOK && c.heads == pollTags
		allOK = allOK && c.heads+c.pings+c.other == pollTags
		took = append(took, c.took)
	}
	pings := r.first.pings
	for _, c := range r.cycles {
		pings += c.pings
	}
	fmt.Fprintf(&b, "\nTarget, one request per distinct tag per cycle (%d), in every measured cycle: manifest HEADs %s; "+
		"requests of every kind %s. Median cycle time %s.\n\n", pollTags, met(headsOK), met(allOK), ms(quantile(took, 0.5)))
	fmt.Fprintf(&b, "The pings of the %d passes add up to %d, for %d repositories and %d Pollers: each Poller pings each "+
		"repository once, in the first pass that hands it a tag of that repository, which can be a later cycle when "+
		"the other Poller claimed all of that repository's tags before.\n\n",
		len(r.cycles)+1, pings, pollRepos, pollProcesses)
	return b.String()
}
