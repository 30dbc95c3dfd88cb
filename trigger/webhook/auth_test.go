package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
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
