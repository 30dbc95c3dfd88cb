package natsd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long Start waits for the server to accept clients.
const readyTimeout = 10 * time.Second

// Config says where an embedded NATS server keeps its JetStream data, where it listens and whom it lets in.
type Config struct {
	Dir  string // JetStream storage directory
	Host string // default 127.0.0.1
	Port int    // 0 picks a free port
	// User and Password are what every client must connect with: the server lets no one in without them.
	User     string
	Password string
	// NoSync lets JetStream acknowledge a write before the write reaches the disk, syncing every 2 minutes
	// instead (nats-server's default). Left false, every stream and bucket is fsynced before each publish or
	// update is acknowledged (nats-server's sync_interval: always), so that what the server acknowledged
	// survives a power cut. Only benchmarks and tests set it, to measure what syncing costs.
	NoSync bool
}

// Server is a running embedded NATS server with JetStream enabled.
type Server struct {
	ns *server.Server
}

// Start runs a NATS server with JetStream on file storage in Dir, in this process, and returns once it accepts
// clients. It gives up after 10 seconds or when ctx is done, whichever comes first, and then leaves nothing
// running. The server outlives ctx: stop it with Shutdown.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting nats-server: %w", err)
	}
	if cfg.Dir == "" {
		return nil, errors.New("starting nats-server: no JetStream storage directory given")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("starting nats-server: no user and password given: clients must authenticate")
	}
	// nats-server would only log a storage directory it cannot use; finding out here gives a clear error.
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("starting nats-server: creating JetStream storage directory: %w", err)
	}
	opts := &server.Options{
		Host:      cfg.Host,
		Port:      cfg.Port,
		JetStream: true,
		StoreDir:  cfg.Dir,
		NoLog:     true,
		NoSigs:    true,
		Username:  cfg.User,
		Password:  cfg.Password,
		// nats-server v2.15.2 has fsync-before-ack only server-wide: a stream's PersistMode can relax it
		// (async) but not ask for it.
		SyncAlways: !cfg.NoSync,
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		// nats-server reads port 0 as its default, 4222; -1 is how it is asked for a free port.
		opts.Port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("starting nats-server: %w", err)
	}
	// No logger is set, on purpose: besides being silent, nats-server's loggers exit the process on Fatalf.
	ns.Start()
	if err := waitReady(ctx, ns); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("starting nats-server on %s: %w", ns.ClientURL(), err)
	}
	return &Server{ns: ns}, nil
}

// waitReady returns once ns, just started, accepts clients and has JetStream running, or an error saying why not.
// Server.Start enables JetStream and opens the listener before it returns, and gives up on the listener when
// JetStream fails; it does not return these failures, it would only log them, so a missing listener is all
// there is to see.
func waitReady(ctx context.Context, ns *server.Server) error {
	if ns.Addr() == nil {
		return errors.New("not listening (is the port in use, or could JetStream not start?)")
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for it to accept clients: %w", err)
		}
	}
	if !ns.JetStreamEnabled() {
		return errors.New("JetStream is not enabled")
	}
	return nil
}

// ClientURL returns the URL clients connect to, such as nats://127.0.0.1:41234, with the port actually bound.
// It holds no credentials: clients add the user and password themselves (nats.UserInfo, or in the URL).
func (s *Server) ClientURL() string {
	return s.ns.ClientURL()
}

// Shutdown stops the server, closing its client connections and JetStream files, and returns once it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
