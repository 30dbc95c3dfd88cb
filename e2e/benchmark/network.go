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

// networkResults are the cost of a RUN step's own network namespace: how soon its command runs on the
// isolated bridge, which is every build's network, against the host's network, which has no namespace to set up.
type networkResults struct {
	rounds         int
	isolated, host []time.Duration // from the RUN step's start in BuildKit to its command's first line
}

// benchNetwork runs rounds builds on each network, alternating, on a kiln serve that allows host network: a
// RUN step that prints a line made new by a build argument, so that it runs every time rather than coming
// from BuildKit's cache.
func (b *bench) benchNetwork(ctx context.Context, rounds int) (networkResults, error) {
	res := networkResults{rounds: rounds}
	serve, err := b.startServe(ctx, "kiln-network", "--workers", "1", "--allow-host-network")
	if err != nil {
		return res, err
	}
	defer serve.stop()
	c := api.NewClient(serve.api, serve.token)
	dir := filepath.Join(b.tmp, "ctx", "network")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	df := "FROM " + b.registry + "/base/busybox:1\nARG N\nRUN echo started-$N\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return res, err
	}
	noPush := false
	for i := range rounds + 1 { // the first round warms the base's pull and is not counted
		for _, network := range []string{"default", "host"} {
			nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
			run, err := b.submitWait(ctx, c, dir, api.BuildRequest{Push: &noPush, Network: network,
				BuildArgs: map[string]string{"N": nonce}})
			if err != nil {
				return res, fmt.Errorf("network %s: %w", network, err)
			}
			d, err := runStart(ctx, c, run.ID, "started-"+nonce)
			if err != nil {
				return res, err
			}
			switch {
			case i == 0:
			case network == "host":
				res.host = append(res.host, d)
			default:
				res.isolated = append(res.isolated, d)
			}
		}
	}
	return res, nil
}

// stepLine is a RUN step's output line in BuildKit's plain progress: "#7 0.052 TEXT", the seconds since the step
// started.
var stepLine = regexp.MustCompile(`(?m)^#\d+ (\d+\.\d+) (\S+)$`)

// runStart reads from run id's log how long after its step started the line want was printed.
func runStart(ctx context.Context, c *api.Client, id, want string) (time.Duration, error) {
	var log bytes.Buffer
	if err := c.Log(ctx, id, false, &log); err != nil {
		return 0, err
	}
	for _, m := range stepLine.FindAllStringSubmatch(log.String(), -1) {
		if m[2] == want {
			secs, err := strconv.ParseFloat(m[1], 64)
			return time.Duration(secs * float64(time.Second)), err
		}
	}
	return 0, fmt.Errorf("run %s: no line %q in its log", id, want)
}

func (n networkResults) markdown() string {
	var b strings.Builder
	iso, host := quantile(n.isolated, 0.5), quantile(n.host, 0.5)
	fmt.Fprintf(&b, "## A RUN step's network namespace\n\n")
	fmt.Fprintf(&b, "Every RUN step runs in a network namespace of its own on buildkitd's isolated bridge (the default); "+
		"`--network host` (on a kiln serve with `--allow-host-network`) runs it in the host's. %d builds of each, "+
		"alternating: FROM the cached busybox base, a RUN step that prints a line a build argument makes new, so that it "+
		"runs every time. Measured from the step's start to its first line of output, as BuildKit times them in the log "+
		"(1 ms resolution).\n\n", n.rounds)
	fmt.Fprintf(&b, "| network | RUN start median | p90 |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| isolated (default) | %s | %s |\n", ms(iso), ms(quantile(n.isolated, 0.9)))
	fmt.Fprintf(&b, "| host | %s | %s |\n", ms(host), ms(quantile(n.host, 0.9)))
	if host > 0 {
		fmt.Fprintf(&b, "\nIsolated over host: %.2f×, %s more per RUN step. BuildKit keeps a released namespace, "+
			"address and all, for reuse for 5 minutes (util/network/netpool), so steps that follow one another "+
			"mostly skip setting one up; a step that finds none free pays for a new one.\n\n", float64(iso)/float64(host), ms(iso-host))
	}
	return b.String()
}
