package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
)

// kiln is one Kiln started in-process for a test, with a client of its API.
type kiln struct {
	*serve.Main
	api *api.Client
	log *syncWriter // the service's log, printed when the test fails
}

// startKiln starts Kiln as `kiln serve` would, on free ports, with the shared buildkitd unless an option says
// otherwise. It is stopped when the test ends.
func startKiln(t *testing.T, opts ...func(*serve.Config)) *kiln {
	t.Helper()
	cfg := serve.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:0"
	cfg.RegistryListen = "127.0.0.1:0"
	cfg.BuildkitAddr = buildkitAddr
	cfg.AckWait = 3 * time.Second
	cfg.PushBackoff = 50 * time.Millisecond
	cfg.ReadyTimeout = 30 * time.Second
	logs := &syncWriter{w: &bytes.Buffer{}}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, o := range opts {
		o(&cfg)
	}
	m := serve.New(cfg)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if t.Failed() {
			t.Logf("kiln serve's log:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Main.Run() = %v", err)
	}
	return &kiln{Main: m, api: api.NewClient(m.APIURL(), m.Token()), log: logs}
}

// registryAuth is the option that gives go-containerregistry the embedded registry's user and password, which
// Kiln keeps in its data directory, for a test that pushes to it or deletes from it directly.
func (k *kiln) registryAuth(t *testing.T) remote.Option {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.DataDir(), "registry-credentials"))
	if err != nil {
		t.Fatalf("reading the registry's credentials: %v", err)
	}
	user, password, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		t.Fatalf("%s holds no user:password", filepath.Join(k.DataDir(), "registry-credentials"))
	}
	return remote.WithAuth(&authn.Basic{Username: user, Password: password})
}

// submitDir packs dir as `kiln build` does and submits it.
func (k *kiln) submitDir(t *testing.T, dir string, req api.BuildRequest) (*api.Run, error) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(api.PackContext(context.Background(), dir, req.Dockerfile, pw)) }()
	defer pr.Close()
	return k.api.SubmitRun(context.Background(), req, pr)
}

// submitFiles writes files (name → content) to a fresh directory and submits it.
func (k *kiln) submitFiles(t *testing.T, files map[string]string, req api.BuildRequest) *api.Run {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run, err := k.submitDir(t, dir, req)
	if err != nil {
		t.Fatalf("SubmitRun() = %v", err)
	}
	return run
}

// wait polls the run until cond holds, failing the test after timeout.
func (k *kiln) wait(t *testing.T, id string, timeout time.Duration, what string, cond func(*api.Run) bool) *api.Run {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := k.api.Run(context.Background(), id)
		if err != nil {
			t.Fatalf("Run(%s) = %v", id, err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s (error %q) after %s, want %s", id, r.Status, r.Error, timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitDone waits for the run to end.
func (k *kiln) waitDone(t *testing.T, id string) *api.Run {
	t.Helper()
	return k.wait(t, id, 2*time.Minute, "ended", func(r *api.Run) bool { return r.Status != "Queued" && r.Status != "Running" })
}

// logOf returns the run's stored log.
func (k *kiln) logOf(t *testing.T, id string) string {
	t.Helper()
	var b bytes.Buffer
	if err := k.api.Log(context.Background(), id, false, &b); err != nil {
		t.Fatalf("Log(%s) = %v", id, err)
	}
	return b.String()
}

// pushBase builds examples/base into this Kiln's registry as base/busybox:1 and returns its registry.
func (k *kiln) pushBase(t *testing.T) string {
	t.Helper()
	run, err := k.submitDir(t, filepath.Join(root, "examples", "base"), api.BuildRequest{Tags: []string{"base/busybox:1"}})
	if err != nil {
		t.Fatalf("submitting examples/base: %v", err)
	}
	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" {
		t.Fatalf("building examples/base: run %s is %s: %s\n%s", r.ID, r.Status, r.Error, k.logOf(t, r.ID))
	}
	return k.RegistryAddr()
}

// cli runs the kiln binary against this Kiln and returns its stdout, stderr and exit code.
func (k *kiln) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(kilnBin, args...)
	cmd.Dir = root
	// A client config of the test's own, empty, so that the token is the one this Kiln made, from $KILN_TOKEN.
	cmd.Env = append(os.Environ(), "KILN_SERVER="+k.APIURL(), "KILN_TOKEN="+k.Token(),
		"KILN_CONFIG="+filepath.Join(t.TempDir(), "config.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	default:
		t.Fatalf("running kiln %s: %v", strings.Join(args, " "), err)
		return "", "", -1
	}
}

// imageFile reads the file at path from the image ref, from its layers.
func imageFile(t *testing.T, ref, path string) (string, bool) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("ParseReference(%s) = %v", ref, err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", ref, err)
	}
	tr := tar.NewReader(mutate.Extract(img))
	path = strings.TrimPrefix(path, "/")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatalf("reading the layers of %s: %v", ref, err)
		}
		if strings.TrimPrefix(h.Name, "./") == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b), true
		}
	}
}

// nonce is different at every call, for a build step that must run rather than come from BuildKit's cache,
// which the tests share.
func nonce() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// syncWriter is an io.Writer safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
