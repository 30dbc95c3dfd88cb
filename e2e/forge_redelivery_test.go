package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/trigger/gittest"
)

// TestGitLabResendBuildsOnce: a GitLab push hook, from the real payload with only the project and commits
// rewritten, builds the pushed commit once through a real kiln; GitLab's "Resend Request" (the same
// Idempotency-Key, a new X-Gitlab-Event-UUID) and a replay of the body with no key start nothing more. A merge
// request opened builds its head from refs/merge-requests/1/head, once however often it is delivered.
func TestGitLabResendBuildsOnce(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	df := "FROM " + reg + "/base/busybox:1\nCOPY v.txt /v.txt\n"
	const secret = "gitlab-resend-secret"

	t.Run("push resent", func(t *testing.T) {
		r := gittest.NewRepo(t)
		first := r.Commit(map[string]string{"Dockerfile": df, "v.txt": "resend-1\n"})
		url := g.Publish(r, "gitlab/resend.git", "main")
		createTask(t, k, "gitlab-resend", url+"#main", secret)
		second := r.Commit(map[string]string{"v.txt": "resend-2\n"})
		p := payload(t, "gitlab/push.json")
		p["ref"], p["before"], p["after"], p["checkout_sha"] = "refs/heads/main", first, second, second
		atGitLabRepo(p, url)
		for _, c := range p["commits"].([]any) {
			c.(map[string]any)["id"] = second
		}
		body, _ := json.Marshal(p)

		key := guid()
		status, answer := gitlabSend(t, k, "Push Hook", body, "Idempotency-Key", key, "X-Gitlab-Event-UUID", guid())
		expectBuilt(t, k, status, answer, reg+"/gitlab-resend:"+second, "resend-2\n")

		for _, header := range [][]string{
			{"Idempotency-Key", key, "X-Gitlab-Event-UUID", guid()}, // Resend Request
			{"X-Gitlab-Event-UUID", guid()},                         // the body replayed, by an older GitLab or anyone
		} {
			status, answer := gitlabSend(t, k, "Push Hook", body, header...)
			ignored, _ := answer["ignored"].(string)
			if status != http.StatusOK || len(runsOf(answer)) != 0 || !strings.Contains(ignored, "already handled") {
				t.Errorf("delivery again with %v = %d %v, want 200 ignored as already handled", header, status, answer)
			}
		}
		runs, err := k.api.ListRuns(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := countTask(runs, "gitlab-resend"); n != 1 {
			t.Errorf("task gitlab-resend has %d runs after one push delivered three times, want 1", n)
		}
	})

	t.Run("merge request", func(t *testing.T) {
		r := gittest.NewRepo(t)
		r.Commit(map[string]string{"Dockerfile": df, "v.txt": "main\n"})
		url := g.Publish(r, "gitlab/mr.git", "main")
		if out, errOut, code := k.cli(t, "task", "create", "gitlab-mr", "--context", url+"#main", "-t", "gitlab-mr:{{.Run.Commit}}",
			"--commit-trigger=false", "--pr-trigger", "--push-pull-requests", "--webhook-secret-file", secretFile(t, secret)); code != 0 {
			t.Fatalf("kiln task create = exit %d\n%s%s", code, out, errOut)
		}
		// GitLab keeps a merge request's head under refs/merge-requests/IID/head of the target project.
		r.Git("checkout", "--quiet", "-b", "feature")
		head := r.Commit(map[string]string{"v.txt": "feature\n"})
		r.Git("update-ref", "refs/merge-requests/1/head", head)
		r.Git("checkout", "--quiet", "main")
		r.Commit(map[string]string{"other.txt": "main moves on\n"}) // publishes the merge request's ref too

		p := payload(t, "gitlab/merge_request.open.json")
		atGitLabRepo(p, url)
		attrs := p["object_attributes"].(map[string]any)
		attrs["target_branch"], attrs["source_branch"] = "main", "feature"
		attrs["last_commit"].(map[string]any)["id"] = head
		body, _ := json.Marshal(p)

		status, answer := gitlabSend(t, k, "Merge Request Hook", body, "Idempotency-Key", guid(), "X-Gitlab-Event-UUID", guid())
		expectBuilt(t, k, status, answer, reg+"/gitlab-mr:"+head, "feature\n")
		run := k.waitDone(t, runsOf(answer)[0])
		if run.Trigger != "pull_request" || run.Git == nil || run.Git.Ref != "refs/merge-requests/1/head" || run.Git.PullRequest != 1 {
			t.Errorf("run %s = trigger %s, git %+v, want pull_request of refs/merge-requests/1/head, number 1", run.ID, run.Trigger, run.Git)
		}
		status, answer = gitlabSend(t, k, "Merge Request Hook", body, "Idempotency-Key", guid(), "X-Gitlab-Event-UUID", guid())
		if status != http.StatusOK || len(runsOf(answer)) != 0 {
			t.Errorf("the merge request opened, delivered again = %d %v, want 200 and no run", status, answer)
		}
	})
}

// atGitLabRepo points a GitLab payload's project (and repository, and a merge request's target) at url, whose
// default branch is main.
func atGitLabRepo(p map[string]any, url string) {
	parts := []any{p["project"], p["repository"]}
	if attrs, ok := p["object_attributes"].(map[string]any); ok {
		parts = append(parts, attrs["target"])
	}
	for _, v := range parts {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		for _, f := range []string{"git_http_url", "url", "http_url"} {
			if _, ok := m[f]; ok {
				m[f] = url
			}
		}
		for _, f := range []string{"web_url", "homepage"} {
			if _, ok := m[f]; ok {
				m[f] = strings.TrimSuffix(url, ".git")
			}
		}
		if _, ok := m["default_branch"]; ok {
			m["default_branch"] = "main"
		}
	}
}

// gitlabSend POSTs body to the GitLab webhook endpoint as GitLab does, with event, the token and header (name,
// value pairs), and returns the status and the decoded answer.
func gitlabSend(t *testing.T, k *kiln, event string, body []byte, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, k.APIURL()+"/v1/webhooks/gitlab", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", "gitlab-resend-secret")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("delivering %s: %v", event, err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}
