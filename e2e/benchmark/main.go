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

	apiAddr, natsAddr, regAddr := freeAddr(), freeAddr(), freeAddr()
	serve := exec.Command(bin("kiln"), "serve", "--data-dir", filepath.Join(tmp, "kiln"), "--listen", apiAddr,
		"--nats-listen", natsAddr, "--registry-listen", regAddr, "--buildkit-addr", bkAddr, "--log-level", "warn")
	serveLog, err := os.Create(filepath.Join(tmp, "kiln.log"))
	if err != nil {
		return err
	}
	serve.Stdout, serve.Stderr = serveLog, serveLog
	if err := serve.Start(); err != nil {
		return fmt.Errorf("starting kiln serve: %w", err)
	}
	defer func() { _ = serve.Process.Signal(os.Interrupt); _ = serve.Wait() }()
	b := &bench{root: root, tmp: tmp, bin: bin, server: "http://" + apiAddr, registry: regAddr, buildkitAddr: bkAddr}
	if err := b.waitReady(ctx); err != nil {
		logText, _ := os.ReadFile(serveLog.Name())
		return fmt.Errorf("%w\n%s", err, logText)
	}

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
	return r.write(out)
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
