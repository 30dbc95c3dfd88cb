package serve

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is what `kiln serve` is told on its command line.
type Config struct {
	// DataDir holds everything embedded parts keep: JetStream's files, the registry's blobs, buildkitd's state.
	DataDir string
	// Listen is the API's address; "" runs no API (a worker-only process).
	Listen string
	// NATSURL names an external NATS server or cluster, with its user and password if it wants them
	// (nats://user:password@host:4222); "" embeds one listening on NATSListen, whose user and password are made
	// on the first start and kept in the data directory (nats-credentials).
	NATSURL    string
	NATSListen string
	// NATSSync makes the embedded NATS server fsync every write before it acknowledges it, so that a run Kiln
	// answered 202 for survives a power cut. DefaultConfig sets it; turning it off is a benchmark and test knob.
	NATSSync bool
	// NATSCreds is a NATS credentials file (JWT and seed) to connect to NATSURL with; "" uses none.
	NATSCreds string
	// BuildkitAddr names an external buildkitd; "" starts and supervises one (BuildkitdBin, or found next to kiln).
	BuildkitAddr string
	BuildkitdBin string
	// RegistryListen is the embedded registry's address; "" runs none.
	RegistryListen string
	// DefaultRegistry is given to tags that name no registry; "" means the embedded registry.
	DefaultRegistry string
	// Workers is how many builds this process runs at once; 0 runs no worker (an API-only process).
	Workers int
	// TokenFile holds the bearer token the API requires; "" makes one on the first start and keeps it in the data
	// directory (api-token).
	TokenFile string
	// ClientConfig is the client configuration file (see package clientconfig) that a token made in the data
	// directory is written to, under the API's URL, so that the CLI finds it; "" writes none.
	ClientConfig string
	// MaxContextSize bounds an uploaded build context, compressed or not.
	MaxContextSize int64
	// PublicURL is Kiln's address as GitHub reaches it: webhooks registered on repositories point there, and
	// commit statuses link to run logs under it. "" registers no webhooks.
	PublicURL string
	// GitHubAPIURL is GitHub's REST API; "" is https://api.github.com/, GitHub Enterprise is https://HOST/api/v3/.
	GitHubAPIURL string
	// AckWait is how long a run's message waits for a lost worker before another takes it.
	AckWait time.Duration
	// PushBackoff is the first wait before a failed push is tried again; it doubles for each retry.
	PushBackoff time.Duration
	// BaseSettle is how long after a base image change a dependent task's run waits for more changes, so that
	// changes landing together start one run; BasePollInterval is how often the digest of each tracked tag of
	// a registry that notifies no one is checked. Zero means their defaults.
	BaseSettle       time.Duration
	BasePollInterval time.Duration
	// RegistryNotify makes the embedded registry send its notifications to /v1/webhooks/registry.
	RegistryNotify bool
	// RegistryTokenFile holds the token registries send to /v1/webhooks/registry; "" means the API's token,
	// or, without one, a token made at start that only the embedded registry knows.
	RegistryTokenFile string
	// AllowHostNetwork lets runs and tasks ask for the host's network (--network host), where a RUN step
	// reaches every service of the machine, Kiln's own included; the API refuses them without it, and so do
	// this process's workers.
	AllowHostNetwork bool
	// WebhookBudget bounds, in bytes, the memory the bodies of the git hosts' webhook deliveries take at
	// once, before and while their signatures are checked; 0 means webhook.DefaultBudget (64 MiB). A
	// delivery that finds no room within two seconds is answered 503.
	WebhookBudget int64
	// ReadyTimeout bounds how long Run waits for buildkitd to answer before it reports ready anyway.
	ReadyTimeout time.Duration
	// Logger gets the service's log; nil discards it.
	Logger *slog.Logger
}

// DefaultConfig is `kiln serve` with no flags.
func DefaultConfig() Config {
	return Config{
		DataDir:          "/var/lib/kiln",
		Listen:           "127.0.0.1:8080",
		NATSListen:       "127.0.0.1:4222",
		NATSSync:         true,
		RegistryListen:   "127.0.0.1:5000",
		Workers:          2,
		MaxContextSize:   1 << 30,
		WebhookBudget:    64 << 20,
		AckWait:          30 * time.Second,
		PushBackoff:      time.Second,
		ReadyTimeout:     60 * time.Second,
		BaseSettle:       10 * time.Second,
		BasePollInterval: 5 * time.Minute,
		RegistryNotify:   true,
	}
}

// token returns the API's bearer token: TokenFile's, else the one kept in the data directory, made on the first
// start, in which case inDataDir is set. A process that serves no API has no token. Kiln runs the RUN steps of
// whatever it is sent, as root, and pushes to your registry, so its API always needs a token, on loopback too.
func (c Config) token() (token string, inDataDir bool, err error) {
	if c.TokenFile == "" {
		if c.Listen == "" {
			return "", false, nil
		}
		tok, _, err := secretFile(filepath.Join(c.DataDir, apiTokenFile), rand.Text)
		if err != nil {
			return "", false, fmt.Errorf("making the API's token (or give one with --token-file): %w", err)
		}
		return tok, true, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", false, fmt.Errorf("reading --token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", false, errors.New("--token-file " + c.TokenFile + " is empty")
	}
	return tok, false, nil
}

// registryToken is the token of /v1/webhooks/registry: RegistryTokenFile's, else the API's, else a random one.
func (c Config) registryToken(apiToken string) (string, error) {
	if c.RegistryTokenFile == "" {
		if apiToken != "" {
			return apiToken, nil
		}
		return rand.Text(), nil
	}
	b, err := os.ReadFile(c.RegistryTokenFile)
	if err != nil {
		return "", fmt.Errorf("reading --registry-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("--registry-token-file " + c.RegistryTokenFile + " is empty")
	}
	return tok, nil
}
