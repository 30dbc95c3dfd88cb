// Command benchmark measures Kiln on this machine and writes BENCHMARKS.md: `make bench` runs it.
//
// It starts one buildkitd and one `kiln serve` (the real binary, with embedded NATS and registry, building on
// that buildkitd), then measures, interleaved so that both sides of a comparison see the same machine:
//   - a small build end to end through `kiln build` against raw `buildctl build --output type=image,push=true`
//     on the same buildkitd and registry, warm (everything cached) and cold (a new file every build);
//   - Queued → Running latency from the run records of builds submitted one at a time to an idle Kiln;
//   - kiln serve's resident memory (buildkitd apart), idle and after those runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kilnbuild/kiln/deploy/buildkitd"
)

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file to write the results to")
	rounds := flag.Int("rounds", 15, "builds of each kind, per side")
	runs := flag.Int("runs", 200, "runs for the Queued → Running latency and the memory after")
	flag.Parse()
	if err := run(*out, *rounds, *runs); err != nil {
		log.Fatalf("benchmark: %v", err)
	}
}

func run(out string, rounds, runs int) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	bin := func(name string) string { return filepath.Join(root, "bin", name) }
	for _, b := range []string{"kiln", "buildkitd", "buildctl"} {
		if _, err := os.Stat(bin(b)); err != nil {
			return fmt.Errorf("%s is missing: run make build first", bin(b))
		}
	}
	tmp, err := os.MkdirTemp("", "kiln-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bkAddr := "unix://" + filepath.Join(tmp, "buildkitd.sock")
	sup := buildkitd.New(buildkitd.Config{Bin: bin("buildkitd"), Root: filepath.Join(tmp, "buildkit"), Addr: bkAddr})
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(ctx) }()
	defer func() { cancel(); <-supDone }()
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	defer readyCancel()
	if err := sup.WaitReady(readyCtx); err != nil {
		return fmt.Errorf("starting buildkitd: %w", err)
	}

	b := &bench{root: root, tmp: tmp, bin: bin, buildkitAddr: bkAddr}
	serve, server, regAddr, err := b.startServe(ctx, "kiln", "--workers", "2")
	if err != nil {
		return err
	}
	defer stopServe(serve)
	b.server, b.registry = server, regAddr

	r := &results{started: time.Now(), rounds: rounds, runs: runs}
	if r.rssIdle, err = rss(serve.Process.Pid); err != nil {
		return err
	}
	if err := b.kiln(ctx, "build", "-t", "base/busybox:1", filepath.Join(root, "examples", "base")); err != nil {
		return fmt.Errorf("building the base image: %w", err)
	}
	log.Printf("builds: %d rounds of warm and cold, kiln build and buildctl interleaved", rounds)
	if err := b.compareBuilds(ctx, r); err != nil {
		return err
	}
	log.Printf("latency: %d runs, one at a time", runs)
	if err := b.queueLatency(ctx, r); err != nil {
		return err
	}
	if r.rssAfter, err = rss(serve.Process.Pid); err != nil {
		return err
	}

	url, commit, stopGit, err := gitRepo(tmp)
	if err != nil {
		return err
	}
	defer stopGit()
	log.Printf("webhooks: %d deliveries one at a time, then an ingest burst", runs)
	if err := b.createTask(ctx, b.server, url); err != nil {
		return err
	}
	if r.webhook.toRunning, err = b.webhookToRunning(ctx, url, commit, runs); err != nil {
		return err
	}
	// Ingest is measured on a Kiln with no workers, so that builds do not share the two cores.
	ingest, ingestServer, _, err := b.startServe(ctx, "kiln-ingest", "--workers", "0", "--registry-listen", "")
	if err != nil {
		return err
	}
	defer stopServe(ingest)
	if err := b.createTask(ctx, ingestServer, url); err != nil {
		return err
	}
	body, sig, err := pushDelivery(root, url, commit)
	if err != nil {
		return err
	}
	r.webhook.concurrent = 16
	if r.webhook.ingested, r.webhook.ingestTime, err = webhookIngest(ingestServer, body, sig, 2000, r.webhook.concurrent); err != nil {
		return fmt.Errorf("webhook ingest: %w", err)
	}

	log.Printf("git: context fetch, %d rounds", min(rounds, 7))
	if r.git, err = benchGitFetch(ctx, tmp, min(rounds, 7)); err != nil {
		return err
	}
	return r.write(out)
}

// startServe starts `kiln serve` with its own data directory and free ports, building on the benchmark's
// buildkitd, and waits until it is ready. It returns the process, its API URL and its registry address.
func (b *bench) startServe(ctx context.Context, name string, args ...string) (*exec.Cmd, string, string, error) {
	apiAddr, natsAddr, regAddr := freeAddr(), freeAddr(), freeAddr()
	args = append([]string{"serve", "--data-dir", filepath.Join(b.tmp, name), "--listen", apiAddr,
		"--nats-listen", natsAddr, "--registry-listen", regAddr, "--buildkit-addr", b.buildkitAddr, "--log-level", "warn"}, args...)
	cmd := exec.Command(b.bin("kiln"), args...)
	logFile, err := os.Create(filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, "", "", err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, "", "", fmt.Errorf("starting kiln serve: %w", err)
	}
	server := "http://" + apiAddr
	if err := waitReady(ctx, server); err != nil {
		stopServe(cmd)
		logText, _ := os.ReadFile(logFile.Name())
		return nil, "", "", fmt.Errorf("%w\n%s", err, logText)
	}
	return cmd, server, regAddr, nil
}

func stopServe(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
