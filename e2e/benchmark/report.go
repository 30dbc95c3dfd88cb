package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// results collects the samples of one benchmark run.
type results struct {
	started           time.Time
	rounds, runs      int
	samples           map[string][]time.Duration
	rssIdle, rssAfter int64
	webhook           webhookResults
	flood             floodResults
	base              baseResults
	steps             stepResults
	network           networkResults
	durability        durabilityResults
	git               gitFetchResults
	contextKey        contextKeyResults
}

func (r *results) add(key string, d time.Duration) {
	if r.samples == nil {
		r.samples = map[string][]time.Duration{}
	}
	r.samples[key] = append(r.samples[key], d)
}

func (r *results) median(key string) time.Duration { return quantile(r.samples[key], 0.5) }

// ratio is the median of kiln's builds over the median of buildctl's, for one kind (warm or cold).
func (r *results) ratio(kind string) float64 {
	return float64(r.median(kind+"/kiln")) / float64(r.median(kind+"/buildctl"))
}

func (r *results) write(path string) error {
	var b strings.Builder
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` (e2e/benchmark) on %s UTC, in %s.\n\n", r.started.UTC().Format("2006-01-02 15:04"), time.Since(r.started).Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s. Versions: %s.\n\n", machine(), versions())
	fmt.Fprintf(&b, "Machines here are noisy: figures are medians (and p99 where a tail matters), and each comparison "+
		"is measured in the same run, interleaved, against the same buildkitd and registry.\n\n")

	fmt.Fprintf(&b, "## A small build end to end: `kiln build` vs raw `buildctl`\n\n")
	fmt.Fprintf(&b, "%d builds of each, alternating. The build: FROM the busybox base, COPY a file, RUN a step, push to the "+
		"registry embedded in kiln serve. `kiln build` is the whole client: pack and upload the context, queue on "+
		"JetStream, a worker extracts it, solves, exports an OCI layout and pushes with go-containerregistry, the CLI "+
		"streams the log and reads the result. The baseline is `buildctl build --output type=image,push=true` against "+
		"the same buildkitd. Warm: the same context every time (every step cached). Cold: a new file every build, so "+
		"COPY, RUN, export and push run for real.\n\n", r.rounds)
	fmt.Fprintf(&b, "| build | kiln build median | buildctl median | ratio | target |\n|---|---|---|---|---|\n")
	warm, cold := r.ratio("warm"), r.ratio("cold")
	fmt.Fprintf(&b, "| warm | %s | %s | %.2f | ratio ≤ 1.15: %s |\n", ms(r.median("warm/kiln")), ms(r.median("warm/buildctl")), warm, verdict(warm <= 1.15))
	fmt.Fprintf(&b, "| cold | %s | %s | %.2f | (none) |\n", ms(r.median("cold/kiln")), ms(r.median("cold/buildctl")), cold)
	tiny := r.median("cold/kiln")
	fmt.Fprintf(&b, "\nA tiny image, cold, through kiln build: median %s (target ≤ 1 s: %s; ACR documents about 10 s for its "+
		"hello-world quick build).\n\n", ms(tiny), verdict(tiny <= time.Second))

	q := r.samples["queued-running"]
	p50, p99 := quantile(q, 0.5), quantile(q, 0.99)
	fmt.Fprintf(&b, "## Queued → Running\n\nFrom the run records (`startedAt - queuedAt`) of %d runs submitted one at a "+
		"time to an idle Kiln: p50 %s, p99 %s, max %s (target p99 ≤ 20 ms: %s).\n\n", len(q), ms(p50), ms(p99), ms(quantile(q, 1)), verdict(p99 <= 20*time.Millisecond))

	fmt.Fprintf(&b, "## kiln serve resident memory\n\nThe kiln serve process alone (embedded NATS JetStream and registry "+
		"included, buildkitd apart), VmRSS from /proc:\n\n| when | RSS | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| idle, after start | %s | ≤ 100 MB: %s |\n", mb(r.rssIdle), verdict(r.rssIdle <= 100e6))
	fmt.Fprintf(&b, "| after %d builds and %d runs | %s | ≤ 100 MB: %s |\n", 1+4*r.rounds+2, r.runs, mb(r.rssAfter), verdict(r.rssAfter <= 100e6))

	w := r.webhook
	wp50, wp99 := quantile(w.toRunning, 0.5), quantile(w.toRunning, 0.99)
	fmt.Fprintf(&b, "\n## Webhook received → run Running\n\nA signed GitHub push delivery (the real payload of the webhook "+
		"tests) for a task, %d times, one at a time on an idle Kiln; from the moment the delivery is sent to the run "+
		"record's startedAt (the clone comes after): p50 %s, p99 %s (target p99 ≤ 10 ms: %s).\n", len(w.toRunning), ms(wp50), ms(wp99), verdict(wp99 <= 10*time.Millisecond))
	fmt.Fprintf(&b, "\n")
	b.WriteString(w.ingestMarkdown())
	b.WriteString(r.flood.markdown())
	b.WriteString(r.durability.markdown())
	b.WriteString(r.steps.markdown())
	b.WriteString(r.network.markdown())
	b.WriteString(r.base.markdown())
	b.WriteString(r.git.markdown())
	b.WriteString(r.contextKey.markdown())
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// met is a target's verdict: met, or missed in bold.
func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	kernel, _ := exec.Command("uname", "-sr").Output()
	return fmt.Sprintf("%s, %d cores%s, %s", cpu, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)))
}

func versions() string {
	v := []string{runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			switch d.Path {
			case "github.com/moby/buildkit", "github.com/nats-io/nats-server/v2", "github.com/google/go-containerregistry", "github.com/distribution/distribution/v3":
				v = append(v, strings.TrimPrefix(d.Path, "github.com/")+" "+d.Version)
			}
		}
	}
	if out, err := exec.Command("runc", "--version").Output(); err == nil {
		v = append(v, strings.SplitN(string(out), "\n", 2)[0])
	}
	return strings.Join(v, ", ")
}

func newPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
