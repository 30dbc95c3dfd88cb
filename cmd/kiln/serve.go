package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/clientconfig"
	"github.com/kilnbuild/kiln/cmd/kiln/serve"
)

// serveCmd is `kiln serve`: it starts Kiln and runs until interrupted.
func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := serve.DefaultConfig()
	fs := newFlags("serve", "serve [flags]")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "`DIR` for JetStream, the registry and buildkitd state")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "API `address`; empty runs no API")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS server or cluster `URL`, nats://USER:PASSWORD@HOST:PORT if it wants them; empty embeds one")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", "", "NATS credentials `file` (JWT and seed) to connect to --nats-url with")
	fs.StringVar(&cfg.NATSListen, "nats-listen", cfg.NATSListen, "embedded NATS `address`, for workers in other processes")
	fs.BoolVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, "embedded NATS fsyncs every write before acknowledging it; false is for benchmarks and tests only: a power cut can then lose queued runs")
	fs.StringVar(&cfg.BuildkitAddr, "buildkit-addr", "", "external buildkitd `address`; empty starts and supervises one")
	fs.StringVar(&cfg.BuildkitdBin, "buildkitd", "", "buildkitd `binary` to supervise (default: next to kiln, then $PATH)")
	fs.StringVar(&cfg.RegistryListen, "registry-listen", cfg.RegistryListen, "embedded OCI registry `address`; empty runs none")
	fs.StringVar(&cfg.DefaultRegistry, "default-registry", "", "`host` for tags that name no registry (default: the embedded registry)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "builds this process runs at once; 0 runs no worker")
	fs.StringVar(&cfg.TokenFile, "token-file", "", "`file` holding the API's bearer token (default: one made on the first start, kept in the data directory and written to the client config)")
	fs.Int64Var(&cfg.MaxContextSize, "max-context-size", cfg.MaxContextSize, "largest build context accepted, in `bytes`, compressed or not")
	fs.Int64Var(&cfg.WebhookBudget, "webhook-budget", cfg.WebhookBudget, "memory, in `bytes`, that git hosts' webhook bodies take at once while their signatures are checked; a delivery that finds no room is answered 503")
	fs.DurationVar(&cfg.AckWait, "ack-wait", cfg.AckWait, "how long a lost worker's run waits before another worker takes it")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "Kiln's `URL` as GitHub reaches it, for the webhooks tasks register and the links in commit statuses")
	fs.StringVar(&cfg.GitHubAPIURL, "github-api-url", "", "GitHub's REST API `URL`; for GitHub Enterprise https://HOST/api/v3/")
	fs.DurationVar(&cfg.PushBackoff, "push-backoff", cfg.PushBackoff, "first wait before a failed push is retried; doubles each retry")
	fs.DurationVar(&cfg.BasePollInterval, "base-poll-interval", cfg.BasePollInterval, "how often each tracked base image tag of a registry that notifies no one is checked")
	fs.DurationVar(&cfg.BaseSettle, "base-settle", cfg.BaseSettle, "how long a base image update waits for more before its dependents run, so that changes landing together start one run")
	fs.BoolVar(&cfg.RegistryNotify, "registry-notify", cfg.RegistryNotify, "the embedded registry tells Kiln of every push (/v1/webhooks/registry)")
	fs.StringVar(&cfg.RegistryTokenFile, "registry-token-file", "", "`file` holding the token registries send to /v1/webhooks/registry as a bearer token (default: the API's token)")
	fs.BoolVar(&cfg.AllowHostNetwork, "allow-host-network", false, "accept runs and tasks with --network host, whose RUN steps reach every service of this machine")
	logLevel := fs.String("log-level", "info", "`level` of the service log: debug, info, warn, error")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if cfg.BasePollInterval < time.Second {
		return usagef("--base-poll-interval %s: at least 1s", cfg.BasePollInterval)
	}
	if cfg.WebhookBudget < 1<<20 {
		return usagef("--webhook-budget %d: at least 1048576 (1 MiB)", cfg.WebhookBudget)
	}
	if cfg.BaseSettle < 0 {
		return usagef("--base-settle %s: cannot be negative", cfg.BaseSettle)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.ClientConfig, err = clientconfig.DefaultPath(); err != nil {
		return err
	}

	m := serve.New(cfg)
	defer m.Close()
	if err := m.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "\nKiln is serving.\n")
	if u := m.APIURL(); u != "" {
		fmt.Fprintf(stderr, "  API:       %s\n", u)
	}
	if r := m.RegistryAddr(); r != "" {
		fmt.Fprintf(stderr, "  registry:  %s (embedded)\n", r)
	}
	fmt.Fprintf(stderr, "  NATS:      %s\n", serve.RedactURL(m.NATSURL()))
	if b := m.BuildkitAddr(); b != "" {
		fmt.Fprintf(stderr, "  buildkitd: %s\n", b)
	}
	fmt.Fprintf(stderr, "  data:      %s (credentials: api-token, nats-credentials, registry-credentials)\n\nTry: bin/kiln build -t base/busybox:1 examples/base\n", m.DataDir())
	<-ctx.Done()
	fmt.Fprintln(stderr, "Stopping; runs in progress go back to the queue.")
	if err := m.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln serve: stopping: %v\n", err)
	}
	return nil
}
