package buildkitd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildkitdBin returns the buildkitd the tests run: $KILN_BUILDKITD, or bin/buildkitd at the module root.
func buildkitdBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KILN_BUILDKITD"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("KILN_BUILDKITD=%s is not an executable file", p)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory; set KILN_BUILDKITD to a buildkitd binary")
		}
		dir = parent
	}
	p := filepath.Join(dir, "bin", "buildkitd")
	if !isExecutable(p) {
		t.Fatalf("%s not found: run \"make build\", or go build -o bin/buildkitd github.com/moby/buildkit/cmd/buildkitd "+
			"at the module root, or set KILN_BUILDKITD to a buildkitd binary", p)
	}
	return p
}

// run starts s.Run in a goroutine and returns a function that ends Run's context and returns what Run
// returned, or an error if it did not return within 30s. The test's cleanup calls it too.
func run(t *testing.T, s *Supervisor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = s.Run(ctx)
	}()
	stop = func() error {
		cancel()
		select {
		case <-done:
			return runErr
		case <-time.After(30 * time.Second):
			return errors.New("Run did not return within 30s of its context ending")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return stop
}

// waitReady calls s.WaitReady, failing the test if buildkitd is not ready within d.
func waitReady(t *testing.T, s *Supervisor, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady() error: %v", err)
	}
}

// eventually polls cond every 50ms until it holds or d has passed, and reports whether it held.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// reaped reports whether no process has the id pid any more, as syscall.Kill(pid, 0) sees it.
func reaped(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// dead reports whether the process pid has ended: reaped, or a zombie that its new parent has not reaped yet
// (a container's init may never reap it).
func dead(pid int) bool {
	if reaped(pid) {
		return true
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// syncBuffer is a bytes.Buffer that several goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
