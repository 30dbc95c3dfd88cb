package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// TestRegistryFormats: a push notified by ACR, Harbor or Docker Hub, each in its own format, starts a
// base-image run of the task built on the tag pushed. The embedded registry stands in for each sender's, and
// its own notifications are off, so that only the posted one counts; the poller is slowed to one look an
// hour, which the test waits for before the push so that the notification is what tells of the new digest.
// Each body is the sender's real sample (trigger/webhook/testdata/registry) with only its registry, repository,
// tag and digest rewritten to the embedded registry's tag.
func TestRegistryFormats(t *testing.T) {
	k := startKiln(t, withSettle, func(c *serve.Config) {
		c.RegistryNotify = false
		c.BasePollInterval = time.Hour
	})
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	ctx := context.Background()

	formats := []struct {
		name string // of the task, and the repository of its base
		body func(repo, tag string, pushed *remote.Descriptor) []byte
		// query and header are what the sender adds to the URL and the request.
		query  url.Values
		header http.Header
	}{
		{
			name: "acr",
			body: func(repo, tag string, pushed *remote.Descriptor) []byte {
				return registrySample(t, "acr.push.json", func(m map[string]any) {
					m["request"].(map[string]any)["host"] = reg
					target := m["target"].(map[string]any)
					target["repository"], target["tag"] = repo, tag
					target["digest"], target["mediaType"] = pushed.Digest.String(), string(pushed.MediaType)
					target["size"], target["length"] = pushed.Size, pushed.Size
				})
			},
			header: http.Header{"Authorization": {"Bearer " + k.Token()}},
		},
		{
			name: "harbor",
			body: func(repo, tag string, pushed *remote.Descriptor) []byte {
				return registrySample(t, "harbor.push_artifact.json", func(m map[string]any) {
					data := m["event_data"].(map[string]any)
					r := data["repository"].(map[string]any)
					namespace, name, _ := strings.Cut(repo, "/")
					r["repo_full_name"], r["namespace"], r["name"] = repo, namespace, name
					res := data["resources"].([]any)[0].(map[string]any)
					res["digest"], res["tag"], res["resource_url"] = pushed.Digest.String(), tag, reg+"/"+repo+":"+tag
				})
			},
			header: http.Header{"Authorization": {"Bearer " + k.Token()}}, // Harbor's Auth Header, sent as it is set
		},
		{
			name: "dockerhub",
			body: func(repo, tag string, _ *remote.Descriptor) []byte {
				return registrySample(t, "dockerhub.push.json", func(m map[string]any) {
					m["push_data"].(map[string]any)["tag"] = tag
					r := m["repository"].(map[string]any)
					namespace, name, _ := strings.Cut(repo, "/")
					r["repo_name"], r["namespace"], r["name"], r["owner"] = repo, namespace, name, namespace
				})
			},
			// Docker Hub sets no header: the token rides in the URL, and the registry is named there, since
			// Docker Hub's repositories are on docker.io.
			query: url.Values{"registry": {reg}, "token": {k.Token()}},
		},
	}

	// A task per format, built FROM its own tracked tag, pushed once before the task is made.
	old := make(map[string]string)
	for _, f := range formats {
		base := reg + "/formats/" + f.name + ":1"
		old[f.name] = k.pushStamped(t, reg+"/base/busybox:1", base, f.name+" one")
		r := gittest.NewRepo(t)
		r.Commit(map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /stamp > /app-saw\n"})
		u := g.Publish(r, "team/"+f.name+".git", "main")
		if _, err := k.api.CreateTask(ctx, api.Task{Name: f.name, Context: u + "#main", Tags: []string{"formats/app-" + f.name + ":{{.Run.ID}}"}}); err != nil {
			t.Fatalf("creating task %s: %v", f.name, err)
		}
	}
	// The poller's first look at each tag, which records its digest and starts nothing.
	for _, f := range formats {
		k.waitPolled(t, f.name, old[f.name])
	}

	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			repo, tag := "formats/"+f.name, "1"
			base := reg + "/" + repo + ":" + tag
			d := k.pushStamped(t, reg+"/base/busybox:1", base, f.name+" two")
			ref, err := name.ParseReference(base)
			if err != nil {
				t.Fatal(err)
			}
			pushed, err := remote.Get(ref, k.registryAuth(t))
			if err != nil || pushed.Digest.String() != d {
				t.Fatalf("remote.Get(%s) = %v, %v; want digest %s", base, pushed, err, d)
			}
			status, answer := k.notifyRegistry(t, f.query, f.header, f.body(repo, tag, pushed))
			if status != http.StatusAccepted || answer["accepted"] != float64(1) {
				t.Fatalf("%s notification = %d %v, want 202 with one accepted", f.name, status, answer)
			}
			run := k.waitTaskRuns(t, f.name, 1)[0]
			// The task has built on no base yet, so the change is from none, as the poller's first look left it.
			checkBaseRun(t, k, run, base, "", d)
			if len(run.BaseImage) == 1 && run.BaseImage[0].Source != "notification" {
				t.Errorf("run %s learned of the base by %q, want notification", run.ID, run.BaseImage[0].Source)
			}
			if got, _ := imageFile(t, reg+"/formats/app-"+f.name+":"+run.ID, "/app-saw"); got != f.name+" two" {
				t.Errorf("/app-saw = %q, want the new base's stamp %q", got, f.name+" two")
			}
		})
	}
}

// registrySample loads a real registry notification from trigger/webhook/testdata/registry and applies edit.
func registrySample(t *testing.T, file string, edit func(map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "trigger", "webhook", "testdata", "registry", file))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notifyRegistry POSTs body as JSON to the registry webhook with query and header, and returns the status and
// the decoded answer.
func (k *kiln) notifyRegistry(t *testing.T, query url.Values, header http.Header, body []byte) (int, map[string]any) {
	t.Helper()
	u := k.APIURL() + "/v1/webhooks/registry"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("notifying the registry webhook: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("the registry webhook answered %d with %q: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, answer
}

// waitPolled waits until the poller has looked at the one base of task and found it at digest.
func (k *kiln) waitPolled(t *testing.T, task, digest string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		deps, err := k.api.TaskDeps(context.Background(), task)
		if err != nil {
			t.Fatal(err)
		}
		if len(deps.Bases) == 1 && deps.Bases[0].RegistryDigest == digest && deps.Bases[0].Source == "poll" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poller has not looked at the base of %s after a minute: deps %+v", task, deps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
