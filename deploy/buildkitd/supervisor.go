package buildkitd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Restart pacing: the first restart waits minBackoff, each further one twice as long up to maxBackoff, and a
// buildkitd that stayed up for resetAfter counts as healthy again, so its next restart waits minBackoff.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
	resetAfter = 30 * time.Second
)

// Config says which buildkitd to run and how.
type Config struct {
	Bin  string // path of the buildkitd binary
	Root string // --root
	Addr string // e.g. "unix:///var/lib/kiln/buildkitd.sock"
	// Network is the bridge build containers are attached to, its zero fields derived from Root.
	Network Network
	// Config is an optional buildkitd.toml used instead of the one the supervisor writes under Root from
	// Network. With it, the containers' network, and any firewall around it, are the file's and its
	// operator's business: the supervisor installs no firewall rules.
	Config string
	// Mirrors are registries (host[:port]) buildkitd pulls Docker Hub's images from before Docker Hub itself:
	// [registry."docker.io"] mirrors in the buildkitd.toml the supervisor writes. BuildKit speaks plain HTTP to
	// one on localhost or a loopback address, HTTPS to any other. Not used with Config.
	Mirrors   []string
	Stderr    io.Writer // buildkitd's output; nil discards it
	ExtraArgs []string
}

// Supervisor keeps one buildkitd process running. Its methods are safe to call from several goroutines.
type Supervisor struct {
	cfg  Config
	done chan struct{} // closed when Run has returned

	mu       sync.Mutex
	ran      bool  // Run has been called
	err      error // what Run returned; set before done is closed
	pid      int
	restarts int
	network  Network // the bridge, once Run has resolved it
}

// New returns a Supervisor for cfg. Nothing starts until Run.
func New(cfg Config) *Supervisor {
	return &Supervisor{cfg: cfg, done: make(chan struct{})}
}

// Addr returns the address buildkitd listens on, as given in Config.Addr.
func (s *Supervisor) Addr() string {
	return s.cfg.Addr
}

// Restarts returns how many times buildkitd has been started again after it exited.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// Network returns the bridge the build containers are attached to, its fields resolved, once Run has started
// buildkitd on it; it is the zero Network before, and when Config.Config names an operator's own buildkitd.toml.
func (s *Supervisor) Network() Network {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.network
}

// PID returns the process id of the running buildkitd, or 0 when none is running.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Run starts buildkitd with the OCI worker on overlayfs and restarts it whenever it exits, waiting 0.5s before
// the first restart and twice as long before each further one, up to 10s; a buildkitd that stayed up for 30s
// is restarted after 0.5s again. When ctx is done, Run sends buildkitd SIGTERM, then SIGKILL to its process
// group if it has not exited within 10s, and returns nil once it has exited.
//
// Before the first start Run isolates the builds' network (unless Config.Config names an operator's own
// buildkitd.toml): it writes a buildkitd.toml under Root that puts the OCI worker on its own bridge (Network),
// and inserts iptables and ip6tables rules that drop whatever comes in on that bridge for this machine itself,
// which it removes, with the bridge, when it returns. So a RUN step reaches the world through NAT, but no
// service of this machine: not on 127.0.0.1, and not on any address of the machine through its gateway.
//
// Before its first start, and whenever buildkitd has exited or been stopped, Run ends the build containers
// left running on Root by that buildkitd, or by the one a killed `kiln serve` started (endOrphans). So no build
// step outlives the buildkitd that ran it, and none runs beside its retry, whether that retry runs on a
// restarted buildkitd or under a new `kiln serve` on the same data directory.
//
// Run returns an error, with nothing left running, when it cannot start buildkitd at all: when this process is
// not root, the configuration is incomplete, the CNI plugins or iptables are missing, the binary cannot be
// executed or another process is listening on Addr. Run may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("running buildkitd: Run was already called")
	}
	s.ran = true
	s.mu.Unlock()

	err := s.run(ctx)

	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.done)
	return err
}

// run is Run after its once-only check.
func (s *Supervisor) run(ctx context.Context) error {
	if err := checkRoot(os.Geteuid()); err != nil {
		return fmt.Errorf("running buildkitd: %w", err)
	}
	if err := s.cfg.check(); err != nil {
		return fmt.Errorf("running buildkitd: %w", err)
	}
	cfg, fw, err := isolate(ctx, s.cfg)
	if err != nil {
		return fmt.Errorf("running buildkitd: %w", err)
	}
	s.mu.Lock()
	s.network = cfg.Network
	s.mu.Unlock()
	if fw != nil {
		defer func() {
			ctx := context.WithoutCancel(ctx)
			subnet, _ := netip.ParsePrefix(cfg.Network.BridgeSubnet)
			err := errors.Join(releaseNamespaces(cfg.Root, subnet, ipamDir), fw.remove(ctx), removeBridge(ctx, fw.bridge))
			if err != nil && s.cfg.Stderr != nil {
				fmt.Fprintf(s.cfg.Stderr, "kiln: %v\n", err)
			}
		}()
	}
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 0 {
			s.endOrphans(ctx)
		}
		c, err := start(cfg)
		if err != nil {
			return fmt.Errorf("starting buildkitd: %w", err)
		}
		began := time.Now()
		s.mu.Lock()
		s.pid = c.pid()
		if attempt > 0 {
			s.restarts++
		}
		s.mu.Unlock()

		select {
		case <-c.exited:
		case <-ctx.Done():
			c.stop()
			s.setPID(0)
			s.endOrphans(ctx)
			return nil
		}
		s.setPID(0)
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL) // what is left of its process group
		s.endOrphans(ctx)

		if time.Since(began) >= resetAfter {
			backoff = minBackoff
		}
		if s.cfg.Stderr != nil {
			// The child's output has been copied in full by now, so this line does not interleave with it.
			fmt.Fprintf(s.cfg.Stderr, "kiln: buildkitd (pid %d) exited: %s; restarting in %s\n", c.pid(), c.exitReason(), backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// endOrphans ends the containers a buildkitd that is not running now left on Root, even when ctx is done, and
// reports on Stderr what it could not end: buildkitd starts all the same, since holding builds up would not end
// them either.
func (s *Supervisor) endOrphans(ctx context.Context) {
	if err := endOrphans(context.WithoutCancel(ctx), runc{}, s.cfg.Root); err != nil && s.cfg.Stderr != nil {
		fmt.Fprintf(s.cfg.Stderr, "kiln: ending the containers an earlier buildkitd left: %v\n", err)
	}
}

// setPID records the process id of the running buildkitd, 0 for none.
func (s *Supervisor) setPID(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pid = pid
}

// result returns what Run returned; call it only after done is closed.
func (s *Supervisor) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// checkRoot returns an error unless euid is root's: buildkitd's OCI worker runs containers with runc, which
// needs root without a rootless setup, and Kiln does not set one up.
func checkRoot(euid int) error {
	if euid != 0 {
		return fmt.Errorf("buildkitd with the OCI worker needs root here, and this process runs as uid %d: "+
			"run Kiln as root, or point it at a remote BuildKit daemon", euid)
	}
	return nil
}

// check returns an error naming the first field Run needs that cfg lacks.
func (cfg Config) check() error {
	switch {
	case cfg.Bin == "":
		return errors.New("no buildkitd binary given (Config.Bin; FindBinary finds one)")
	case cfg.Root == "":
		return errors.New("no root directory given (Config.Root)")
	case cfg.Addr == "":
		return errors.New("no address given (Config.Addr)")
	}
	return nil
}
