package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// TestPublishedSignatureVector checks go-github's check against the vector GitHub publishes (testdata/README.md),
// and that sign, which the tests use, agrees with it.
func TestPublishedSignatureVector(t *testing.T) {
	const (
		key  = "It's a Secret to Everybody"
		body = "Hello, World!"
		want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	if got := sign(key, []byte(body)); got != want {
		t.Errorf("sign(%q, %q) = %s, want %s", key, body, got, want)
	}
	tests := []struct {
		name      string
		signature string
		key       string
		wantOK    bool
	}{
		{name: "published vector", signature: want, key: key, wantOK: true},
		{name: "wrong secret", signature: want, key: "another secret", wantOK: false},
		{name: "no signature, secret expected", signature: "", key: key, wantOK: false},
		// Why Kiln refuses tasks without a secret: with none expected, go-github takes any unsigned body.
		{name: "no signature, no secret", signature: "", key: "", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if tt.signature != "" {
				r.Header.Set(github.SHA256SignatureHeader, tt.signature)
			}
			payload, err := github.ValidatePayload(r, []byte(tt.key))
			if ok := err == nil; ok != tt.wantOK {
				t.Fatalf("ValidatePayload = %q, %v, want ok %t", payload, err, tt.wantOK)
			}
			if tt.wantOK && string(payload) != body {
				t.Errorf("ValidatePayload = %q, want %q", payload, body)
			}
		})
	}
}

func TestGitHubRefusesUnprovenDeliveries(t *testing.T) {
	body := payload(t, "github/push.branch.json", atRepo)
	sha1Sig := func() string {
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write(body)
		return "sha1=" + hex.EncodeToString(mac.Sum(nil))
	}()
	tests := []struct {
		name      string
		tasks     []*proto.Task
		signature string // the X-Hub-Signature-256 header; "" sends none
		header    []string
		want      int
		wantCode  proto.Code
	}{
		{name: "no signature", tasks: []*proto.Task{newTask("app", withRef("master"))}, want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "wrong secret", tasks: []*proto.Task{newTask("app", withRef("master"))}, signature: sign("not the secret", body), want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "signature of another body", tasks: []*proto.Task{newTask("app", withRef("master"))}, signature: sign(secret, append(bytes.Clone(body), ' ')), want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "SHA-1 in the SHA-256 header", tasks: []*proto.Task{newTask("app", withRef("master"))}, signature: sha1Sig, want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "only the SHA-1 header", tasks: []*proto.Task{newTask("app", withRef("master"))}, header: []string{"X-Hub-Signature", sha1Sig}, want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{name: "not hex", tasks: []*proto.Task{newTask("app", withRef("master"))}, signature: "sha256=zz", want: http.StatusUnauthorized, wantCode: proto.Unauthorized},
		{
			name:      "task without a secret, delivery without a signature",
			tasks:     []*proto.Task{newTask("app", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "" })},
			signature: "", want: http.StatusUnauthorized, wantCode: proto.Unauthorized,
		},
		{
			// Anyone can sign with the empty key.
			name:      "task without a secret, delivery signed with the empty key",
			tasks:     []*proto.Task{newTask("app", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "" })},
			signature: sign("", body), want: http.StatusUnauthorized, wantCode: proto.Unauthorized,
		},
		{
			name:      "no task builds the repository",
			tasks:     []*proto.Task{newTask("app", withRef("master"), func(t *proto.Task) { t.Source.Url = "https://git.kiln.test/team/other.git" })},
			signature: sign(secret, body), want: http.StatusAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, tt.tasks...)
			header := append([]string{"Content-Type", "application/json", "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"}, tt.header...)
			if tt.signature != "" {
				header = append(header, "X-Hub-Signature-256", tt.signature)
			}
			status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(body), header...)
			if status != tt.want {
				t.Fatalf("delivery = %d %+v, want %d", status, rep, tt.want)
			}
			if tt.wantCode != "" && (rep.Error == nil || rep.Error.Code != tt.wantCode) {
				t.Errorf("answer %+v, want an error of code %s", rep, tt.wantCode)
			}
			if status == http.StatusAccepted && !strings.Contains(rep.Ignored, "no task builds") {
				t.Errorf("answer %+v, want it to say no task builds the repository", rep)
			}
			if len(rep.Runs) != 0 {
				t.Errorf("delivery started runs %v, want none", rep.Runs)
			}
			e.queued(t, nil)
		})
	}
}

// TestGitHubSignatureChoosesTasks: a delivery counts for the tasks whose secret signed it, and for no other
// task of the same repository.
func TestGitHubSignatureChoosesTasks(t *testing.T) {
	tasks := []*proto.Task{
		newTask("a", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "secret a" }),
		newTask("b", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "secret b" }),
		newTask("b2", withRef("master"), func(t *proto.Task) { t.WebhookSecret = "secret b" }),
	}
	e := newEnv(t, webhook.Config{}, tasks...)
	body := payload(t, "github/push.branch.json", atRepo)
	status, rep := e.github(t, "push", "d1", "secret b", body)
	if status != http.StatusAccepted || len(rep.Runs) != 2 {
		t.Fatalf("delivery signed for b = %d %+v, want 202 with two runs", status, rep)
	}
	runs := e.queued(t, rep.Runs)
	for _, id := range rep.Runs {
		if name := runs[id].GetTaskName(); name != "b" && name != "b2" {
			t.Errorf("run %s belongs to task %s, whose secret did not sign the delivery", id, name)
		}
	}
}

// TestGitHubPingChecksTheSecret: a ping about a repository Kiln builds is checked like any delivery, so that a
// hook set up with the wrong secret shows it at once.
func TestGitHubPingChecksTheSecret(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app"))
	body := payload(t, "github/ping.json", atRepo)
	if status, rep := e.github(t, "ping", "d1", "not the secret", body); status != http.StatusUnauthorized {
		t.Errorf("ping signed with the wrong secret = %d %+v, want 401", status, rep)
	}
	if status, rep := e.github(t, "ping", "d2", secret, body); status != http.StatusOK || rep.Message == "" {
		t.Errorf("ping = %d %+v, want 200 with a message", status, rep)
	}
}

// giteaSign returns the signature Gitea and Forgejo put in X-Gitea-Signature, X-Gogs-Signature and
// X-Forgejo-Signature: the bare hex HMAC-SHA256 of the JSON payload under key, whatever the content type
// (services/webhook/deliver.go: hmac.New(sha256.New, secret) over t.PayloadContent).
func giteaSign(key string, payload []byte) string {
	return strings.TrimPrefix(sign(key, payload), "sha256=")
}

// giteaDelivery returns Gitea's request for payload under key: its headers, with X-Hub-Signature-256 and the
// bare signatures over the payload as Gitea writes them, and its body, the payload itself or, for a form
// hook, payload=<the payload>. only names the one signature header an older sender sends; "" sends all.
func giteaDelivery(payload []byte, key string, form bool, only string) (body []byte, header []string) {
	body, contentType := payload, "application/json"
	if form {
		body, contentType = []byte(url.Values{"payload": {string(payload)}}.Encode()), "application/x-www-form-urlencoded"
	}
	header = []string{"Content-Type", contentType, "X-GitHub-Event", "push", "X-Gitea-Event", "push",
		"X-GitHub-Delivery", "g1", "X-Gitea-Delivery", "g1"}
	sigs := map[string]string{
		"X-Hub-Signature-256": "sha256=" + giteaSign(key, payload),
		"X-Gitea-Signature":   giteaSign(key, payload),
		"X-Gogs-Signature":    giteaSign(key, payload),
		"X-Forgejo-Signature": giteaSign(key, payload),
	}
	for name, v := range sigs {
		if only == "" || only == name {
			header = append(header, name, v)
		}
	}
	return body, header
}

// gitea delivers payload as a Gitea JSON hook does, signed under key in header only ("" for all of them).
func (e *testEnv) gitea(t *testing.T, payload []byte, key, only string) (int, reply) {
	t.Helper()
	body, header := giteaDelivery(payload, key, false, only)
	return e.post(t, "/v1/webhooks/github", bytes.NewReader(body), header...)
}

// TestGiteaSignatures: Gitea and Forgejo sign the JSON payload, also when they send it as a form, and older
// Gitea and Gogs send only their own bare-hex header; each of these builds, and the same with the wrong
// secret is refused.
func TestGiteaSignatures(t *testing.T) {
	payload := payload(t, "gitea/push.json", atRepo)
	tests := []struct {
		name string
		form bool
		only string
	}{
		{name: "JSON, every header"},
		{name: "form, every header", form: true},
		{name: "form, X-Hub-Signature-256 only", form: true, only: "X-Hub-Signature-256"},
		{name: "JSON, X-Gitea-Signature only", only: "X-Gitea-Signature"},
		{name: "form, X-Gitea-Signature only", form: true, only: "X-Gitea-Signature"},
		{name: "JSON, X-Gogs-Signature only", only: "X-Gogs-Signature"},
		{name: "form, X-Forgejo-Signature only", form: true, only: "X-Forgejo-Signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, webhook.Config{}, newTask("app"))
			body, header := giteaDelivery(payload, "not the secret", tt.form, tt.only)
			if status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(body), header...); status != http.StatusUnauthorized {
				t.Errorf("delivery under the wrong secret = %d %+v, want 401", status, rep)
			}
			body, header = giteaDelivery(payload, secret, tt.form, tt.only)
			status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(body), header...)
			if status != http.StatusAccepted || len(rep.Runs) != 1 {
				t.Fatalf("delivery = %d %+v, want 202 with one run", status, rep)
			}
			runs := e.queued(t, rep.Runs)
			if got := runs[rep.Runs[0]].GetGit().GetCommit(); got != giteaAfter {
				t.Errorf("run commit = %s, want %s", got, giteaAfter)
			}
		})
	}
}

// TestGitHubFormSignatureIsOverTheRawBody: GitHub signs a form delivery's raw body; the same signature over
// a body that decodes to the same payload but is written differently is refused, as is a bare signature of
// the raw form (bare signatures are over the payload).
func TestGitHubFormSignatureIsOverTheRawBody(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	p := payload(t, "github/push.branch.json", atRepo)
	form := []byte(url.Values{"payload": {string(p)}}.Encode())
	other := append([]byte("other=1&"), form...) // the same payload field, another raw body
	header := []string{"Content-Type", "application/x-www-form-urlencoded", "X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"}
	if status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(other), append(header, "X-Hub-Signature-256", sign(secret, form))...); status != http.StatusUnauthorized {
		t.Errorf("raw signature of another form = %d %+v, want 401", status, rep)
	}
	if status, rep := e.post(t, "/v1/webhooks/github", bytes.NewReader(form), append(header, "X-Gitea-Signature", giteaSign(secret, form))...); status != http.StatusUnauthorized {
		t.Errorf("bare signature of the raw form = %d %+v, want 401", status, rep)
	}
	e.queued(t, nil)
}

// TestUnprovenAnswersTheSameForKnownAndUnknownRepositories: a delivery that is unsigned, or signed with a
// secret no task has, gets the same answer whether some task builds its repository or not, so that it
// cannot tell which repositories Kiln builds.
func TestUnprovenAnswersTheSameForKnownAndUnknownRepositories(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	known := payload(t, "github/push.branch.json", atRepo)
	unknown := payload(t, "github/push.branch.json") // names the repository of the sample, which no task builds
	gitlabKnown := payload(t, "gitlab/push.json", atGitLabProject)
	gitlabUnknown := payload(t, "gitlab/push.json")
	tests := []struct {
		name           string
		known, unknown func() (int, reply)
	}{
		{
			name:    "github, unsigned",
			known:   func() (int, reply) { return e.github(t, "push", "u1", "", known) },
			unknown: func() (int, reply) { return e.github(t, "push", "u2", "", unknown) },
		},
		{
			name:    "github, signed with another secret",
			known:   func() (int, reply) { return e.github(t, "push", "w1", "not the secret", known) },
			unknown: func() (int, reply) { return e.github(t, "push", "w2", "not the secret", unknown) },
		},
		{
			name:    "gitea, bare signature of another secret",
			known:   func() (int, reply) { return e.gitea(t, known, "not the secret", "X-Gitea-Signature") },
			unknown: func() (int, reply) { return e.gitea(t, unknown, "not the secret", "X-Gitea-Signature") },
		},
		{
			name:    "gitlab, no token",
			known:   func() (int, reply) { return e.gitlab(t, "Push Hook", "", "", gitlabKnown) },
			unknown: func() (int, reply) { return e.gitlab(t, "Push Hook", "", "", gitlabUnknown) },
		},
		{
			name:    "gitlab, another token",
			known:   func() (int, reply) { return e.gitlab(t, "Push Hook", "", "not the secret", gitlabKnown) },
			unknown: func() (int, reply) { return e.gitlab(t, "Push Hook", "", "not the secret", gitlabUnknown) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, kr := tt.known()
			us, ur := tt.unknown()
			if ks != http.StatusUnauthorized || us != ks || kr.Error == nil || ur.Error == nil || kr.Error.Message != ur.Error.Message {
				t.Errorf("known repository = %d %+v, unknown = %d %+v, want the same 401", ks, kr, us, ur)
			}
		})
	}
	e.queued(t, nil)
}
