package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// durabilityResults are what fsync before every acknowledgement costs: the same measurements on a kiln serve
// whose embedded NATS syncs every write (the default) and on one started with --nats-sync=false.
type durabilityResults struct {
	runs       int
	bursts     int // ingest bursts per side
	deliveries int // deliveries per burst
	concurrent int
	latency    map[bool][]time.Duration // by sync: Queued → Running
	ingested   map[bool]int             // by sync: deliveries answered 202
	ingestTime map[bool]time.Duration   // by sync: the bursts' time, added up
	fsType     string                   // the filesystem the data directories are on
}

// benchDurability starts two kiln serves with workers and two without, one of each with --nats-sync=false, and
// measures on each pair, interleaved: Queued → Running of runs submitted one at a time, and the ingest rate of
// bursts of signed push deliveries for a task on the git repository url.
func (b *bench) benchDurability(ctx context.Context, url, commit string, runs int) (durabilityResults, error) {
	res := durabilityResults{runs: runs, bursts: 4, deliveries: 500, concurrent: 16,
		latency: map[bool][]time.Duration{}, ingested: map[bool]int{}, ingestTime: map[bool]time.Duration{},
		fsType: fsType(b.tmp)}
	dir := filepath.Join(b.tmp, "ctx", "durability")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644); err != nil {
		return res, err
	}
	workers := map[bool]*served{}
	ingest := map[bool]*served{}
	for _, sync := range []bool{true, false} {
		flag := fmt.Sprintf("--nats-sync=%t", sync)
		s, err := b.startServe(ctx, "kiln-sync-"+fmt.Sprint(sync), "--workers", "1", flag)
		if err != nil {
			return res, err
		}
		defer s.stop()
		workers[sync] = s
		if s, err = b.startServe(ctx, "kiln-ingest-sync-"+fmt.Sprint(sync), "--workers", "0", "--registry-listen", "", flag); err != nil {
			return res, err
		}
		defer s.stop()
		ingest[sync] = s
		if err := b.createTask(ctx, s.api, s.token, url); err != nil {
			return res, err
		}
	}

	noPush := false
	for i := range runs + 1 { // the first round warms each side and is not counted
		for _, sync := range []bool{true, false} {
			c := api.NewClient(workers[sync].api, workers[sync].token)
			run, err := b.submitWait(ctx, c, dir, api.BuildRequest{Push: &noPush})
			if err != nil {
				return res, fmt.Errorf("nats-sync=%t: %w", sync, err)
			}
			if i > 0 {
				res.latency[sync] = append(res.latency[sync], run.StartedAt.Sub(*run.QueuedAt))
			}
		}
	}

	// Distinct pushes, each a change of its own: a delivery of a change already handled starts nothing and
	// would measure the dedupe instead. The two sides are separate Kilns and take the same pushes.
	pushes, err := pushDeliveries(b.root, url, commit, res.bursts*res.deliveries)
	if err != nil {
		return res, err
	}
	for burst := range res.bursts {
		these := pushes[burst*res.deliveries : (burst+1)*res.deliveries]
		for _, sync := range []bool{true, false} {
			n, d, err := webhookIngest(ingest[sync].api, these, res.concurrent)
			if err != nil {
				return res, fmt.Errorf("webhook ingest, nats-sync=%t: %w", sync, err)
			}
			res.ingested[sync] += n
			res.ingestTime[sync] += d
		}
	}
	return res, nil
}

// fsType is the type of the filesystem dir is on, from /proc/self/mounts (the longest mount point holding it).
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := "", "unknown"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if (dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) > len(best) {
			best, typ = f[1], f[0]+" ("+f[2]+")"
		}
	}
	return typ
}

func (d durabilityResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Durable acknowledgements: fsync before every ack\n\n")
	fmt.Fprintf(&b, "The embedded NATS fsyncs every stream and bucket write before acknowledging it (JetStream's "+
		"`sync_interval: always`), so that a 202 survives a power cut. The same figures on a kiln serve started with "+
		"`--nats-sync=false` (JetStream's default: acknowledged from the page cache, synced every 2 minutes), measured "+
		"in the same run, interleaved. Data directories on %s.\n\n", d.fsType)
	fmt.Fprintf(&b, "| | fsync on (default) | fsync off | target |\n|---|---|---|---|\n")
	rate := func(sync bool) float64 {
		if d.ingestTime[sync] <= 0 {
			return 0
		}
		return float64(d.ingested[sync]) / d.ingestTime[sync].Seconds()
	}
	on, off := rate(true), rate(false)
	fmt.Fprintf(&b, "| webhook ingest (%d bursts of %d deliveries, %d at a time, no workers) | %.0f/s (%d answered 202) | "+
		"%.0f/s (%d answered 202) | ≥ 1,000/s with fsync on: %s |\n", d.bursts, d.deliveries, d.concurrent,
		on, d.ingested[true], off, d.ingested[false], met(on >= 1000))
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p99", 0.99}} {
		fmt.Fprintf(&b, "| Queued → Running %s (%d runs one at a time, each side) | %s | %s | |\n", q.name,
			len(d.latency[true]), ms(quantile(d.latency[true], q.q)), ms(quantile(d.latency[false], q.q)))
	}
	b.WriteString("\n")
	return b.String()
}
