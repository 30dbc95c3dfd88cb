package builder

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// buildkitdBin is the buildkitd binary, and buildkitdAddr the address of the one TestMain starts for the whole
// package.
var buildkitdBin, buildkitdAddr string

// TestMain starts a real buildkitd (bin/buildkitd of the module, or $KILN_BUILDKITD) on a socket of its own, with
// an empty buildkitd.toml so that what the tests find about registries holds for an unconfigured daemon, and
// stops it once the tests are done. The build tests are slow-ish (a few seconds each) and run all the same.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	buildkitdBin, err = buildkitdPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kiln-builder-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	var stop func()
	buildkitdAddr, stop, err = startBuildkitd(buildkitdBin, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// buildkitdPath finds the buildkitd binary: $KILN_BUILDKITD, or bin/buildkitd at the module root.
func buildkitdPath() (string, error) {
	const how = "build it with: make build (or go build -o bin/buildkitd github.com/moby/buildkit/cmd/buildkitd)"
	if p := os.Getenv("KILN_BUILDKITD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("KILN_BUILDKITD=%s: %w; %s", p, err, how)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory to find bin/buildkitd from; %s", how)
		}
		dir = parent
	}
	p := filepath.Join(dir, "bin", "buildkitd")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the tests need buildkitd at %s (or $KILN_BUILDKITD): %w; %s", p, err, how)
	}
	return p, nil
}

// startBuildkitd runs bin with its state under tmp, waits until it answers, and returns its address and how to
// stop it (SIGTERM, then SIGKILL after 15s).
func startBuildkitd(bin, tmp string) (addr string, stop func(), err error) {
	config := filepath.Join(tmp, "buildkitd.toml")
	if err := os.WriteFile(config, nil, 0o644); err != nil {
		return "", nil, err
	}
	logPath := filepath.Join(tmp, "buildkitd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	addr = "unix://" + filepath.Join(tmp, "buildkitd.sock")
	cmd := exec.Command(bin,
		"--config", config,
		"--root", filepath.Join(tmp, "root"),
		"--addr", addr,
		"--oci-worker=true", "--containerd-worker=false", "--oci-worker-snapshotter=overlayfs")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := New(ctx, addr)
	if err != nil {
		stop()
		return "", nil, err
	}
	defer b.Close()
	for {
		err := b.Ping(ctx)
		if err == nil {
			return addr, stop, nil
		}
		select {
		case werr := <-exited:
			exited <- werr
			out, _ := os.ReadFile(logPath)
			return "", nil, fmt.Errorf("buildkitd exited (%v) before answering:\n%s", werr, out)
		case <-ctx.Done():
			stop()
			out, _ := os.ReadFile(logPath)
			return "", nil, fmt.Errorf("buildkitd did not answer within a minute: %v\n%s", err, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newBuilder returns a Builder on the test buildkitd, closed when the test ends.
func newBuilder(t *testing.T) *Builder {
	t.Helper()
	b, err := New(t.Context(), buildkitdAddr)
	if err != nil {
		t.Fatalf("New(%s) = %v", buildkitdAddr, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// newRegistry starts go-containerregistry's in-process registry and returns its host:port (127.0.0.1:PORT).
func newRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// writeFiles writes files (path: content) under dir, creating directories as needed.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
