package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/deploy/buildkitd"
)

// The parts every test shares, set up once by TestMain: the module root, the kiln binary built from this tree,
// and one buildkitd (its cache makes the tests fast; each test still gets its own NATS, store and registry).
var (
	root         string
	kilnBin      string
	buildkitdBin string
	buildkitAddr string
	// buildNetwork is the bridge the shared buildkitd's build containers are on.
	buildNetwork buildkitd.Network
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	var err error
	if root, err = moduleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	buildkitdBin = filepath.Join(root, "bin", "buildkitd")
	if _, err := os.Stat(buildkitdBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %s is missing; build it with `make build`\n", buildkitdBin)
		return 1
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "base", "busybox")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: examples/base/busybox is missing; `make build` copies it from Debian's busybox-static")
		return 1
	}
	tmp, err := os.MkdirTemp("", "kiln-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	kilnBin = filepath.Join(tmp, "kiln")
	build := exec.Command("go", "build", "-o", kilnBin, "./cmd/kiln")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building kiln: %v\n%s", err, out)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	var bkLog bytes.Buffer
	buildkitAddr = "unix://" + filepath.Join(tmp, "buildkitd.sock")
	sup := buildkitd.New(buildkitd.Config{Bin: buildkitdBin, Root: filepath.Join(tmp, "buildkit"), Addr: buildkitAddr, Stderr: &syncWriter{w: &bkLog}})
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	err = sup.WaitReady(readyCtx)
	readyCancel()
	if err != nil {
		cancel()
		<-done
		fmt.Fprintf(os.Stderr, "e2e: buildkitd did not become ready: %v\n%s", err, bkLog.String())
		return 1
	}
	buildNetwork = sup.Network()
	code := m.Run()
	cancel()
	<-done
	return code
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
