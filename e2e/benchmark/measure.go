package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// bench holds what the measurements share.
type bench struct {
	root, tmp    string
	bin          func(string) string
	server       string
	token        string // the server's
	registry     string
	buildkitAddr string
	seq          int
}

// waitReady waits for the Kiln at server to answer /readyz with 200.
func waitReady(ctx context.Context, server string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kiln serve at %s not ready after 2 minutes", server)
}

// kiln runs the kiln binary against the server.
func (b *bench) kiln(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, b.bin("kiln"), args...)
	cmd.Env = append(b.env(), "KILN_SERVER="+b.server, "KILN_TOKEN="+b.token)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kiln %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) buildctl(ctx context.Context, dir, ref string) error {
	cmd := exec.CommandContext(ctx, b.bin("buildctl"), "--addr", b.buildkitAddr, "build", "--frontend", "dockerfile.v0",
		"--local", "context="+dir, "--local", "dockerfile="+dir,
		"--output", "type=image,name="+ref+",push=true,registry.insecure=true")
	cmd.Env = b.env() // DOCKER_CONFIG: the embedded registry's credentials
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("buildctl build: %w\n%s", err, out)
	}
	return nil
}

// context writes a small build context: a RUN step on the busybox base and, when stamp is not empty, a file
// whose new content makes every step after it a cache miss.
func (b *bench) context(name, stamp string) (string, error) {
	dir := filepath.Join(b.tmp, "ctx", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	df := "FROM " + b.registry + "/base/busybox:1\nCOPY stamp.txt /stamp.txt\nRUN cat /stamp.txt > /out && echo built >> /out\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "stamp.txt"), []byte(stamp+"\n"), 0o644)
}

// compareBuilds times kiln build and buildctl, alternately, warm then cold.
func (b *bench) compareBuilds(ctx context.Context, r *results) error {
	warm, err := b.context("warm", "always the same")
	if err != nil {
		return err
	}
	// Fill the cache for the warm builds, on both sides, before timing.
	if err := b.kiln(ctx, "build", "-t", "bench/warm:kiln", warm); err != nil {
		return err
	}
	if err := b.buildctl(ctx, warm, b.registry+"/bench/warm:buildctl"); err != nil {
		return err
	}
	for i := 0; i < r.rounds; i++ {
		for _, side := range []string{"kiln", "buildctl"} {
			t, err := b.timeBuild(ctx, side, warm, "warm")
			if err != nil {
				return err
			}
			r.add("warm/"+side, t)
			b.seq++
			cold, err := b.context(fmt.Sprintf("cold-%d", b.seq), fmt.Sprintf("stamp %d %d", b.seq, time.Now().UnixNano()))
			if err != nil {
				return err
			}
			if t, err = b.timeBuild(ctx, side, cold, "cold"); err != nil {
				return err
			}
			r.add("cold/"+side, t)
		}
	}
	return nil
}

func (b *bench) timeBuild(ctx context.Context, side, dir, kind string) (time.Duration, error) {
	start := time.Now()
	var err error
	if side == "kiln" {
		err = b.kiln(ctx, "build", "-t", "bench/"+kind+":kiln", dir)
	} else {
		err = b.buildctl(ctx, dir, b.registry+"/bench/"+kind+":buildctl")
	}
	return time.Since(start), err
}

// queueLatency submits runs one at a time to the idle Kiln and reads Queued → Running from their records.
func (b *bench) queueLatency(ctx context.Context, r *results) error {
	c := api.NewClient(b.server, b.token)
	dir, err := b.context("latency", "latency")
	if err != nil {
		return err
	}
	noPush := false
	for i := 0; i < r.runs; i++ {
		pr, pw := newPipe()
		go func() { pw.CloseWithError(api.PackContext(ctx, dir, "Dockerfile", pw)) }()
		run, err := c.SubmitRun(ctx, api.BuildRequest{Push: &noPush}, pr)
		if err != nil {
			return err
		}
		for {
			if run, err = c.Run(ctx, run.ID); err != nil {
				return err
			}
			if run.Status != "Queued" && run.Status != "Running" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if run.Status != "Succeeded" || run.StartedAt == nil || run.QueuedAt == nil {
			return fmt.Errorf("latency run %s ended %s: %s", run.ID, run.Status, run.Error)
		}
		r.add("queued-running", run.StartedAt.Sub(*run.QueuedAt))
	}
	return nil
}

// rss is the resident memory of process pid, from /proc.
func rss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// quantile returns the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
