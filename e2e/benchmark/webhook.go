package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

const webhookSecret = "bench-secret"

// webhookResults are the webhook measurements.
type webhookResults struct {
	toRunning  []time.Duration // delivery sent → run Running, one delivery at a time
	ingested   int             // deliveries answered 202 in the ingest burst
	ingestTime time.Duration
	concurrent int
	sent       int // deliveries sent in the ingest burst
}

// gitRepo serves one bare repository with a Dockerfile over HTTP with git http-backend, and returns its URL
// and the commit on main.
func gitRepo(tmp string) (url, commit string, stop func(), err error) {
	root := filepath.Join(tmp, "git")
	work := filepath.Join(tmp, "git-work")
	bare := filepath.Join(root, "bench", "app.git")
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=k", "GIT_AUTHOR_EMAIL=k@kiln.invalid", "GIT_COMMITTER_NAME=k",
			"GIT_COMMITTER_EMAIL=k@kiln.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	for _, d := range []string{bare, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(work, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644); err != nil {
		return "", "", nil, err
	}
	for _, step := range [][]string{
		{bare, "init", "--quiet", "--bare", "--initial-branch=main"},
		{bare, "config", "uploadpack.allowAnySHA1InWant", "true"},
		{work, "init", "--quiet", "--initial-branch=main"},
		{work, "add", "-A"},
		{work, "commit", "--quiet", "-m", "first"},
		{work, "push", "--quiet", bare, "HEAD:main"},
	} {
		if _, err := run(step[0], step[1:]...); err != nil {
			return "", "", nil, err
		}
	}
	if commit, err = run(work, "rev-parse", "HEAD"); err != nil {
		return "", "", nil, err
	}
	execPath, err := run("", "--exec-path")
	if err != nil {
		return "", "", nil, err
	}
	srv := httptest.NewServer(&cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	return srv.URL + "/bench/app.git", commit, srv.Close, nil
}

// signedPush is one push delivery's body and its X-Hub-Signature-256.
type signedPush struct {
	body []byte
	sig  string
}

// pushDeliveries returns n distinct signed pushes of commit: the real GitHub push payload of the webhook tests,
// pointed at url and commit, each moving main to commit from a different "before". Kiln acts on a push once,
// whatever delivery ID carries it, so n deliveries of one body would start one run.
func pushDeliveries(root, url, commit string, n int) ([]signedPush, error) {
	raw, err := os.ReadFile(filepath.Join(root, "trigger", "webhook", "testdata", "github", "push.branch.json"))
	if err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	p["ref"], p["after"] = "refs/heads/main", commit
	repo := p["repository"].(map[string]any)
	repo["clone_url"], repo["html_url"], repo["default_branch"] = url, strings.TrimSuffix(url, ".git"), "main"
	p["head_commit"].(map[string]any)["id"] = commit
	pushes := make([]signedPush, n)
	for i := range pushes {
		p["before"] = fmt.Sprintf("%040x", i+1)
		body, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(body)
		pushes[i] = signedPush{body: body, sig: "sha256=" + hex.EncodeToString(mac.Sum(nil))}
	}
	return pushes, nil
}

// deliver POSTs one signed push delivery and returns the run IDs of its 202 answer.
func deliver(client *http.Client, server string, push signedPush, n int64) ([]string, error) {
	req, err := http.NewRequest(http.MethodPost, server+"/v1/webhooks/github", bytes.NewReader(push.body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n))
	req.Header.Set("X-Hub-Signature-256", push.sig)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var answer struct {
		Runs []string `json:"runs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("delivery answered %d (%v)", resp.StatusCode, err)
	}
	return answer.Runs, nil
}

// createTask makes the task the deliveries trigger, through the kiln binary as a user would.
func (b *bench) createTask(ctx context.Context, server, token, url string) error {
	secret := filepath.Join(b.tmp, "secret")
	if err := os.WriteFile(secret, []byte(webhookSecret), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, b.bin("kiln"), "task", "create", "bench", "--context", url+"#main",
		"--webhook-secret-file", secret, "--server", server)
	cmd.Env = append(b.env(), "KILN_TOKEN="+token)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kiln task create: %w\n%s", err, out)
	}
	return nil
}

// webhookToRunning delivers pushes one at a time to an idle Kiln and reads, for each, how long after the
// delivery was sent its run was Running (from the run record; the clone comes after).
func (b *bench) webhookToRunning(ctx context.Context, url, commit string, n int) ([]time.Duration, error) {
	pushes, err := pushDeliveries(b.root, url, commit, n)
	if err != nil {
		return nil, err
	}
	c := api.NewClient(b.server, b.token)
	var out []time.Duration
	for i := 0; i < n; i++ {
		sent := time.Now()
		ids, err := deliver(http.DefaultClient, b.server, pushes[i], int64(i))
		if err != nil || len(ids) != 1 {
			return nil, fmt.Errorf("delivery %d: %v (runs %v)", i, err, ids)
		}
		for {
			r, err := c.Run(ctx, ids[0])
			if err != nil {
				return nil, err
			}
			if r.Status != "Queued" && r.Status != "Running" {
				if r.StartedAt == nil {
					return nil, fmt.Errorf("run %s ended %s without starting: %s", r.ID, r.Status, r.Error)
				}
				out = append(out, r.StartedAt.Sub(sent))
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return out, nil
}

// webhookIngest fires pushes, concurrency at a time, at a Kiln with no workers, and counts those answered 202
// with their run durably queued.
func webhookIngest(server string, pushes []signedPush, concurrency int) (int, time.Duration, error) {
	n := len(pushes)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	var ok, seq atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := seq.Add(1)
				if i > int64(n) {
					return
				}
				if ids, err := deliver(client, server, pushes[i-1], i); err == nil && len(ids) == 1 {
					ok.Add(1)
				} else if err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load()), time.Since(start), firstErr
}

// ingestMarkdown is the webhook ingest section of BENCHMARKS.md.
func (w webhookResults) ingestMarkdown() string {
	rate := float64(w.ingested) / w.ingestTime.Seconds()
	return fmt.Sprintf("## Webhook ingest\n\n%d deliveries, %d at a time, at a kiln serve with no workers: each answered 202 "+
		"once its run was recorded and its event acknowledged by JetStream (file storage). %d answered 202 in %s: "+
		"%.0f deliveries/s (target ≥ 1,000/s: %s).\n\n", w.sent, w.concurrent, w.ingested, w.ingestTime.Round(time.Millisecond), rate, met(rate >= 1000))
}
