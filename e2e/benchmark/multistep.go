package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// stepResults are the multi-step measurements: how much a step of a task file costs beyond the same build as
// a quick build of its own, and how soon a cmd step's command runs.
type stepResults struct {
	steps, rounds int
	stepTime      []time.Duration // a build step's startedAt → finishedAt, inside multi-step runs
	quickTime     []time.Duration // the same build as a quick build: its run's startedAt → finishedAt
	perStepTotal  []time.Duration // a whole multi-step run's startedAt → finishedAt, divided by its steps
	cmdStart      []time.Duration // a cmd step's startedAt → its command running
}

// benchSteps runs, rounds times and interleaved: a task file of steps build steps of the warm context, and
// the same build as steps quick builds; then a task file of steps cmd steps that each print when they run.
func (b *bench) benchSteps(ctx context.Context, steps, rounds int) (stepResults, error) {
	res := stepResults{steps: steps, rounds: rounds}
	c := api.NewClient(b.server, b.token)
	dir, err := b.context("steps", "always the same")
	if err != nil {
		return res, err
	}
	var file strings.Builder
	file.WriteString("steps:\n")
	for i := range steps {
		fmt.Fprintf(&file, "  - build: -t bench/steps:%d .\n", i)
	}
	var cmds strings.Builder
	cmds.WriteString("steps:\n")
	for range steps {
		fmt.Fprintf(&cmds, "  - cmd: %s/base/busybox:1 cat /proc/uptime\n", b.registry)
	}
	noPush := false
	// Warm BuildKit's cache of the context and the base's pull once, untimed.
	if _, err := b.submitWait(ctx, c, dir, api.BuildRequest{Push: &noPush}); err != nil {
		return res, err
	}
	for range rounds {
		run, err := b.submitWait(ctx, c, dir, api.BuildRequest{TaskFile: file.String()})
		if err != nil {
			return res, err
		}
		for _, s := range run.Steps {
			res.stepTime = append(res.stepTime, s.FinishedAt.Sub(*s.StartedAt))
		}
		res.perStepTotal = append(res.perStepTotal, run.FinishedAt.Sub(*run.StartedAt)/time.Duration(steps))
		for range steps {
			q, err := b.submitWait(ctx, c, dir, api.BuildRequest{Push: &noPush})
			if err != nil {
				return res, err
			}
			res.quickTime = append(res.quickTime, q.FinishedAt.Sub(*q.StartedAt))
		}
		run, err = b.submitWait(ctx, c, dir, api.BuildRequest{TaskFile: cmds.String()})
		if err != nil {
			return res, err
		}
		starts, err := b.cmdStarts(ctx, c, run)
		if err != nil {
			return res, err
		}
		res.cmdStart = append(res.cmdStart, starts...)
	}
	return res, nil
}

// submitWait submits req with dir as its context and waits for the run to succeed.
func (b *bench) submitWait(ctx context.Context, c *api.Client, dir string, req api.BuildRequest) (*api.Run, error) {
	pr, pw := newPipe()
	go func() { pw.CloseWithError(api.PackContext(ctx, dir, req.Dockerfile, pw)) }()
	run, err := c.SubmitRun(ctx, req, pr)
	pr.Close()
	if err != nil {
		return nil, err
	}
	for {
		if run, err = c.Run(ctx, run.ID); err != nil {
			return nil, err
		}
		if run.Status != "Queued" && run.Status != "Running" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if run.Status != "Succeeded" || run.StartedAt == nil || run.FinishedAt == nil {
		return nil, fmt.Errorf("run %s ended %s: %s", run.ID, run.Status, run.Error)
	}
	return run, nil
}

// uptimeLine is a cmd step's output: [step] the kernel's uptime, then its idle time.
var uptimeLine = regexp.MustCompile(`(?m)^\[(\S+)\] ([0-9]+\.[0-9]+) `)

// cmdStarts reads, for each cmd step of run, when its command ran (the kernel's uptime it printed, turned into
// a time by this machine's boot time) less the step's recorded start.
func (b *bench) cmdStarts(ctx context.Context, c *api.Client, run *api.Run) ([]time.Duration, error) {
	var log bytes.Buffer
	if err := c.Log(ctx, run.ID, false, &log); err != nil {
		return nil, err
	}
	boot, err := bootTime()
	if err != nil {
		return nil, err
	}
	ran := map[string]time.Time{}
	for _, m := range uptimeLine.FindAllStringSubmatch(log.String(), -1) {
		secs, _ := strconv.ParseFloat(m[2], 64)
		ran[m[1]] = boot.Add(time.Duration(secs * float64(time.Second)))
	}
	var out []time.Duration
	for _, s := range run.Steps {
		t, ok := ran[s.ID]
		if !ok {
			return nil, fmt.Errorf("run %s: step %s printed no uptime", run.ID, s.ID)
		}
		out = append(out, t.Sub(*s.StartedAt))
	}
	return out, nil
}

// bootTime is when this machine booted, from /proc/uptime: the clock a container shares with its host.
func bootTime() (time.Time, error) {
	b, err := os.ReadFile(filepath.Join("/proc", "uptime"))
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	secs, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading /proc/uptime: %w", err)
	}
	return now.Add(-time.Duration(secs * float64(time.Second))), nil
}

func (s stepResults) markdown() string {
	var b strings.Builder
	step, quick := quantile(s.stepTime, 0.5), quantile(s.quickTime, 0.5)
	perStep := step - quick
	total := quantile(s.perStepTotal, 0.5)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(&b, "## Multi-step runs\n\n")
	fmt.Fprintf(&b, "%d rounds, interleaved: a task file of %d build steps (each the warm build of the first section: "+
		"FROM the busybox base, COPY, RUN, all cached, exported as an OCI layout, not pushed), then the same build as %d "+
		"quick builds (`POST /v1/runs`, no push), then a task file of %d cmd steps on the cached busybox base.\n\n",
		s.rounds, s.steps, s.steps, s.steps)
	fmt.Fprintf(&b, "| measurement | median | compared with | per step | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| a build step, its start → end in the run record | %s | the same quick build's run, start → end: %s | %s | ≤ 50 ms: %s |\n",
		ms(step), ms(quick), ms(perStep), verdict(perStep <= 50*time.Millisecond))
	fmt.Fprintf(&b, "| a whole %d-step run, start → end, per step | %s | the quick build: %s | %s | (none) |\n",
		s.steps, ms(total), ms(quick), ms(total-quick))
	cmd50, cmd99 := quantile(s.cmdStart, 0.5), quantile(s.cmdStart, 0.99)
	fmt.Fprintf(&b, "\nA cmd step on a cached image, from the step's start in the run record to its command running (the "+
		"command prints the kernel's uptime, read against this machine's boot time; 10 ms resolution), %d steps: "+
		"p50 %s, p99 %s (target ≤ 300 ms: %s).\n\n", len(s.cmdStart), ms(cmd50), ms(cmd99), verdict(cmd50 <= 300*time.Millisecond))
	return b.String()
}
