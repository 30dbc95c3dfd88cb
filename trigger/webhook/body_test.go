package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// TestGitHubFormBody: GitHub's other content type carries the JSON in a "payload" field, and signs the raw form
// body.
func TestGitHubFormBody(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	form := []byte(url.Values{"payload": {string(payload(t, "github/push.branch.json", atRepo))}}.Encode())
	status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(form),
		"Content-Type", "application/x-www-form-urlencoded", "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1",
		"X-Hub-Signature-256", sign(secret, form))
	if status != http.StatusAccepted || len(rep.Runs) != 1 {
		t.Fatalf("form delivery = %d %+v, want 202 with one run", status, rep)
	}
	runs := e.queued(t, rep.Runs)
	if got := runs[rep.Runs[0]].GetGit().GetCommit(); got != branchAfter {
		t.Errorf("run commit = %s, want %s", got, branchAfter)
	}
}

func TestGitHubRefusesBadBodies(t *testing.T) {
	good := payload(t, "github/push.branch.json", atRepo)
	form := []byte(url.Values{"other": {string(good)}}.Encode())
	malformed := good[:len(good)/2]
	tests := []struct {
		name     string
		body     []byte
		header   []string
		want     int
		wantCode proto.Code
	}{
		{name: "malformed JSON", body: malformed, header: []string{"X-Hub-Signature-256", sign(secret, malformed)},
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "a JSON array", body: []byte(`[1,2]`), header: []string{"X-Hub-Signature-256", sign(secret, []byte(`[1,2]`))},
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "no event header", body: good, header: []string{"X-GitHub-Event", "", "X-Hub-Signature-256", sign(secret, good)},
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "not JSON nor a form", body: good, header: []string{"Content-Type", "text/plain", "X-Hub-Signature-256", sign(secret, good)},
			want: http.StatusBadRequest, wantCode: proto.Invalid},
		{name: "form without payload", body: form, header: []string{"Content-Type", "application/x-www-form-urlencoded", "X-Hub-Signature-256", sign(secret, form)},
			want: http.StatusBadRequest, wantCode: proto.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
			header := append([]string{"Content-Type", "application/json", "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"}, tt.header...)
			status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(tt.body), header...)
			if status != tt.want || rep.Error == nil || rep.Error.Code != tt.wantCode {
				t.Errorf("delivery = %d %+v, want %d with code %s", status, rep, tt.want, tt.wantCode)
			}
			e.queued(t, nil)
		})
	}
}

// TestBodyOverLimit: a body over 25 MB, GitHub's own cap, is refused whether it says its length or not.
func TestBodyOverLimit(t *testing.T) {
	const limit = 25 << 20
	big := payload(t, "github/push.branch.json", atRepo, set("padding", strings.Repeat("x", limit)))
	tests := []struct {
		name    string
		path    string
		chunked bool
	}{
		{name: "github with Content-Length", path: "/v1/webhooks/github"},
		{name: "github chunked", path: "/v1/webhooks/github", chunked: true},
		{name: "gitlab chunked", path: "/v1/webhooks/gitlab", chunked: true},
	}
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(big)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: the request goes chunked
			}
			status, rep := e.post(t, tt.path, body, "Content-Type", "application/json", "X-GitHub-Event", "push",
				"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret, "X-Hub-Signature-256", sign(secret, big))
			if status != http.StatusRequestEntityTooLarge || rep.Error == nil || rep.Error.Code != proto.TooLarge {
				t.Errorf("body of %d bytes = %d %+v, want 413", len(big), status, rep)
			}
		})
	}
	e.queued(t, nil)

	t.Run("a smaller limit", func(t *testing.T) {
		body := payload(t, "github/push.branch.json", atRepo)
		e := newEnv(t, webhook.Config{MaxBody: int64(len(body))}, newTask("app", withRef("master")))
		if status, rep := e.github(t, "push", "d1", secret, body); status != http.StatusAccepted {
			t.Errorf("body of exactly the limit = %d %+v, want 202", status, rep)
		}
		e2 := newEnv(t, webhook.Config{MaxBody: int64(len(body)) - 1}, newTask("app", withRef("master")))
		if status, rep := e2.github(t, "push", "d1", secret, body); status != http.StatusRequestEntityTooLarge {
			t.Errorf("body one byte over the limit = %d %+v, want 413", status, rep)
		}
	})
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, webhook.Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{method: http.MethodGet, path: "/v1/webhooks/github", want: http.StatusMethodNotAllowed},
		{method: http.MethodPut, path: "/v1/webhooks/gitlab", want: http.StatusMethodNotAllowed},
		{method: http.MethodPost, path: "/v1/webhooks/bitbucket", want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, e.url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
}
