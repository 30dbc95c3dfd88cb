package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// hostileSecret is the webhook secret of the one task the hostile tests' Kiln has: with a task that has a
// secret, a signed delivery's body is read (and hashed) before it is refused, which is the costly path.
const hostileSecret = "the task's own secret"

// serveProcess is a `kiln serve` run as its own process, as an operator runs it, so that its memory can be read
// from /proc.
type serveProcess struct {
	cmd   *exec.Cmd
	url   string // the API's URL
	token string
}

// startServeProcess starts `kiln serve` with no worker, no registry and its own data directory and token,
// and waits for its API to be ready. It is stopped when the test ends.
func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	dir := t.TempDir()
	token := "hostile-" + nonce()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	apiAddr, natsAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	var out syncWriter
	out.w = &bytes.Buffer{}
	cmd := exec.Command(kilnBin, append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--listen", apiAddr,
		"--nats-listen", natsAddr, "--registry-listen", "", "--workers", "0", "--token-file", tokenFile,
		"--log-level", "error"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kiln serve: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kiln serve (pid %d) log:\n%s", cmd.Process.Pid, out.String())
		}
	})
	s := &serveProcess{cmd: cmd, url: "http://" + apiAddr, token: token}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln serve did not answer /healthz within a minute: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeLoopbackAddr returns a loopback address with a port free at the time of asking.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// memory returns kiln serve's resident memory now (VmRSS) and at its peak so far (VmHWM), in bytes.
func (s *serveProcess) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range []struct {
			name string
			to   *int64
		}{{"VmRSS:", &rss}, {"VmHWM:", &peak}} {
			if rest, ok := strings.CutPrefix(sc.Text(), field.name); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					t.Fatalf("/proc status %s: %v", field.name, err)
				}
				*field.to = kb << 10
			}
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS or VmHWM in /proc/%d/status", s.cmd.Process.Pid)
	}
	return rss, peak
}

// createHostileTask makes the one task: it builds a repository the flood does not name, with hostileSecret.
func (s *serveProcess) createHostileTask(t *testing.T) {
	t.Helper()
	_, err := api.NewClient(s.url, s.token).CreateTask(t.Context(), api.Task{Name: "known",
		Context: "https://git.kiln.test/team/known.git#main", Tags: []string{"registry.kiln.test/known:{{.Run.ID}}"}, WebhookSecret: hostileSecret})
	if err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
}

// floodBody is a delivery of about size bytes naming a repository no task builds.
func floodBody(size int) []byte {
	head := `{"ref":"refs/heads/main","repository":{"clone_url":"https://git.kiln.test/team/nobody.git"},"padding":"`
	b := make([]byte, 0, size)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte("x"), size-len(head)-2)...)
	return append(b, `"}`...)
}

// floodBudget is what kiln serve may reach, at its peak, under TestWebhookFlood: its idle size (about 65 MB),
// the 64 MiB budget, and room for the garbage collector to run behind (`make bench` saw peaks of 180 to 235
// MB). Without the budget the flood took it past 1.9 GB.
const floodBudget = 320 << 20

// TestWebhookFlood: 40 deliveries of 24 MB at once, signed but not by a task's secret, about a repository no
// task builds. kiln serve reads at most its memory budget's worth of them at a time and answers the rest 503;
// its peak resident memory stays under floodBudget, and it still answers a real delivery afterwards.
func TestWebhookFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 960 MB of deliveries")
	}
	s := startServeProcess(t)
	s.createHostileTask(t)
	idle, _ := s.memory(t)

	body := floodBody(24 << 20)
	mac := hmac.New(sha256.New, []byte("not the task's secret"))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	const senders = 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		cut      int // deliveries whose connection was closed before an answer
	)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: senders}}
	for i := range senders {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/v1/webhooks/github", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i))
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cut++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
		})
	}
	wg.Wait()
	rss, peak := s.memory(t)
	t.Logf("kiln serve: %d MiB idle, %d MiB after the flood, %d MiB at its peak; answers %v, %d cut before an answer",
		idle>>20, rss>>20, peak>>20, statuses, cut)
	if peak > floodBudget {
		t.Errorf("kiln serve's peak resident memory (VmHWM) = %d MiB under %d deliveries of 24 MB, want under %d MiB",
			peak>>20, senders, floodBudget>>20)
	}
	for status, n := range statuses {
		if status != http.StatusUnauthorized && status != http.StatusServiceUnavailable {
			t.Errorf("%d deliveries answered %d, want 401 (read and refused) or 503 (no room in the budget)", n, status)
		}
	}
	if statuses[http.StatusUnauthorized] == 0 {
		t.Errorf("answers %v: want some deliveries read and refused 401", statuses)
	}

	// The flood leaves nothing held: a delivery signed with the task's secret is read and answered.
	small := floodBody(1 << 10)
	mac = hmac.New(sha256.New, []byte(hostileSecret))
	mac.Write(small)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/v1/webhooks/github", bytes.NewReader(small))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a delivery after the flood: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !bytes.Contains(answer, []byte("no task builds")) {
		t.Errorf("a delivery after the flood = %d %s, want 202 saying no task builds the repository", resp.StatusCode, answer)
	}
}

// TestTrickledBodiesAreCut: a body sent a few bytes a second holds no connection for long, whoever it is
// for: a git host's webhook (read, hashed, cut at its body deadline of 30 s), the API refusing a request
// without a token (its body left unread, then cut at its pace's grace), and the API taking a context upload
// with the token (cut once it falls behind the least average rate). The server closes each connection, with
// an answer or without, well before the test's own minute.
func TestTrickledBodiesAreCut(t *testing.T) {
	s := startServeProcess(t)
	s.createHostileTask(t)
	tests := []struct {
		name   string
		header string
	}{
		{name: "webhook", header: "POST /v1/webhooks/github HTTP/1.1\r\nContent-Type: application/json\r\n" +
			"X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n"},
		{name: "API without a token", header: "POST /v1/runs HTTP/1.1\r\nContent-Type: application/json\r\n"},
		{name: "API with the token", header: "POST /v1/runs HTTP/1.1\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer " + s.token + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const length = 100 << 10
			if _, err := fmt.Fprintf(conn, "%sHost: kiln\r\nContent-Length: %d\r\n\r\n", tt.header, length); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { // a few bytes a second, until the server has had enough
				tick := time.NewTicker(300 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("{")); err != nil {
							return
						}
					}
				}
			}()
			start := time.Now()
			if err := conn.SetReadDeadline(start.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			answer, err := io.ReadAll(conn) // up to the server's close
			took := time.Since(start)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after a minute of a trickled body the connection is open (read %q)", answer)
			}
			status, _, _ := strings.Cut(string(answer), "\r\n")
			t.Logf("the server closed the connection after %s, answering %q", took.Round(time.Second), status)
			if status != "" && !strings.Contains(status, " 400 ") && !strings.Contains(status, " 408 ") && !strings.Contains(status, " 401 ") {
				t.Errorf("trickled body answered %q, want 400, 408, 401 or no answer", status)
			}
		})
	}
}
