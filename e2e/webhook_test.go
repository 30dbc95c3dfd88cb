package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// payload loads a real webhook body from trigger/webhook/testdata (copied unchanged from the senders' public
// fixtures; see its README) so that the rewrites below can point it at the test's repository and commits.
func payload(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "trigger", "webhook", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// githubPush rewrites a real GitHub push payload: only the repository's URLs, the ref, the commits and the
// files they changed (when changed is not nil) are the test's.
func githubPush(t *testing.T, file, repoURL, branch, before, after string, changed []string) []byte {
	t.Helper()
	p := payload(t, file)
	p["ref"], p["before"], p["after"] = "refs/heads/"+branch, before, after
	repo := p["repository"].(map[string]any)
	repo["clone_url"], repo["html_url"], repo["url"], repo["default_branch"] = repoURL, strings.TrimSuffix(repoURL, ".git"), strings.TrimSuffix(repoURL, ".git"), "main"
	if hc, ok := p["head_commit"].(map[string]any); ok {
		hc["id"] = after
	}
	if changed != nil {
		commits := p["commits"].([]any)
		c := commits[0].(map[string]any)
		c["id"], c["added"], c["modified"], c["removed"] = after, []string{}, changed, []string{}
		p["commits"] = commits[:1]
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver POSTs body to the GitHub webhook endpoint as GitHub does: event, delivery ID and, when secret is
// set, the HMAC-SHA256 signature. It returns the status and the decoded answer.
func (k *kiln) deliver(t *testing.T, event, delivery, secret string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, k.APIURL()+"/v1/webhooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delivering %s: %v", event, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	_ = json.Unmarshal(raw, &answer)
	return resp.StatusCode, answer
}

// runsOf returns the run IDs a webhook answer names.
func runsOf(answer map[string]any) []string {
	var ids []string
	list, _ := answer["runs"].([]any)
	for _, v := range list {
		ids = append(ids, fmt.Sprint(v))
	}
	return ids
}

func guid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// secretFile writes a secret to a file for --webhook-secret-file and --git-token-file.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGitPush: a push to the branch a task tracks builds exactly the pushed commit, tagged with its SHA, and
// the run records what triggered it.
func TestGitPush(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	dockerfile := "FROM " + reg + "/base/busybox:1\nCOPY version.txt /version.txt\nRUN echo built-from-git >> /version.txt\n"
	r := gittest.NewRepo(t)
	first := r.Commit(map[string]string{"Dockerfile": dockerfile, "version.txt": "1\n"})
	url := g.Publish(r, "team/app.git", "main")
	const secret = "It's a Secret to Everybody"
	out, errOut, code := k.cli(t, "task", "create", "app", "--context", url+"#main", "-t", "app:{{.Run.Commit}}",
		"--webhook-secret-file", secretFile(t, secret))
	if code != 0 {
		t.Fatalf("kiln task create = exit %d\n%s%s", code, out, errOut)
	}

	second := r.Commit(map[string]string{"version.txt": "2\n"})
	third := r.Commit(map[string]string{"version.txt": "3\n"}) // the branch has moved on past the push we deliver
	delivery := guid()
	status, answer := k.deliver(t, "push", delivery, secret, githubPush(t, "github/push.branch.json", url, "main", first, second, []string{"version.txt"}))
	ids := runsOf(answer)
	if status != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("push delivery = %d %v, want 202 with one run", status, answer)
	}
	run := k.waitDone(t, ids[0])
	if run.Status != "Succeeded" {
		t.Fatalf("run %s = %s (%q)\n%s", run.ID, run.Status, run.Error, k.logOf(t, run.ID))
	}
	ref := reg + "/app:" + second
	if len(run.Images) != 1 || run.Images[0].Reference != ref {
		t.Fatalf("run %s images = %+v, want %s", run.ID, run.Images, ref)
	}
	if got, _ := imageFile(t, ref, "/version.txt"); got != "2\nbuilt-from-git\n" {
		t.Errorf("/version.txt in %s = %q: built something other than the pushed commit %s (branch head is %s)", ref, got, second, third)
	}
	if run.Trigger != "commit" || run.TaskName != "app" || run.Git == nil || run.Git.Commit != second ||
		run.Git.Ref != "refs/heads/main" || run.Git.DeliveryID != delivery || run.Git.Pusher == "" {
		t.Errorf("run %s trigger fields = %s %s %+v, want commit, app, %s on refs/heads/main from delivery %s", run.ID, run.Trigger, run.TaskName, run.Git, second, delivery)
	}

	t.Run("redelivery starts nothing", func(t *testing.T) {
		status, answer := k.deliver(t, "push", delivery, secret, githubPush(t, "github/push.branch.json", url, "main", first, second, []string{"version.txt"}))
		if status >= 300 || len(runsOf(answer)) != 0 {
			t.Errorf("redelivery = %d %v, want a 2xx and no run", status, answer)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		for _, s := range []string{"", "not the secret"} {
			status, answer := k.deliver(t, "push", guid(), s, githubPush(t, "github/push.branch.json", url, "main", second, third, nil))
			if status != http.StatusUnauthorized || len(runsOf(answer)) != 0 {
				t.Errorf("delivery signed with %q = %d %v, want 401 and no run", s, status, answer)
			}
		}
	})
	t.Run("branch deleted", func(t *testing.T) {
		body := githubPush(t, "github/push.delete.json", url, "main", third, strings.Repeat("0", 40), nil)
		status, answer := k.deliver(t, "push", guid(), secret, body)
		if status >= 300 || len(runsOf(answer)) != 0 {
			t.Errorf("branch deletion = %d %v, want a 2xx and no run", status, answer)
		}
	})
	t.Run("ping", func(t *testing.T) {
		b, _ := json.Marshal(payload(t, "github/ping.json"))
		if status, _ := k.deliver(t, "ping", guid(), secret, b); status != http.StatusOK {
			t.Errorf("ping = %d, want 200", status)
		}
	})
	runs, err := k.api.ListRuns(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := countTask(runs, "app"); n != 1 {
		t.Errorf("task app has %d runs after one good delivery and the rest, want 1", n)
	}
}

func countTask(runs []*api.Run, task string) int {
	n := 0
	for _, r := range runs {
		if r.TaskName == task {
			n++
		}
	}
	return n
}

// TestPathFilterAndLatestOnly: a push touching none of a task's path filters starts no run; five quick pushes
// queued behind a running build build only the newest, the others ending Canceled naming it.
func TestPathFilterAndLatestOnly(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 1 })
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	df := "FROM " + reg + "/base/busybox:1\nCOPY app/ /app/\nRUN cat /app/n.txt && echo " + nonce() + " && sleep 2\n"
	r := gittest.NewRepo(t)
	first := r.Commit(map[string]string{"Dockerfile": df, "app/n.txt": "0\n", "docs/README.md": "docs\n"})
	url := g.Publish(r, "team/svc.git", "main")
	const secret = "s3cret"
	if out, errOut, code := k.cli(t, "task", "create", "svc", "--context", url, "-t", "svc:{{.Run.ID}}",
		"--path-filter", "app/**", "--path-filter", "Dockerfile", "--webhook-secret-file", secretFile(t, secret)); code != 0 {
		t.Fatalf("kiln task create = exit %d\n%s%s", code, out, errOut)
	}

	docs := r.Commit(map[string]string{"docs/README.md": "more docs\n"})
	status, answer := k.deliver(t, "push", guid(), secret, githubPush(t, "github/push.branch.json", url, "main", first, docs, []string{"docs/README.md"}))
	if status >= 300 || len(runsOf(answer)) != 0 {
		t.Fatalf("push touching only docs/ = %d %v, want no run", status, answer)
	}

	var ids []string
	prev := docs
	for i := 1; i <= 5; i++ {
		sha := r.Commit(map[string]string{"app/n.txt": fmt.Sprintf("%d\n", i)})
		status, answer := k.deliver(t, "push", guid(), secret, githubPush(t, "github/push.branch.json", url, "main", prev, sha, []string{"app/n.txt"}))
		if got := runsOf(answer); status != http.StatusAccepted || len(got) != 1 {
			t.Fatalf("push %d = %d %v, want one run", i, status, answer)
		}
		ids = append(ids, runsOf(answer)[0])
		prev = sha
	}
	newest := ids[4]
	built := 0
	for i, id := range ids {
		r := k.waitDone(t, id)
		switch {
		case r.Status == "Succeeded":
			built++
		case r.Status == "Canceled" && r.SupersededBy != "" && strings.Contains(r.Error, r.SupersededBy):
		default:
			t.Errorf("push %d's run %s = %s (%q, superseded by %q), want Succeeded or Canceled naming its successor", i+1, id, r.Status, r.Error, r.SupersededBy)
		}
	}
	if r := k.waitDone(t, newest); r.Status != "Succeeded" {
		t.Errorf("newest run %s = %s, want Succeeded", newest, r.Status)
	}
	// The first push may have started before the others arrived; every push queued behind it but the newest
	// is superseded.
	if built > 2 {
		t.Errorf("%d of 5 quick pushes were built, want the one already running and the newest at most", built)
	}
}

// TestPrivateRepository: a task's git token reaches the private repository; without it the pushed commit's run
// fails with git's message in its log. The token shows in no log, record or task answer.
func TestPrivateRepository(t *testing.T) {
	k := startKiln(t)
	const token, secret = "ghp_test-token-never-shown", "hook-secret"
	g := gittest.NewServer(t, token)
	r := gittest.NewRepo(t)
	sha := r.Commit(map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"})
	url := g.Publish(r, "private/app.git", "main")

	tests := []struct {
		name       string
		token      string
		wantStatus string
		wantLog    string
	}{
		{"with its token", token, "Succeeded", ""},
		{"without a token", "", "Failed", "auth"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("private%d", i)
			args := []string{"task", "create", name, "--context", url + "#main", "-t", name + ":1", "--webhook-secret-file", secretFile(t, secret)}
			if tt.token != "" {
				args = append(args, "--git-token-file", secretFile(t, tt.token))
			}
			if out, errOut, code := k.cli(t, args...); code != 0 {
				t.Fatalf("kiln task create = exit %d\n%s%s", code, out, errOut)
			}
			status, answer := k.deliver(t, "push", guid(), secret, githubPush(t, "github/push.branch.json", url, "main", sha, sha, nil))
			ids := runsOf(answer)
			if status != http.StatusAccepted || len(ids) == 0 {
				t.Fatalf("push delivery = %d %v, want runs", status, answer)
			}
			for _, id := range ids {
				run := k.waitDone(t, id)
				if run.TaskName != name {
					continue
				}
				log := k.logOf(t, id)
				if run.Status != tt.wantStatus || !strings.Contains(strings.ToLower(log), tt.wantLog) {
					t.Errorf("run %s = %s (%q), want %s with %q in its log:\n%s", id, run.Status, run.Error, tt.wantStatus, tt.wantLog, log)
				}
				blob, _ := json.Marshal(run)
				if strings.Contains(log, token) || strings.Contains(string(blob), token) {
					t.Errorf("the token appears in run %s's log or record", id)
				}
			}
			taskJSON, _, _ := k.cli(t, "task", "show", name, "-o", "json")
			if strings.Contains(taskJSON, token) || strings.Contains(taskJSON, secret) {
				t.Errorf("a secret appears in kiln task show:\n%s", taskJSON)
			}
		})
	}

	t.Run("task run without a token", func(t *testing.T) {
		out, errOut, code := k.cli(t, "task", "run", "private1")
		if code == 0 || strings.Contains(out+errOut, token) {
			t.Errorf("kiln task run of a private repository without a token = exit %d:\n%s%s", code, out, errOut)
		}
	})
}
