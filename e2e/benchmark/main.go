// Command benchmark measures Kiln on this machine and writes BENCHMARKS.md: `make bench` runs it.
//
// It starts one buildkitd and one `kiln serve` (the real binary, with embedded NATS and registry, building on
// that buildkitd), and more kiln serves where a measurement needs other flags, then measures, interleaved so
// that both sides of a comparison see the same machine:
//   - a small build end to end through `kiln build` against raw `buildctl build --output type=image,push=true`
//     on the same buildkitd and registry, warm (everything cached) and cold (a new file every build);
//   - Queued → Running latency from the run records of builds submitted one at a time to an idle Kiln;
//   - kiln serve's resident memory (buildkitd apart), idle and after those runs;
//   - webhook deliveries to running runs, and their ingest rate;
//   - base image triggers: how soon a base pushed (by a registry notification, by Kiln's own run) queues
//     its dependents' runs, one base fanning out to 100 tasks, and the requests polling 1,000 tags costs;
//   - context fetches from git, go-git against git clone;
//   - a warm build of a 20 MB context under a key of its own against one shared key;
//   - a RUN step's start on the isolated network against the host's;
//   - webhook ingest and Queued → Running with the embedded NATS syncing every write before its ack, against
//     kiln serves started with --nats-sync=false.
//
// -only NAME measures one section and prints its markdown instead of writing -out: context-key, network,
// webhook (the ingest burst and the memory under a flood; not the one-at-a-time latency, which needs workers),
// or durability.
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
	baseRounds := flag.Int("base-rounds", 20, "pushes of a base for each base image latency")
	netRounds := flag.Int("network-rounds", 50, "RUN steps on each network, isolated and host")
	only := flag.String("only", "", "measure one section and print its markdown instead of writing -out: context-key, network, webhook or durability")
	flag.Parse()
	if err := run(*out, *only, *rounds, *runs, *baseRounds, *netRounds); err != nil {
		log.Fatalf("benchmark: %v", err)
	}
}

func run(out, only string, rounds, runs, baseRounds, netRounds int) error {
	if only != "" && only != "context-key" && only != "network" && only != "webhook" && only != "durability" {
		return fmt.Errorf("-only %q: the sections that run alone are context-key, network, webhook and durability", only)
	}
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
	if only == "context-key" {
		return runOnly(ctx, only, bkAddr, tmp, rounds)
	}
	if only == "webhook" {
		return (&bench{root: root, tmp: tmp, bin: bin, buildkitAddr: bkAddr}).webhookOnly(ctx)
	}

	b := &bench{root: root, tmp: tmp, bin: bin, buildkitAddr: bkAddr}
	if only == "durability" {
		url, commit, stopGit, err := gitRepo(tmp)
		if err != nil {
			return err
		}
		defer stopGit()
		log.Printf("durability: %d runs and the ingest bursts on each side, fsync on and off, interleaved", min(runs, 100))
		d, err := b.benchDurability(ctx, url, commit, min(runs, 100))
		if err != nil {
			return fmt.Errorf("durability: %w", err)
		}
		fmt.Print(d.markdown())
		return nil
	}
	serve, err := b.startServe(ctx, "kiln", "--workers", "2")
	if err != nil {
		return err
	}
	defer serve.stop()
	b.server, b.registry, b.token = serve.api, serve.registry, serve.token

	r := &results{started: time.Now(), rounds: rounds, runs: runs}
	if r.rssIdle, err = rss(serve.cmd.Process.Pid); err != nil {
		return err
	}
	if err := b.kiln(ctx, "build", "-t", "base/busybox:1", filepath.Join(root, "examples", "base")); err != nil {
		return fmt.Errorf("building the base image: %w", err)
	}
	if only == "network" {
		log.Printf("network: %d RUN steps on each network, alternating", netRounds)
		n, err := b.benchNetwork(ctx, netRounds)
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		fmt.Print(n.markdown())
		return nil
	}
	log.Printf("builds: %d rounds of warm and cold, kiln build and buildctl interleaved", rounds)
	if err := b.compareBuilds(ctx, r); err != nil {
		return err
	}
	log.Printf("latency: %d runs, one at a time", runs)
	if err := b.queueLatency(ctx, r); err != nil {
		return err
	}
	if r.rssAfter, err = rss(serve.cmd.Process.Pid); err != nil {
		return err
	}
	log.Printf("multi-step: %d rounds of a 10-step task file and the same 10 quick builds", min(rounds, 10))
	if r.steps, err = b.benchSteps(ctx, 10, min(rounds, 10)); err != nil {
		return fmt.Errorf("multi-step: %w", err)
	}
	log.Printf("network: %d RUN steps on each network, alternating", netRounds)
	if r.network, err = b.benchNetwork(ctx, netRounds); err != nil {
		return fmt.Errorf("network: %w", err)
	}

	url, commit, stopGit, err := gitRepo(tmp)
	if err != nil {
		return err
	}
	defer stopGit()
	log.Printf("webhooks: %d deliveries one at a time, then an ingest burst", runs)
	if err := b.createTask(ctx, b.server, b.token, url); err != nil {
		return err
	}
	if r.webhook.toRunning, err = b.webhookToRunning(ctx, url, commit, runs); err != nil {
		return err
	}
	// Ingest is measured on a Kiln with no workers, so that builds do not share the two cores.
	ingest, err := b.startServe(ctx, "kiln-ingest", "--workers", "0", "--registry-listen", "")
	if err != nil {
		return err
	}
	defer ingest.stop()
	if err := b.createTask(ctx, ingest.api, ingest.token, url); err != nil {
		return err
	}
	pushes, err := pushDeliveries(root, url, commit, 2000)
	if err != nil {
		return err
	}
	if err := measureIngest(&r.webhook, &r.flood, ingest, pushes); err != nil {
		return err
	}

	log.Printf("durability: %d runs and the ingest bursts on each side, fsync on and off, interleaved", min(runs, 100))
	if r.durability, err = b.benchDurability(ctx, url, commit, min(runs, 100)); err != nil {
		return fmt.Errorf("durability: %w", err)
	}

	if r.base, err = b.benchBaseImages(ctx, baseRounds); err != nil {
		return err
	}

	log.Printf("git: context fetch, %d rounds", min(rounds, 7))
	if r.git, err = benchGitFetch(ctx, tmp, min(rounds, 7)); err != nil {
		return err
	}
	log.Printf("context key: a warm build of a 20 MB context, %d rounds", min(rounds, 7))
	if r.contextKey, err = benchContextKey(ctx, bkAddr, tmp, min(rounds, 7)); err != nil {
		return fmt.Errorf("context key: %w", err)
	}
	return r.write(out)
}

// measureIngest measures, on the kiln serve with no workers, the ingest burst of signed deliveries and then
// its memory under a flood of large unproven ones.
func measureIngest(w *webhookResults, f *floodResults, ingest *served, pushes []signedPush) error {
	var err error
	w.concurrent, w.sent = 16, len(pushes)
	log.Printf("webhooks: %d deliveries, %d at a time", w.sent, w.concurrent)
	if w.ingested, w.ingestTime, err = webhookIngest(ingest.api, pushes, w.concurrent); err != nil {
		return fmt.Errorf("webhook ingest: %w", err)
	}
	log.Printf("webhooks: a flood of 40 deliveries of 24 MB at once")
	if *f, err = webhookFlood(ingest.api, ingest.cmd.Process.Pid, 40, 24<<20); err != nil {
		return fmt.Errorf("webhook flood: %w", err)
	}
	return nil
}

// webhookOnly measures the webhook ingest burst and the flood alone, and prints their markdown.
func (b *bench) webhookOnly(ctx context.Context) error {
	url, commit, stopGit, err := gitRepo(b.tmp)
	if err != nil {
		return err
	}
	defer stopGit()
	ingest, err := b.startServe(ctx, "kiln-ingest", "--workers", "0", "--registry-listen", "")
	if err != nil {
		return err
	}
	defer ingest.stop()
	if err := b.createTask(ctx, ingest.api, ingest.token, url); err != nil {
		return err
	}
	pushes, err := pushDeliveries(b.root, url, commit, 2000)
	if err != nil {
		return err
	}
	var w webhookResults
	var f floodResults
	if err := measureIngest(&w, &f, ingest, pushes); err != nil {
		return err
	}
	fmt.Print(w.ingestMarkdown())
	fmt.Print(f.markdown())
	return nil
}

// runOnly measures the one section named only on the buildkitd at bkAddr, and prints its markdown.
func runOnly(ctx context.Context, only, bkAddr, tmp string, rounds int) error {
	switch only {
	case "context-key":
		r, err := benchContextKey(ctx, bkAddr, tmp, min(rounds, 7))
		if err != nil {
			return fmt.Errorf("context key: %w", err)
		}
		fmt.Print(r.markdown())
		return nil
	}
	return fmt.Errorf("-only %q: the sections are: context-key", only)
}

// served is one `kiln serve` the benchmark started: the process and the addresses it listens on.
type served struct {
	cmd      *exec.Cmd
	api      string // the API's URL
	registry string // the embedded registry's host:port
	nats     string // the embedded NATS server's URL, with the user and password kiln serve made for it
	token    string // the API's token, which kiln serve made
}

// startServe starts `kiln serve` with its own data directory and free ports, building on the benchmark's
// buildkitd, and waits until it is ready.
func (b *bench) startServe(ctx context.Context, name string, args ...string) (*served, error) {
	apiAddr, natsAddr, regAddr := freeAddr(), freeAddr(), freeAddr()
	dataDir := filepath.Join(b.tmp, name)
	args = append([]string{"serve", "--data-dir", dataDir, "--listen", apiAddr,
		"--nats-listen", natsAddr, "--registry-listen", regAddr, "--buildkit-addr", b.buildkitAddr, "--log-level", "warn"}, args...)
	cmd := exec.Command(b.bin("kiln"), args...)
	logFile, err := os.Create(filepath.Join(b.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = b.env()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kiln serve: %w", err)
	}
	s := &served{cmd: cmd, api: "http://" + apiAddr, registry: regAddr, nats: "nats://" + natsAddr}
	if err := waitReady(ctx, s.api); err != nil {
		s.stop()
		logText, _ := os.ReadFile(logFile.Name())
		return nil, fmt.Errorf("%w\n%s", err, logText)
	}
	natsCreds, err := secretOf(dataDir, "nats-credentials")
	if err != nil {
		s.stop()
		return nil, err
	}
	s.nats = "nats://" + natsCreds + "@" + natsAddr
	if s.token, err = secretOf(dataDir, "api-token"); err != nil {
		s.stop()
		return nil, err
	}
	if regCreds := filepath.Join(dataDir, "registry-credentials"); fileExists(regCreds) { // none with --registry-listen ""
		if err := logins.add(regAddr, regCreds); err != nil {
			s.stop()
			return nil, err
		}
		if err := logins.writeDockerConfig(filepath.Join(b.tmp, "docker")); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// stop interrupts kiln serve and waits for it to exit.
func (s *served) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
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
