package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/trigger/api"
)

var queuedLine = regexp.MustCompile(`Queued a run with ID: ([a-z0-9]+)\n`)

// TestQuickStart follows the README: the busybox base, then examples/hello on it, both through the kiln binary.
func TestQuickStart(t *testing.T) {
	k := startKiln(t)
	reg := k.RegistryAddr()

	out, errOut, code := k.cli(t, "build", "-t", "base/busybox:1", "examples/base")
	if code != 0 {
		t.Fatalf("kiln build examples/base exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	baseRun, err := k.api.Run(context.Background(), queuedLine.FindStringSubmatch(out)[1])
	if err != nil || len(baseRun.Images) != 1 {
		t.Fatalf("the base's run = %+v, %v; want one pushed image", baseRun, err)
	}
	out, errOut, code = k.cli(t, "build", "-t", "hello:{{.Run.ID}}", "--build-arg", "REGISTRY="+reg, "--build-arg", "GREETING=hi", "examples/hello")
	if code != 0 {
		t.Fatalf("kiln build examples/hello exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	m := queuedLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kiln build printed no run ID:\n%s", out)
	}
	id := m[1]
	for _, want := range []string{"RUN echo", "COPY --from=build", "Run ID: " + id + " was successful after "} {
		if !strings.Contains(out, want) {
			t.Errorf("kiln build's output lacks %q:\n%s", want, out)
		}
	}

	run, err := k.api.Run(context.Background(), id)
	if err != nil {
		t.Fatalf("Run(%s) = %v", id, err)
	}
	want := reg + "/hello:" + id
	if run.Status != "Succeeded" || run.Trigger != "manual" || len(run.Images) != 1 || run.Images[0].Reference != want {
		t.Fatalf("Run(%s) = %+v, want Succeeded, manual, one image %s", id, run, want)
	}
	// The run records the base it built on with the digest BuildKit resolved during the solve: the one the
	// base's run pushed.
	wantBase := api.Image{Reference: reg + "/base/busybox:1", Digest: baseRun.Images[0].Digest}
	if len(run.Bases) != 1 || run.Bases[0] != wantBase {
		t.Errorf("Run(%s).Bases = %+v, want [%+v]", id, run.Bases, wantBase)
	}
	if run.QueuedAt == nil || run.StartedAt == nil || run.FinishedAt == nil {
		t.Errorf("Run(%s) timestamps = %v %v %v, want all three", id, run.QueuedAt, run.StartedAt, run.FinishedAt)
	}
	ref, err := name.ParseReference(want)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatalf("remote.Head(%s) = %v", want, err)
	}
	if got := desc.Digest.String(); got != run.Images[0].Digest {
		t.Errorf("registry digest of %s = %s, run recorded %s", want, got, run.Images[0].Digest)
	}
	for path, content := range map[string]string{"/hello/message.txt": "hi from kiln\n", "/hello/shout.txt": "HI FROM KILN\n"} {
		if got, ok := imageFile(t, want, path); !ok || got != content {
			t.Errorf("%s in %s = %q (found %v), want %q", path, want, got, ok, content)
		}
	}
	if _, ok := imageFile(t, want, "/bin/sh"); !ok {
		t.Errorf("%s lacks /bin/sh from its base", want)
	}

	log := k.logOf(t, id)
	for _, step := range []string{"[internal] load build definition from Dockerfile", "[build 4/4] RUN echo", "COPY --from=build", "exporting"} {
		if !strings.Contains(log, step) {
			t.Errorf("stored log of %s lacks %q:\n%s", id, step, log)
		}
	}

	out, _, code = k.cli(t, "runs", "list", "-o", "json")
	var runs []api.Run
	if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil {
		t.Fatalf("kiln runs list -o json = exit %d, %v:\n%s", code, err, out)
	}
	if len(runs) != 2 || runs[0].ID != id || runs[0].Status != "Succeeded" {
		t.Errorf("kiln runs list = %+v, want 2 runs, newest %s Succeeded", runs, id)
	}
	out, _, code = k.cli(t, "runs", "show", id)
	if code != 0 || !strings.Contains(out, "Succeeded") || !strings.Contains(out, run.Images[0].Digest) {
		t.Errorf("kiln runs show %s = exit %d:\n%s", id, code, out)
	}
	out, _, code = k.cli(t, "logs", id)
	if code != 0 || out != log {
		t.Errorf("kiln logs %s = exit %d, %d bytes; want the stored log's %d bytes", id, code, len(out), len(log))
	}
}

// TestBuildFeatures builds Dockerfiles using ARG, --target, several stages and .dockerignore.
func TestBuildFeatures(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	from := "FROM " + reg + "/base/busybox:1"
	files := map[string]string{
		"Dockerfile": "ARG FLAVOR=plain\n" + from + " AS one\nARG FLAVOR\nRUN echo \"one $FLAVOR\" > /one\n" +
			from + " AS two\nCOPY --from=one /one /one\nCOPY . /ctx/\nRUN echo two >> /one\n" +
			from + " AS three\nRUN echo never > /three\n",
		".dockerignore": "secret.txt\nlogs/\n!logs/keep.log\n",
		"secret.txt":    "do not send",
		"logs/a.log":    "no",
		"logs/keep.log": "yes",
		".git/HEAD":     "ref: refs/heads/main\n",
		"app/main.txt":  "main",
	}
	run := k.submitFiles(t, files, api.BuildRequest{
		Tags:      []string{"features:{{.Run.ID}}", "features:latest"},
		BuildArgs: map[string]string{"FLAVOR": "salted"},
		Target:    "two",
	})
	r := k.waitDone(t, run.ID)
	if r.Status != "Succeeded" || len(r.Images) != 2 {
		t.Fatalf("run %s = %s %q with %d images, want Succeeded with 2\n%s", r.ID, r.Status, r.Error, len(r.Images), k.logOf(t, r.ID))
	}
	if r.Images[0].Digest != r.Images[1].Digest {
		t.Errorf("the two tags got digests %s and %s, want one image", r.Images[0].Digest, r.Images[1].Digest)
	}
	ref := reg + "/features:latest"
	if got, _ := imageFile(t, ref, "/one"); got != "one salted\ntwo\n" {
		t.Errorf("/one = %q, want the ARG and both stages", got)
	}
	if _, ok := imageFile(t, ref, "/three"); ok {
		t.Errorf("/three is in the image: --target two was not respected")
	}
	for path, want := range map[string]bool{"/ctx/app/main.txt": true, "/ctx/logs/keep.log": true, "/ctx/secret.txt": false, "/ctx/logs/a.log": false, "/ctx/.git/HEAD": false} {
		if _, ok := imageFile(t, ref, path); ok != want {
			t.Errorf("%s in the image = %v, want %v (.dockerignore and .git)", path, ok, want)
		}
	}

	noPush := false
	run = k.submitFiles(t, map[string]string{"Dockerfile": from + "\nRUN true\n"}, api.BuildRequest{Tags: []string{"nopush:1"}, Push: &noPush})
	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" || len(r.Images) != 0 {
		t.Errorf("--no-push run = %s with images %v, want Succeeded and nothing pushed", r.Status, r.Images)
	}
	if ref, err := name.ParseReference(reg + "/nopush:1"); err != nil {
		t.Fatal(err)
	} else if _, err := remote.Head(ref); err == nil {
		t.Errorf("nopush:1 is in the registry, want nothing pushed")
	}
}
