package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// TestGiteaAndGitLabPush: Gitea's push (GitHub headers, Gitea-shaped body) and GitLab's push hook, from the real
// payloads with only the repository and commits rewritten, build exactly the pushed commit.
func TestGiteaAndGitLabPush(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	df := "FROM " + reg + "/base/busybox:1\nCOPY v.txt /v.txt\n"
	const secret = "forge-secret"

	t.Run("gitea", func(t *testing.T) {
		r := gittest.NewRepo(t)
		first := r.Commit(map[string]string{"Dockerfile": df, "v.txt": "gitea-1\n"})
		url := g.Publish(r, "gitea/app.git", "main")
		createTask(t, k, "gitea-app", url+"#main", secret)
		second := r.Commit(map[string]string{"v.txt": "gitea-2\n"})
		p := payload(t, "gitea/push.json")
		p["ref"], p["before"], p["after"] = "refs/heads/main", first, second
		repo := p["repository"].(map[string]any)
		repo["clone_url"], repo["html_url"] = url, strings.TrimSuffix(url, ".git")
		for _, c := range p["commits"].([]any) {
			c.(map[string]any)["id"] = second
		}
		body, _ := json.Marshal(p)
		status, answer := k.deliver(t, "push", guid(), secret, body)
		expectBuilt(t, k, status, answer, reg+"/gitea-app:"+second, "gitea-2\n")
	})

	t.Run("gitlab", func(t *testing.T) {
		r := gittest.NewRepo(t)
		first := r.Commit(map[string]string{"Dockerfile": df, "v.txt": "gitlab-1\n"})
		url := g.Publish(r, "gitlab/app.git", "main")
		createTask(t, k, "gitlab-app", url+"#main", secret)
		second := r.Commit(map[string]string{"v.txt": "gitlab-2\n"})
		p := payload(t, "gitlab/push.json")
		p["ref"], p["before"], p["after"], p["checkout_sha"] = "refs/heads/main", first, second, second
		for _, key := range []string{"project", "repository"} {
			if m, ok := p[key].(map[string]any); ok {
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
				m["default_branch"] = "main"
			}
		}
		for _, c := range p["commits"].([]any) {
			c.(map[string]any)["id"] = second
		}
		body, _ := json.Marshal(p)
		for _, token := range []string{"wrong", ""} {
			if status, _ := gitlabDeliver(t, k, token, body); status != http.StatusUnauthorized {
				t.Errorf("GitLab push with token %q = %d, want 401", token, status)
			}
		}
		status, answer := gitlabDeliver(t, k, secret, body)
		expectBuilt(t, k, status, answer, reg+"/gitlab-app:"+second, "gitlab-2\n")
	})
}

func createTask(t *testing.T, k *kiln, name, context, secret string) {
	t.Helper()
	out, errOut, code := k.cli(t, "task", "create", name, "--context", context, "-t", name+":{{.Run.Commit}}",
		"--webhook-secret-file", secretFile(t, secret))
	if code != 0 {
		t.Fatalf("kiln task create %s = exit %d\n%s%s", name, code, out, errOut)
	}
}

func gitlabDeliver(t *testing.T, k *kiln, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, k.APIURL()+"/v1/webhooks/gitlab", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

// expectBuilt checks a delivery started one run that pushed ref holding /v.txt = content.
func expectBuilt(t *testing.T, k *kiln, status int, answer map[string]any, ref, content string) {
	t.Helper()
	ids := runsOf(answer)
	if status != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("delivery = %d %v, want 202 and one run", status, answer)
	}
	r := k.waitDone(t, ids[0])
	if r.Status != "Succeeded" || len(r.Images) != 1 || r.Images[0].Reference != ref {
		t.Fatalf("run %s = %s %q images %+v, want Succeeded pushing %s\n%s", r.ID, r.Status, r.Error, r.Images, ref, k.logOf(t, r.ID))
	}
	if got, _ := imageFile(t, ref, "/v.txt"); got != content {
		t.Errorf("/v.txt in %s = %q, want %q", ref, got, content)
	}
}

// fakeGitHub plays GitHub Enterprise's REST API for the endpoints Kiln uses, recording each request; it is the
// one fake the tests allow, since GitHub cannot be reached from here.
type fakeGitHub struct {
	mu   sync.Mutex
	reqs []ghRequest
}

type ghRequest struct {
	Method, Path, Auth string
	Body               map[string]any
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.reqs = append(f.reqs, ghRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), body})
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/hooks"):
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id": 4242, "active": true}`))
	case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/hooks/4242"):
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/statuses/"):
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id": 1}`))
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

func (f *fakeGitHub) requests() []ghRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ghRequest(nil), f.reqs...)
}

// TestGitHubIntegration: with --public-url and --github-api-url, a task with a token registers its webhook on
// the repository, a push's run reports pending then success on the commit, and deleting the task removes the
// webhook. One server plays the GitHub Enterprise host: its REST API (faked) under /api/v3/, its repositories
// (real, git http-backend) elsewhere.
func TestGitHubIntegration(t *testing.T) {
	fake := &fakeGitHub{}
	g := gittest.NewServer(t, "")
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			fake.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, g.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(host.Close)
	const public = "https://kiln.example.com"
	k := startKiln(t, func(c *serve.Config) { c.PublicURL = public; c.GitHubAPIURL = host.URL + "/api/v3/" })

	r := gittest.NewRepo(t)
	sha := r.Commit(map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"})
	g.Publish(r, "acme/web.git", "main")
	repoURL := host.URL + "/acme/web.git"
	const token, secret = "ghp_integration", "integration-secret"
	if out, errOut, code := k.cli(t, "task", "create", "web", "--context", repoURL+"#main", "-t", "web:{{.Run.Commit}}",
		"--git-token-file", secretFile(t, token), "--webhook-secret-file", secretFile(t, secret)); code != 0 {
		t.Fatalf("kiln task create = exit %d\n%s%s", code, out, errOut)
	}
	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/api/v3/repos/acme/web/hooks" || reqs[0].Auth != "Bearer "+token {
		t.Fatalf("GitHub saw %+v, want one POST /api/v3/repos/acme/web/hooks with the task's token", reqs)
	}
	cfg, _ := reqs[0].Body["config"].(map[string]any)
	if cfg["url"] != public+"/v1/webhooks/github" || cfg["secret"] != secret || cfg["content_type"] != "json" {
		t.Errorf("hook config = %v, want url %s/v1/webhooks/github, the secret, json", cfg, public)
	}

	status, answer := k.deliver(t, "push", guid(), secret, githubPush(t, "github/push.branch.json", repoURL, "main", sha, sha, nil))
	ids := runsOf(answer)
	if status != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("push delivery = %d %v, want one run", status, answer)
	}
	if run := k.waitDone(t, ids[0]); run.Status != "Succeeded" {
		t.Fatalf("run %s = %s %q\n%s", run.ID, run.Status, run.Error, k.logOf(t, run.ID))
	}
	var states []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		states = states[:0]
		for _, q := range fake.requests() {
			if q.Method == http.MethodPost && q.Path == "/api/v3/repos/acme/web/statuses/"+sha {
				states = append(states, q.Body["state"].(string))
				if q.Auth != "Bearer "+token || q.Body["context"] != "kiln/web" || q.Body["target_url"] != public+"/v1/runs/"+ids[0]+"/log" {
					t.Errorf("status request = %+v, want the token, context kiln/web and the run's log link", q)
				}
			}
		}
		if len(states) > 0 && states[len(states)-1] == "success" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(states) < 2 || states[0] != "pending" || states[len(states)-1] != "success" {
		t.Errorf("commit statuses = %v, want pending then success", states)
	}

	if out, errOut, code := k.cli(t, "task", "delete", "web"); code != 0 {
		t.Fatalf("kiln task delete = exit %d\n%s%s", code, out, errOut)
	}
	last := fake.requests()[len(fake.requests())-1]
	if last.Method != http.MethodDelete || last.Path != "/api/v3/repos/acme/web/hooks/4242" {
		t.Errorf("after kiln task delete GitHub last saw %s %s, want DELETE /api/v3/repos/acme/web/hooks/4242", last.Method, last.Path)
	}
}
