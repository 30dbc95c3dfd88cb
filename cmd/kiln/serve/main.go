package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cmd/kiln/clientconfig"
	"github.com/kilnbuild/kiln/deploy/buildkitd"
	"github.com/kilnbuild/kiln/deploy/httpfront"
	"github.com/kilnbuild/kiln/deploy/natsd"
	"github.com/kilnbuild/kiln/deploy/ociregistry"
	"github.com/kilnbuild/kiln/scheduler"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/api"
	"github.com/kilnbuild/kiln/trigger/basedeps"
	"github.com/kilnbuild/kiln/trigger/baseimage"
	"github.com/kilnbuild/kiln/trigger/basepoll"
	"github.com/kilnbuild/kiln/trigger/github"
	"github.com/kilnbuild/kiln/trigger/gitremote"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/timer"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// blobStoreLimit is how large a worker's blob store may grow before it is emptied.
const blobStoreLimit = 4 << 30

// Main is one Kiln process. Run starts it; Close stops it, and must be called even when Run fails.
type Main struct {
	cfg Config
	log *slog.Logger

	natsd      *natsd.Server
	nc         *nats.Conn
	registry   *ociregistry.Registry
	supervisor *buildkitd.Supervisor
	builder    *builder.Builder
	worker     *scheduler.Worker
	httpServer *http.Server
	apiLn      net.Listener
	apiAddr    string
	index      *baseimage.Index
	poller     *basepoll.Poller // the base image poller, which also looks up the tags Docker Hub notifies of
	timers     *timer.Scheduler
	natsURL    string
	bkAddr     string
	token      string          // the API's
	logins     *registryLogins // the credentials workers push and pull with

	stop      context.CancelFunc // ends the background parts: supervisor, worker
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New returns a Main for cfg; nothing starts until Run.
//
// BuildKit's client and distribution log through logrus's process-wide logger (BuildKit's OCI layout store
// warns about fsverity on every export, for one); a service's log is its slog.Logger, so New turns logrus
// down to errors.
func New(cfg Config) *Main {
	logrus.SetLevel(logrus.ErrorLevel)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Main{cfg: cfg, log: log}
}

// Run starts every part and returns once Kiln serves: the API answers and, when this process has workers,
// buildkitd answered (or ReadyTimeout passed, in which case /readyz says what is missing).
func (m *Main) Run(ctx context.Context) error {
	dataDir, err := filepath.Abs(m.cfg.DataDir) // buildkitd's unix:// address needs an absolute path
	if err != nil {
		return fmt.Errorf("finding the data directory: %w", err)
	}
	m.cfg.DataDir = dataDir
	if err := os.MkdirAll(m.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("making the data directory: %w", err)
	}
	token, tokenInDataDir, err := m.cfg.token()
	if err != nil {
		return err
	}
	m.token = token
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = stop

	js, err := m.startNATS(ctx)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	m.logins = &registryLogins{local: map[string]store.RegistryCredentials{}, store: st}
	// The API listens first: the embedded registry sends its notifications to it.
	if m.cfg.Listen != "" {
		if m.apiLn, err = net.Listen("tcp", m.cfg.Listen); err != nil {
			return fmt.Errorf("listening for the API on %s: %w", m.cfg.Listen, err)
		}
		m.apiAddr = m.apiLn.Addr().String()
		if tokenInDataDir {
			if err := m.writeClientConfig(); err != nil {
				return err
			}
		}
	}
	regToken, err := m.cfg.registryToken(token)
	if err != nil {
		return err
	}
	if err := m.startRegistry(ctx, st, regToken); err != nil {
		return err
	}
	if m.cfg.Workers > 0 {
		if err := m.startWorker(ctx, bg, js, st); err != nil {
			return err
		}
	}
	if m.cfg.Listen != "" {
		m.startBaseImages(bg, js, st)
		m.startTimers(bg, js, st)
		if err := m.startAPI(st, js, token, regToken); err != nil {
			return err
		}
		m.startReporter(bg, js, st)
	}
	m.waitReady(ctx)
	return nil
}

func (m *Main) startNATS(ctx context.Context) (jetstream.JetStream, error) {
	m.natsURL = m.cfg.NATSURL
	if m.natsURL == "" {
		if m.cfg.NATSCreds != "" {
			return nil, errors.New("--nats-creds is for an external NATS given with --nats-url: the embedded one takes " +
				"the user and password in " + filepath.Join(m.cfg.DataDir, natsCredsFile))
		}
		host, port, err := splitHostPort(m.cfg.NATSListen)
		if err != nil {
			return nil, fmt.Errorf("--nats-listen: %w", err)
		}
		user, password, err := userPassword(m.cfg.DataDir, natsCredsFile)
		if err != nil {
			return nil, fmt.Errorf("starting embedded NATS: %w", err)
		}
		m.natsd, err = natsd.Start(ctx, natsd.Config{Dir: filepath.Join(m.cfg.DataDir, "nats"), Host: host, Port: port,
			User: user, Password: password, NoSync: !m.cfg.NATSSync})
		if err != nil {
			return nil, fmt.Errorf("starting embedded NATS: %w", err)
		}
		u, err := url.Parse(m.natsd.ClientURL())
		if err != nil {
			return nil, fmt.Errorf("starting embedded NATS: its URL: %w", err)
		}
		u.User = url.UserPassword(user, password)
		m.natsURL = u.String()
		m.log.Info("NATS JetStream embedded", "url", redactURL(m.natsURL), "dir", filepath.Join(m.cfg.DataDir, "nats"),
			"credentials", filepath.Join(m.cfg.DataDir, natsCredsFile))
	}
	opts := []nats.Option{nats.Name("kiln"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false)}
	if m.cfg.NATSCreds != "" {
		if _, err := os.Stat(m.cfg.NATSCreds); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(m.cfg.NATSCreds))
	}
	nc, err := nats.Connect(m.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %s", redactURL(m.natsURL), hidePasswords(err.Error(), m.natsURL))
	}
	m.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	if m.natsd == nil {
		m.log.Info("NATS JetStream external", "url", redactURL(m.natsURL))
	}
	return js, nil
}

// startRegistry starts the embedded registry, which tells this process's API of every push when RegistryNotify
// is set. Its user and password are made on the first start and kept in the data directory; this process's
// workers push with them, and so do workers in other processes, on this machine or others, which find them in
// the store under each name of the registry.
func (m *Main) startRegistry(ctx context.Context, st *store.Store, regToken string) error {
	if m.cfg.RegistryListen == "" {
		return nil
	}
	user, password, err := userPassword(m.cfg.DataDir, registryCredsFile)
	if err != nil {
		return fmt.Errorf("starting the embedded registry: %w", err)
	}
	reg, err := ociregistry.Start(ctx, ociregistry.Config{Dir: filepath.Join(m.cfg.DataDir, "registry"), Addr: m.cfg.RegistryListen,
		Notify: m.notifyEndpoints(regToken), User: user, Password: password})
	if err != nil {
		return fmt.Errorf("starting the embedded registry: %w", err)
	}
	m.registry = reg
	if m.cfg.DefaultRegistry == "" {
		m.cfg.DefaultRegistry = reg.Addr()
	}
	creds := store.RegistryCredentials{User: user, Password: password}
	for _, host := range registryHosts(m.cfg.RegistryListen, reg.Addr()) {
		m.logins.local[host] = creds
		if err := st.SetRegistryCredentials(ctx, host, creds); err != nil {
			return fmt.Errorf("starting the embedded registry: %w", err)
		}
	}
	m.log.Info("OCI registry embedded", "addr", reg.Addr(), "dir", filepath.Join(m.cfg.DataDir, "registry"),
		"credentials", filepath.Join(m.cfg.DataDir, registryCredsFile))
	return nil
}

// writeClientConfig writes the API's token, made in the data directory, to the client config under the API's
// URL, so that the CLI of the user who started Kiln needs neither flag nor environment.
func (m *Main) writeClientConfig() error {
	if m.cfg.ClientConfig == "" {
		return nil
	}
	u := m.APIURL()
	if host, port, err := net.SplitHostPort(m.apiAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			u = "http://" + net.JoinHostPort("127.0.0.1", port)
		}
	}
	if err := clientconfig.SetToken(m.cfg.ClientConfig, u, m.token); err != nil {
		return fmt.Errorf("giving the CLI the API's token: %w", err)
	}
	m.log.Info("API token written for the CLI", "server", u, "config", m.cfg.ClientConfig,
		"token", filepath.Join(m.cfg.DataDir, apiTokenFile))
	return nil
}

// notifyEndpoints is where the embedded registry sends its notifications: this process's registry webhook,
// when it serves one. A registry listening on a fixed address is named by it in the URL, so that a push made
// through another of its names (localhost:5000 for 127.0.0.1:5000) still matches the tasks built on it.
func (m *Main) notifyEndpoints(regToken string) []ociregistry.Endpoint {
	if !m.cfg.RegistryNotify || m.apiAddr == "" {
		return nil
	}
	u := "http://" + m.apiAddr + "/v1/webhooks/registry"
	if _, port, err := net.SplitHostPort(m.cfg.RegistryListen); err == nil && port != "0" {
		u += "?registry=" + url.QueryEscape(m.cfg.RegistryListen)
	}
	return []ociregistry.Endpoint{{Name: "kiln", URL: u, Headers: http.Header{"Authorization": {"Bearer " + regToken}}}}
}

func (m *Main) startWorker(ctx, bg context.Context, js jetstream.JetStream, st *store.Store) error {
	m.bkAddr = m.cfg.BuildkitAddr
	if m.bkAddr == "" {
		if err := m.startBuildkitd(bg); err != nil {
			return err
		}
	}
	// The work directory holds each run's context and image layout while it runs, and the blob store those
	// layouts link from; what a killed process left of its runs goes at start.
	workDir := filepath.Join(m.cfg.DataDir, "work")
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return fmt.Errorf("making the work directory: %w", err)
	}
	if stale, err := filepath.Glob(filepath.Join(workDir, "k*")); err == nil {
		for _, d := range stale {
			_ = os.RemoveAll(d)
		}
	}
	b, err := builder.New(ctx, m.bkAddr, builder.WithBlobStore(filepath.Join(workDir, "blobs"), blobStoreLimit),
		builder.WithRegistryCredentials(m.logins.credentials))
	if err != nil {
		return err
	}
	m.builder = b
	m.worker = &scheduler.Worker{
		JS:              js,
		Conn:            m.nc,
		Store:           st,
		Builder:         b,
		Git:             builder.NewGitCache(filepath.Join(m.cfg.DataDir, "git")),
		Name:            workerName(),
		Concurrency:     m.cfg.Workers,
		AckWait:         m.cfg.AckWait,
		WorkDir:         workDir,
		MaxContextSize:  m.cfg.MaxContextSize,
		DefaultRegistry: m.cfg.DefaultRegistry,
		PushOptions:     builder.PushOptions{Backoff: m.cfg.PushBackoff, Keychain: m.logins},
		Logger:          m.log.With("part", "worker"),
	}
	m.worker.AllowHostNetwork = m.cfg.AllowHostNetwork
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.worker.Run(bg); err != nil {
			m.log.Error("worker stopped", "err", err)
		}
	}()
	return nil
}

func (m *Main) startBuildkitd(bg context.Context) error {
	bin := m.cfg.BuildkitdBin
	if bin == "" {
		var err error
		if bin, err = buildkitd.FindBinary("buildkitd"); err != nil {
			return err
		}
	}
	root := filepath.Join(m.cfg.DataDir, "buildkit")
	logFile, err := os.OpenFile(filepath.Join(m.cfg.DataDir, "buildkitd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening buildkitd's log: %w", err)
	}
	m.bkAddr = "unix://" + filepath.Join(m.cfg.DataDir, "buildkitd.sock")
	m.supervisor = buildkitd.New(buildkitd.Config{Bin: bin, Root: root, Addr: m.bkAddr, Stderr: logFile})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer logFile.Close()
		if err := m.supervisor.Run(bg); err != nil {
			m.log.Error("buildkitd supervisor stopped", "err", err)
		}
	}()
	m.log.Info("buildkitd supervised", "addr", m.bkAddr, "bin", bin, "log", logFile.Name())
	return nil
}

func (m *Main) startAPI(st *store.Store, js jetstream.JetStream, token, regToken string) error {
	ln := m.apiLn
	gh := github.Config{APIURL: m.cfg.GitHubAPIURL, PublicURL: m.cfg.PublicURL}
	srv := api.NewServer(api.Config{
		DefaultRegistry:  m.cfg.DefaultRegistry,
		MaxContextSize:   m.cfg.MaxContextSize,
		Token:            token,
		Ready:            m.ready,
		Hooks:            github.NewHooks(gh),
		AllowHostNetwork: m.cfg.AllowHostNetwork,
	}, st, js, m.nc, m.log.With("part", "api"))
	hooks := webhook.NewHandler(webhook.Config{DefaultRegistry: m.cfg.DefaultRegistry, Budget: webhook.NewBudget(m.cfg.WebhookBudget)},
		st, queue.New(st, js, m.log.With("part", "webhook")), m.log.With("part", "webhook"))
	// Webhooks authenticate by their signatures, not the API's bearer token. The git hosts' deliveries
	// bound their own bodies (the memory budget, a fixed deadline); every other body keeps a pace, so that
	// a large context upload over a slow link arrives and a trickled body does not hold a connection.
	mux := http.NewServeMux()
	mux.Handle("/v1/webhooks/", hooks)
	mux.Handle("/v1/webhooks/registry", httpfront.Pace(webhook.NewRegistryHandler(webhook.RegistryConfig{Token: regToken, Lookup: m.poller}, m.index, js,
		m.log.With("part", "registry-webhook"))))
	mux.Handle("/", httpfront.Pace(srv.Handler()))
	m.httpServer = httpfront.Server(httpfront.Answered(mux))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("API stopped", "err", err)
		}
	}()
	m.log.Info("API listening", "url", m.APIURL())
	return nil
}

// startBaseImages starts what base image triggers need beside the API: the index of tracked tags, the watcher
// that turns reports of new digests into runs, and the poller of registries that notify no one. Like the
// reporter, every process serving the API runs them, and they share the work through JetStream.
func (m *Main) startBaseImages(bg context.Context, js jetstream.JetStream, st *store.Store) {
	m.index = baseimage.NewIndex()
	w := &baseimage.Watcher{
		Store:     st,
		JS:        js,
		Runs:      m.headRuns(st, js, "base-images"),
		Index:     m.index,
		Settle:    m.cfg.BaseSettle,
		ReadBases: basedeps.ForTask,
		Logger:    m.log.With("part", "base-images"),
	}
	m.poller = &basepoll.Poller{
		Store:     st,
		Publisher: js,
		Tags:      m.index,
		Interval:  m.cfg.BasePollInterval,
		Tick:      min(m.cfg.BasePollInterval, basepoll.DefaultTick), // a tag tracked anew waits no longer than its interval
		Remote:    []remote.Option{remote.WithAuthFromKeychain(m.logins)},
		Logger:    m.log.With("part", "base-poller"),
	}
	for name, run := range map[string]func(context.Context) error{
		"base image index":   func(ctx context.Context) error { return m.index.Run(ctx, st) },
		"base image watcher": w.Run,
		"base image poller":  m.poller.Run,
	} {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := run(bg); err != nil {
				m.log.Error(name+" stopped", "err", err)
			}
		}()
	}
}

// headRuns starts runs of the head of a task's branch for the triggers that have no git event of their own.
func (m *Main) headRuns(st *store.Store, js jetstream.JetStream, part string) *queue.Head {
	log := m.log.With("part", part)
	return &queue.Head{Queue: queue.New(st, js, log), Store: st, ResolveRef: gitremote.Resolve,
		DefaultRegistry: m.cfg.DefaultRegistry, Logger: log}
}

// startTimers starts the scheduler of tasks' timers beside the API. Every process serving the API runs one;
// the store's marks let each occurrence start one run however many there are.
func (m *Main) startTimers(bg context.Context, js jetstream.JetStream, st *store.Store) {
	s := &timer.Scheduler{
		Store:  st,
		Runs:   m.headRuns(st, js, "timers"),
		Logger: m.log.With("part", "timers"),
	}
	m.timers = s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := s.Run(bg); err != nil {
			m.log.Error("timer scheduler stopped", "err", err)
		}
	}()
}

// startReporter reports runs of GitHub tasks as commit statuses. It runs beside the API: one per process that
// serves it is enough, and several share the work through one durable consumer.
func (m *Main) startReporter(bg context.Context, js jetstream.JetStream, st *store.Store) {
	rep := github.NewReporter(github.ReporterConfig{Config: github.Config{APIURL: m.cfg.GitHubAPIURL, PublicURL: m.cfg.PublicURL}},
		js, st, m.log.With("part", "github"))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := rep.Run(bg); err != nil {
			m.log.Error("GitHub status reporter stopped", "err", err)
		}
	}()
}

// ready is /readyz: NATS connected, and buildkitd answering when this process builds.
func (m *Main) ready(ctx context.Context) error {
	if !m.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS at %s (%s)", redactURL(m.natsURL), m.nc.Status())
	}
	if m.worker != nil {
		if err := m.worker.Ready(); err != nil {
			return err
		}
	}
	return nil
}

// waitReady waits, up to ReadyTimeout, for the worker to find buildkitd answering.
func (m *Main) waitReady(ctx context.Context) {
	if m.worker == nil {
		return
	}
	deadline := time.Now().Add(m.cfg.ReadyTimeout)
	for m.worker.Ready() != nil && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if err := m.worker.Ready(); err != nil {
		m.log.Warn("not ready yet; runs wait in the queue", "reason", err)
		return
	}
	m.log.Info("buildkitd answers", "addr", m.bkAddr)
}

// Close stops every part, in the reverse of the order Run started them. Runs in progress go back to the queue.
// Calling it again does nothing.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	var errs []error
	if m.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.httpServer.Shutdown(ctx))
		cancel()
	} else if m.apiLn != nil {
		_ = m.apiLn.Close() // Run failed before the API served on it
	}
	if m.stop != nil {
		m.stop()
	}
	m.wg.Wait()
	if m.builder != nil {
		errs = append(errs, m.builder.Close())
	}
	if m.nc != nil {
		m.nc.Close()
	}
	if m.registry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, m.registry.Close(ctx))
		cancel()
	}
	if m.natsd != nil {
		m.natsd.Shutdown()
	}
	return errors.Join(errs...)
}

// APIURL is the API's base URL, or "" when this process serves no API.
func (m *Main) APIURL() string {
	if m.apiAddr == "" {
		return ""
	}
	return "http://" + m.apiAddr
}

// RegistryAddr is the embedded registry's host:port, or "" when there is none.
func (m *Main) RegistryAddr() string {
	if m.registry == nil {
		return ""
	}
	return m.registry.Addr()
}

// Token is the API's bearer token, or "" when this process serves no API.
func (m *Main) Token() string { return m.token }

// DataDir is the absolute data directory.
func (m *Main) DataDir() string { return m.cfg.DataDir }

// NATSURL is the NATS server this process uses, as it connects to it: with the user and password of the
// embedded server, so that another process given it joins. Print it only through RedactURL.
func (m *Main) NATSURL() string { return m.natsURL }

// RedactURL returns the URLs in s (several may be separated by commas) without their user and password.
func RedactURL(s string) string { return redactURL(s) }

// BuildkitAddr is the buildkitd this process builds with.
func (m *Main) BuildkitAddr() string { return m.bkAddr }

// Timers is the scheduler of tasks' timers, or nil when this process serves no API. Tests tick it with their
// own clock.
func (m *Main) Timers() *timer.Scheduler { return m.timers }

// Supervisor is the buildkitd supervisor, or nil when buildkitd is external.
func (m *Main) Supervisor() *buildkitd.Supervisor { return m.supervisor }

// workerName is unique per process and per Main: host, pid and a random suffix.
func workerName() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", port)
	}
	return host, n, nil
}
