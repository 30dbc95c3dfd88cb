package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/queue"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// The repository every test task builds, and the secret its webhooks are signed with.
const (
	repoURL = "https://git.kiln.test/team/app.git"
	secret  = "It's a Secret to Everybody"
	// registry is the default registry tags are qualified with.
	registry = "registry.kiln.test"
)

// testEnv is a Handler on a real in-process NATS server with JetStream, the real store and a real queue,
// served over HTTP.
type testEnv struct {
	url string
	st  *store.Store
	js  jetstream.JetStream
}

// newEnv starts NATS, opens the store, creates tasks and serves a Handler made with cfg. All of it stops when
// the test ends.
func newEnv(t *testing.T, cfg webhook.Config, tasks ...*proto.Task) *testEnv {
	t.Helper()
	env := storetest.New(t)
	js, st := env.JS, env.Store
	for _, task := range tasks {
		if err := st.CreateTask(t.Context(), task); err != nil {
			t.Fatalf("CreateTask(%s): %v", task.GetName(), err)
		}
	}
	if cfg.DefaultRegistry == "" {
		cfg.DefaultRegistry = registry
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	hs := httptest.NewServer(webhook.NewHandler(cfg, st, queue.New(st, js, logger), logger))
	t.Cleanup(hs.Close)
	return &testEnv{url: hs.URL, st: st, js: js}
}

// newTask returns a task named name that builds branch main of repoURL on pushes, with the test's webhook
// secret, changed by each of mods.
func newTask(name string, mods ...func(*proto.Task)) *proto.Task {
	t := &proto.Task{
		Name:          name,
		Source:        &proto.GitContext{Url: repoURL, Ref: "main", Subdir: "svc"},
		Dockerfile:    "build/Dockerfile",
		Tags:          []string{"team/" + name + ":{{.Run.Branch}}-{{.Run.Commit}}", "team/" + name + ":{{.Run.TriggeredBy}}-{{.Run.ID}}"},
		BuildArgs:     map[string]string{"MODE": "release"},
		Target:        "final",
		Platform:      "linux/amd64",
		CommitTrigger: true,
		WebhookSecret: secret,
		Push:          true,
	}
	for _, mod := range mods {
		mod(t)
	}
	return t
}

// reply is a webhook answer, decoded.
type reply struct {
	Runs    []string          `json:"runs"`
	Ignored string            `json:"ignored"`
	Skipped map[string]string `json:"skipped"`
	Message string            `json:"message"`
	Error   *struct {
		Code    proto.Code `json:"code"`
		Message string     `json:"message"`
	} `json:"error"`
}

// post sends body to path with header (name, value pairs) and returns the status and the decoded answer.
func (e *testEnv) post(t *testing.T, path string, body io.Reader, header ...string) (int, reply) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of POST %s: %v", path, err)
	}
	var r reply
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("POST %s answered %d with %q: %v", path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, r
}

// github delivers body as GitHub does: a JSON body, the event and delivery headers, and the body's signature
// under key (none when key is "").
func (e *testEnv) github(t *testing.T, event, deliveryID, key string, body []byte) (int, reply) {
	t.Helper()
	header := []string{"Content-Type", "application/json", "X-GitHub-Event", event, "X-GitHub-Delivery", deliveryID}
	if key != "" {
		header = append(header, "X-Hub-Signature-256", sign(key, body))
	}
	return e.post(t, "/v1/webhooks/github", bytes.NewReader(body), header...)
}

// gitlab delivers body as GitLab does: the event header and the token, and the delivery UUID when set.
func (e *testEnv) gitlab(t *testing.T, event, uuid, token string, body []byte) (int, reply) {
	t.Helper()
	header := []string{"Content-Type", "application/json", "X-Gitlab-Event", event}
	if token != "" {
		header = append(header, "X-Gitlab-Token", token)
	}
	if uuid != "" {
		header = append(header, "X-Gitlab-Event-UUID", uuid)
	}
	return e.post(t, "/v1/webhooks/gitlab", bytes.NewReader(body), header...)
}

// sign returns the X-Hub-Signature-256 of body under key.
func sign(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// payload loads a real payload from testdata (copied unchanged from the senders' public fixtures; see
// testdata/README.md), applies edits to its decoded JSON and encodes it again. Numbers keep their digits.
func payload(t *testing.T, file string, edits ...func(m map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("reading payload: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	for _, edit := range edits {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("encoding %s: %v", file, err)
	}
	return b
}

// atRepo points a GitHub or Gitea payload's repository at repoURL: the only rewrite most tests make.
func atRepo(m map[string]any) {
	repo := m["repository"].(map[string]any)
	web := strings.TrimSuffix(repoURL, ".git")
	repo["clone_url"], repo["html_url"] = repoURL, web
	for _, k := range []string{"url", "svn_url"} {
		if _, ok := repo[k]; ok {
			repo[k] = web
		}
	}
	for _, k := range []string{"ssh_url", "git_url"} {
		if _, ok := repo[k]; ok {
			repo[k] = "git@git.kiln.test:team/app.git"
		}
	}
}

// atGitLabProject points a GitLab payload's project and repository at repoURL.
func atGitLabProject(m map[string]any) {
	web := strings.TrimSuffix(repoURL, ".git")
	for _, k := range []string{"project", "repository"} {
		p := m[k].(map[string]any)
		p["git_http_url"], p["git_ssh_url"] = repoURL, "git@git.kiln.test:team/app.git"
		for _, u := range []string{"web_url", "homepage", "http_url"} {
			if _, ok := p[u]; ok {
				p[u] = web
			}
		}
		for _, u := range []string{"url", "ssh_url"} {
			if _, ok := p[u]; ok {
				p[u] = "git@git.kiln.test:team/app.git"
			}
		}
	}
}

// set returns an edit that sets the field at path (keys separated by '.') to v.
func set(path string, v any) func(m map[string]any) {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		m[keys[len(keys)-1]] = v
	}
}

// queued returns the runs the store has, each checked to be Queued, and the run IDs of the RunRequested events
// on the runs stream, which it takes off the stream.
func (e *testEnv) queued(t *testing.T, ids []string) map[string]*proto.Run {
	t.Helper()
	runs := make(map[string]*proto.Run)
	for _, id := range ids {
		r, err := e.st.Run(t.Context(), id)
		if err != nil {
			t.Fatalf("Run(%s): %v", id, err)
		}
		if r.GetStatus() != proto.Status_QUEUED {
			t.Errorf("run %s is %s (%q), want %s", id, r.GetStatus(), r.GetError(), proto.Status_QUEUED)
		}
		runs[id] = r
	}
	if got := e.requested(t); !slices.Equal(got, ids) {
		t.Errorf("RunRequested events on %s = %v, want %v", proto.StreamRuns, got, ids)
	}
	return runs
}

// requested takes every RunRequested event off the runs stream and returns their run IDs, in order.
func (e *testEnv) requested(t *testing.T) []string {
	t.Helper()
	ctx := t.Context()
	s, err := e.js.Stream(ctx, proto.StreamRuns)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamRuns, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	n := int(info.State.Msgs)
	if n == 0 {
		return nil
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("CreateOrUpdateConsumer: %v", err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	var ids []string
	for msg := range batch.Messages() {
		var ev proto.RunRequested
		if err := gproto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatalf("decoding a RunRequested: %v", err)
		}
		if msg.Subject() != proto.SubjectRunRequested {
			t.Errorf("event on subject %s, want %s", msg.Subject(), proto.SubjectRunRequested)
		}
		ids = append(ids, ev.GetRunId())
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("acking: %v", err)
		}
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return ids
}
