package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/deploy/buildkitd"
	"github.com/kilnbuild/kiln/trigger/api"
)

// TestCancel: canceling a running build stops the BuildKit solve, ends the run Canceled and keeps its log.
func TestCancel(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN echo sleeping now && sleep 60\n"},
		api.BuildRequest{Tags: []string{"cancel:1"}})
	k.wait(t, run.ID, time.Minute, "its RUN step started", func(r *api.Run) bool {
		return r.Status == "Running" && strings.Contains(k.logOf(t, r.ID), "sleeping now")
	})
	out, _, code := k.cli(t, "runs", "cancel", run.ID)
	if code != 0 {
		t.Fatalf("kiln runs cancel %s = exit %d: %s", run.ID, code, out)
	}
	asked := time.Now()
	// The RUN step sleeps 60s; ending well before then shows the solve itself was stopped.
	r := k.wait(t, run.ID, 20*time.Second, "Canceled", func(r *api.Run) bool { return r.Status != "Running" })
	t.Logf("cancel took %s from request to Canceled", time.Since(asked).Round(time.Millisecond))
	if r.Status != "Canceled" {
		t.Fatalf("run %s = %s (%q), want Canceled", r.ID, r.Status, r.Error)
	}
	if log := k.logOf(t, r.ID); !strings.Contains(log, "sleeping now") || !strings.Contains(log, "canceled") {
		t.Errorf("log of canceled run %s lost its content:\n%s", r.ID, log)
	}
	if _, _, code := k.cli(t, "runs", "cancel", run.ID); code != 1 {
		t.Errorf("canceling an ended run = exit %d, want 1 (409)", code)
	}
}

// TestTimeout: a build running past its timeout is stopped and ends Timeout.
func TestTimeout(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN sleep 60\n"},
		api.BuildRequest{Tags: []string{"slow:1"}, Timeout: 3})
	r := k.wait(t, run.ID, 30*time.Second, "Timeout", func(r *api.Run) bool { return r.Status != "Queued" && r.Status != "Running" })
	if r.Status != "Timeout" || !strings.Contains(r.Error, "timeout") {
		t.Fatalf("run %s = %s (%q), want Timeout", r.ID, r.Status, r.Error)
	}
}

// TestBuildkitdDown: while buildkitd is away runs wait Queued and /readyz says why; they run once it is back. A
// queued run can be canceled.
func TestBuildkitdDown(t *testing.T) {
	dir := t.TempDir()
	addr := "unix://" + filepath.Join(dir, "bk.sock")
	k := startKiln(t, func(c *serve.Config) { c.BuildkitAddr = addr; c.ReadyTimeout = time.Second })

	resp, err := http.Get(k.APIURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "buildkitd") {
		t.Errorf("/readyz = %d %s, want 503 naming buildkitd", resp.StatusCode, body)
	}

	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"}, api.BuildRequest{Tags: []string{"waits:1"}})
	other := k.submitFiles(t, map[string]string{"Dockerfile": "FROM scratch\n"}, api.BuildRequest{})
	time.Sleep(2 * time.Second)
	for _, id := range []string{run.ID, other.ID} {
		if r, _ := k.api.Run(context.Background(), id); r == nil || r.Status != "Queued" {
			t.Fatalf("run %s with buildkitd down = %+v, want Queued", id, r)
		}
	}
	if r, err := k.api.Cancel(context.Background(), other.ID); err != nil || r.Status != "Canceled" {
		t.Fatalf("Cancel(%s) while queued = %+v, %v; want Canceled", other.ID, r, err)
	}

	sup := buildkitd.New(buildkitd.Config{Bin: buildkitdBin, Root: filepath.Join(dir, "root"), Addr: addr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" {
		t.Fatalf("run %s after buildkitd came back = %s (%q), want Succeeded", r.ID, r.Status, r.Error)
	}
	if r, _ := k.api.Run(context.Background(), other.ID); r.Status != "Canceled" {
		t.Errorf("canceled queued run %s = %s after buildkitd came back, want it still Canceled", other.ID, r.Status)
	}
}

// TestBuildkitdSupervised: the buildkitd kiln serve starts is restarted when it dies, and builds go on.
func TestBuildkitdSupervised(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.BuildkitAddr = ""; c.BuildkitdBin = buildkitdBin })
	sup := k.Supervisor()
	if sup == nil {
		t.Fatal("Supervisor() = nil with no --buildkit-addr")
	}
	pid := sup.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing buildkitd (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for sup.Restarts() < 1 || sup.PID() == 0 || sup.PID() == pid {
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd not restarted 30s after SIGKILL (restarts %d, pid %d)", sup.Restarts(), sup.PID())
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"}, api.BuildRequest{Tags: []string{"after-restart:1"}})
	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" {
		t.Fatalf("run %s after buildkitd's restart = %s (%q)", r.ID, r.Status, r.Error)
	}
}

// TestListenNeedsToken: the API needs a token on every address, beyond loopback too: --token-file's, or one made
// in the data directory when none is given.
func TestListenNeedsToken(t *testing.T) {
	made := startKiln(t, func(c *serve.Config) { c.Listen = "0.0.0.0:0"; c.Workers = 0 })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	given := startKiln(t, func(c *serve.Config) { c.Listen = "0.0.0.0:0"; c.TokenFile = tokenFile; c.Workers = 0 })
	tests := []struct {
		name  string
		k     *kiln
		token string
	}{
		{name: "made", k: made, token: made.Token()},
		{name: "--token-file", k: given, token: "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.k.Token() != tt.token || tt.token == "" {
				t.Fatalf("Token() = %q, want %q", tt.k.Token(), tt.token)
			}
			url := strings.Replace(tt.k.APIURL(), "0.0.0.0", "127.0.0.1", 1)
			url = strings.Replace(url, "[::]", "127.0.0.1", 1)
			if _, err := api.NewClient(url, "").ListRuns(context.Background(), "", 1); err == nil || !strings.Contains(err.Error(), "token") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
				t.Errorf("ListRuns() without the token = %v, want unauthorized", err)
			}
			if _, err := api.NewClient(url, tt.token).ListRuns(context.Background(), "", 1); err != nil {
				t.Errorf("ListRuns() with the token = %v", err)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
