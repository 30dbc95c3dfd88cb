package ociregistry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // registers the "filesystem" driver

	"github.com/kilnbuild/kiln/deploy/httpfront"
)

// defaultAddr is where the registry listens when Config.Addr is empty.
const defaultAddr = "127.0.0.1:5000"

// Registry is a running embedded OCI registry.
type Registry struct {
	addr     string
	app      *handlers.App
	srv      *http.Server
	served   chan struct{} // closed when Serve has returned
	serveErr error         // what Serve returned; read only after served is closed
}

// Start opens cfg.Addr, builds a distribution registry on filesystem storage in cfg.Dir and serves it in a
// goroutine. ctx bounds opening the listener only: the registry serves until Close.
func Start(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("starting registry: no storage directory given")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("starting registry: no user and password given: pushes and deletes must authenticate")
	}
	// The filesystem driver would find out about a directory it cannot use at the first push; finding out
	// here gives a clear error at once.
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("starting registry: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("starting registry: creating storage directory: %w", err)
	}
	cfg.Dir = dir
	addr := cfg.Addr
	if addr == "" {
		addr = defaultAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting registry: %w", err)
	}
	r := &Registry{addr: ln.Addr().String(), served: make(chan struct{})}

	base := withoutLogs(ctx)
	r.app, err = newApp(base, cfg, r.addr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("starting registry on %s: %w", r.addr, err)
	}
	// Every request's body keeps a pace, a blob upload's as well: one over a slow link goes on as long as
	// it keeps up, and one trickled, or sent with a request refused unread, is cut.
	r.srv = httpfront.Server(httpfront.Answered(httpfront.Pace(requireAuth(r.app, cfg.User, cfg.Password, loopback(ln.Addr())))))
	r.srv.BaseContext = func(net.Listener) context.Context { return base }
	r.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		defer close(r.served)
		r.serveErr = r.srv.Serve(ln)
	}()
	return r, nil
}

// newApp builds distribution's application for cfg, turning the panics with which it reports a bad
// configuration into an error.
func newApp(ctx context.Context, cfg Config, addr string) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configuring distribution: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg.configuration(addr)), nil
}

// loopback reports whether addr can be reached from this machine only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Addr returns the address the registry actually listens on, such as 127.0.0.1:39211: a reference to one of
// its images starts with it.
func (r *Registry) Addr() string {
	return r.addr
}

// Close stops accepting connections at once, waits for requests in flight to finish or for ctx to be done,
// whichever comes first, then drops the connections that are left and stops the registry's background work.
// The port is free when Close returns. Dropping connections when ctx ends is not an error: clients such as
// buildkitd keep connections open without a request, which Shutdown would otherwise wait on for seconds.
func (r *Registry) Close(ctx context.Context) error {
	var err error
	if r.srv.Shutdown(ctx) != nil {
		err = r.srv.Close()
	}
	<-r.served
	if !errors.Is(r.serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serving registry on %s: %w", r.addr, r.serveErr))
	}
	if aerr := r.app.Shutdown(); aerr != nil {
		err = errors.Join(err, fmt.Errorf("closing registry on %s: %w", r.addr, aerr))
	}
	return err
}
