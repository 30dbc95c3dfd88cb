package github

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

const (
	testToken  = "ghp_S3cr3tT0kenThatMustNotLeak"
	testSecret = "whsec-4b1d"
	publicURL  = "https://kiln.example.com"
)

// hookBody is the JSON body GitHub must receive for a task's webhook.
func hookBody() map[string]any {
	return map[string]any{
		"name":   "web",
		"active": true,
		"events": []any{"push", "pull_request"},
		"config": map[string]any{
			"url":          publicURL + "/v1/webhooks/github",
			"content_type": "json",
			"secret":       testSecret,
			"insecure_ssl": "0",
		},
	}
}

func task(url string) *proto.Task {
	return &proto.Task{Name: "web", Source: &proto.GitContext{Url: url}, GitToken: testToken, WebhookSecret: testSecret}
}

func TestRegisterAndUnregister(t *testing.T) {
	for _, tc := range []struct {
		name   string
		apiURL string
		url    string
		prefix string // what GitHub's paths start with before /repos
	}{
		{"github.com", "", "https://github.com/acme/app.git", ""},
		{"github.com without .git", "", "https://github.com/acme/app", ""},
		{"github.com with the API URL given", "https://api.github.com/", "https://GitHub.com/acme/app.git", ""},
		{"enterprise", "https://ghe.example.com/api/v3/", "https://ghe.example.com/acme/app.git", "/api/v3"},
		{"enterprise API URL without /api/v3", "https://ghe.example.com", "https://ghe.example.com/acme/app/", "/api/v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			h := NewHooks(Config{APIURL: tc.apiURL, PublicURL: publicURL + "/", HTTPClient: gh.client()})
			tk := task(tc.url)

			id, err := h.Register(t.Context(), tk)
			if err != nil || id != fakeHookID {
				t.Fatalf("Register = %d, %v, want %d, nil", id, err, fakeHookID)
			}
			tk.GithubHookId = id
			if err := h.Unregister(t.Context(), tk); err != nil {
				t.Fatalf("Unregister = %v, want nil", err)
			}
			checkRequests(t, gh.requests(), []request{
				{Method: "POST", Path: tc.prefix + "/repos/acme/app/hooks", Auth: "Bearer " + testToken, Body: hookBody()},
				{Method: "DELETE", Path: fmt.Sprintf("%s/repos/acme/app/hooks/%d", tc.prefix, fakeHookID), Auth: "Bearer " + testToken},
			})
		})
	}
}

func TestRegisterNothingToDo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		apiURL    string
		publicURL string
		task      func(*proto.Task)
	}{
		{"no token", "", publicURL, func(t *proto.Task) { t.GitToken = "" }},
		{"no webhook secret", "", publicURL, func(t *proto.Task) { t.WebhookSecret = "" }},
		{"no public URL", "", "", func(*proto.Task) {}},
		{"not a GitHub repository", "", publicURL, func(t *proto.Task) { t.Source.Url = "https://gitlab.com/acme/app.git" }},
		{"github.com with an Enterprise API", "https://ghe.example.com/api/v3/", publicURL, func(*proto.Task) {}},
		{"an scp-like URL", "", publicURL, func(t *proto.Task) { t.Source.Url = "git@github.com:acme/app.git" }},
		{"no source", "", publicURL, func(t *proto.Task) { t.Source = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			h := NewHooks(Config{APIURL: tc.apiURL, PublicURL: tc.publicURL, HTTPClient: gh.client()})
			tk := task("https://github.com/acme/app.git")
			tc.task(tk)

			if id, err := h.Register(t.Context(), tk); id != 0 || err != nil {
				t.Errorf("Register = %d, %v, want 0, nil", id, err)
			}
			tk.GithubHookId = 0
			if err := h.Unregister(t.Context(), tk); err != nil {
				t.Errorf("Unregister of a task without a hook = %v, want nil", err)
			}
			checkRequests(t, gh.requests(), nil)
		})
	}
}

func TestHookErrors(t *testing.T) {
	hooks, hook := "POST /repos/acme/app/hooks", fmt.Sprintf("DELETE /repos/acme/app/hooks/%d", fakeHookID)
	for _, tc := range []struct {
		name     string
		url      string
		token    string
		endpoint string // the endpoint scripted to answer status
		status   int
		delete   bool // Unregister rather than Register
		want     proto.Code
		wantMsg  string
		calls    int
	}{
		{"create refused token", "https://github.com/acme/app.git", testToken, hooks, http.StatusUnauthorized, false, proto.Invalid, "GitHub refused the token: creating a webhook on acme/app for task web: 401 Bad credentials", 1},
		{"create forbidden", "https://github.com/acme/app.git", testToken, hooks, http.StatusForbidden, false, proto.Invalid, "GitHub refused the token", 1},
		{"create no repository", "https://github.com/acme/app.git", testToken, hooks, http.StatusNotFound, false, proto.Invalid, "GitHub has no repository acme/app", 1},
		{"create hook exists", "https://github.com/acme/app.git", testToken, hooks, http.StatusUnprocessableEntity, false, proto.Invalid, "Hook already exists on this repository", 1},
		{"create server error", "https://github.com/acme/app.git", testToken, hooks, http.StatusInternalServerError, false, proto.Unavailable, "GitHub answered 500 Server Error", 1},
		{"create bad gateway", "https://github.com/acme/app.git", testToken, hooks, http.StatusBadGateway, false, proto.Unavailable, "GitHub answered 502", 1},
		{"create rate limited", "https://github.com/acme/app.git", testToken, hooks, rateLimited, false, proto.Unavailable, "the token's GitHub rate limit is spent until", 1},
		{"create too many requests", "https://github.com/acme/app.git", testToken, hooks, http.StatusTooManyRequests, false, proto.Unavailable, "GitHub answered 429 Too Many Requests", 1},
		{"create no repository in the URL", "https://github.com/acme", testToken, "", 0, false, proto.Invalid, "names no repository", 0},
		{"delete refused token", "https://github.com/acme/app.git", testToken, hook, http.StatusUnauthorized, true, proto.Invalid, "GitHub refused the token: deleting webhook 4242 on acme/app", 1},
		{"delete already gone", "https://github.com/acme/app.git", testToken, hook, http.StatusNotFound, true, "", "", 1},
		{"delete server error", "https://github.com/acme/app.git", testToken, hook, http.StatusInternalServerError, true, proto.Unavailable, "GitHub answered 500", 1},
		{"delete without a token", "https://github.com/acme/app.git", "", "", 0, true, proto.Invalid, "delete the webhook on GitHub by hand", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh := newFakeGitHub(t)
			if tc.endpoint != "" {
				gh.script(tc.endpoint, tc.status)
			}
			h := NewHooks(Config{PublicURL: publicURL, HTTPClient: gh.client()})
			tk := task(tc.url)
			tk.GitToken = tc.token

			var err error
			if tc.delete {
				tk.GithubHookId = fakeHookID
				err = h.Unregister(t.Context(), tk)
			} else {
				var id int64
				id, err = h.Register(t.Context(), tk)
				if id != 0 {
					t.Errorf("Register = %d, want 0 with the error", id)
				}
			}
			if got := proto.ErrorCode(err); got != tc.want {
				t.Fatalf("error = %v (kind %q), want kind %q", err, got, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", err, tc.wantMsg)
			}
			checkNoToken(t, err)
			if got := len(gh.requests()); got != tc.calls {
				t.Errorf("GitHub received %d requests, want %d: %v", got, tc.calls, gh.requests())
			}
		})
	}
}

func TestHooksGitHubDown(t *testing.T) {
	gh := newFakeGitHub(t)
	client := gh.client()
	gh.srv.Close()
	h := NewHooks(Config{PublicURL: publicURL, HTTPClient: client})
	tk := task("https://github.com/acme/app.git")

	_, err := h.Register(t.Context(), tk)
	if got := proto.ErrorCode(err); got != proto.Unavailable || !strings.Contains(err.Error(), "GitHub did not answer") {
		t.Errorf("Register with GitHub down = %v (kind %q), want proto.Unavailable, GitHub did not answer", err, got)
	}
	checkNoToken(t, err)
	tk.GithubHookId = fakeHookID
	if err := h.Unregister(t.Context(), tk); proto.ErrorCode(err) != proto.Unavailable {
		t.Errorf("Unregister with GitHub down = %v, want proto.Unavailable", err)
	}
}

func TestHooksBadAPIURL(t *testing.T) {
	h := NewHooks(Config{APIURL: "ftp://ghe.example.com", PublicURL: publicURL})
	if _, err := h.Register(t.Context(), task("https://github.com/acme/app.git")); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Register with an ftp API URL = %v, want proto.Invalid", err)
	}
}

// checkNoToken fails the test if err, however it is printed, contains the test's token.
func checkNoToken(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(format, err); strings.Contains(s, testToken) {
			t.Errorf("error printed with %s contains the token: %s", format, s)
		}
	}
}
