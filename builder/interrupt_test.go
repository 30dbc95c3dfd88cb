package builder

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// lineWatcher signals on seen once a write contains want.
type lineWatcher struct {
	syncBuffer
	want string
	once sync.Once
	seen chan struct{}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func TestBuildCancel(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, _ := pushBase(t, b, host)

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo sleeping && sleep 30\n"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &lineWatcher{want: "sleeping", seen: make(chan struct{})}
	type outcome struct {
		err error
		at  time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		_, err := b.Build(ctx, Request{ContextDir: dir, OutputDir: filepath.Join(t.TempDir(), "oci")}, log)
		done <- outcome{err, time.Now()}
	}()

	select {
	case <-log.seen:
	case o := <-done:
		t.Fatalf("Build() = %v before the RUN step started\n%s", o.err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the RUN step did not start within a minute\n%s", log.String())
	}
	canceled := time.Now()
	cancel()
	select {
	case o := <-done:
		t.Logf("Build() = %v after %v", o.err, o.at.Sub(canceled))
		if took := o.at.Sub(canceled); took > 2*time.Second {
			t.Errorf("Build() returned %v after cancel, want within 2s", took)
		}
		if !errors.Is(o.err, context.Canceled) || proto.ErrorCode(o.err) != proto.Unavailable {
			t.Errorf("Build() = %v (kind %q), want context.Canceled of kind %q", o.err, proto.ErrorCode(o.err), proto.Unavailable)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Build() still running 10s after cancel")
	}
}

func TestUnreachableBuildkitd(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	b, err := New(t.Context(), addr)
	if err != nil {
		t.Fatalf("New(%s) = %v, want a Builder even though nothing listens yet", addr, err)
	}
	t.Cleanup(func() { b.Close() })

	if err := b.Ping(t.Context()); proto.ErrorCode(err) != proto.Unavailable {
		t.Errorf("Ping() = %v (kind %q), want kind %q", err, proto.ErrorCode(err), proto.Unavailable)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\n"})
	_, err = b.Build(t.Context(), Request{ContextDir: dir, OutputDir: filepath.Join(t.TempDir(), "oci")}, io.Discard)
	if proto.ErrorCode(err) != proto.Unavailable {
		t.Errorf("Build() = %v (kind %q), want kind %q", err, proto.ErrorCode(err), proto.Unavailable)
	}
}

// cutProxy forwards unix socket connections to target until cut closes them all.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

// newCutProxy listens on a socket in a temporary directory and returns the proxy and its buildkitd address.
func newCutProxy(t *testing.T, target string) (*cutProxy, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: strings.TrimPrefix(target, "unix://")}
	t.Cleanup(p.cut)
	go p.serve()
	return p, "unix://" + sock
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("unix", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() { io.Copy(c, u); c.Close() }()
	}
}

// cut stops accepting and closes every connection, as when buildkitd's host goes away.
func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func TestBuildkitdLost(t *testing.T) {
	host := newRegistry(t)
	base, _ := pushBase(t, newBuilder(t), host)
	proxy, addr := newCutProxy(t, buildkitdAddr)
	b, err := New(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo sleeping && sleep 30\n"})
	log := &lineWatcher{want: "sleeping", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := b.Build(t.Context(), Request{ContextDir: dir, OutputDir: filepath.Join(t.TempDir(), "oci")}, log)
		done <- err
	}()
	select {
	case <-log.seen:
	case err := <-done:
		t.Fatalf("Build() = %v before the RUN step started\n%s", err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the RUN step did not start within a minute\n%s", log.String())
	}
	start := time.Now()
	proxy.cut()
	select {
	case err := <-done:
		t.Logf("Build() = %v after %v", err, time.Since(start))
		if proto.ErrorCode(err) != proto.Unavailable {
			t.Errorf("Build() = %v (kind %q) once the connection is lost, want kind %q", err, proto.ErrorCode(err), proto.Unavailable)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Build() still running 10s after the connection to buildkitd was lost")
	}
}

// TestBuildkitdLate checks that a Builder made while buildkitd is down works once it comes up, without waiting
// out gRPC's reconnection backoff, which by default grows to minutes (after 40s down, it took 5s to notice). It
// is slow, 20s of downtime to let that backoff grow, and runs in parallel with the other tests.
func TestBuildkitdLate(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	b, err := New(t.Context(), "unix://"+tmp+"/buildkitd.sock")
	if err != nil {
		t.Fatalf("New() = %v, want a Builder even though buildkitd is down", err)
	}
	t.Cleanup(func() { b.Close() })
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := b.Ping(t.Context()); err == nil {
			t.Fatalf("Ping() = nil before buildkitd started")
		}
	}

	_, stop, err := startBuildkitd(buildkitdBin, tmp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	start := time.Now()
	for {
		err := b.Ping(t.Context())
		if err == nil {
			t.Logf("Ping() answered %v after buildkitd did", time.Since(start))
			return
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("Ping() = %v 2s after buildkitd came up, want nil", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
