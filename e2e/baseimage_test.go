package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// baseSettle is the settle window of these tests: short, so that they are quick, but long enough for the
// several reports of one push (the run's own, the registry's) to land inside it.
const baseSettle = 500 * time.Millisecond

func withSettle(c *serve.Config) { c.BaseSettle = baseSettle }

// TestBaseImageChain: a base task builds a busybox image from a git repository, and an app task builds FROM it.
// Each new commit of the base rebuilds the base, then the app, by themselves; the app's new image holds the new
// base's layers.
func TestBaseImageChain(t *testing.T) {
	k := startKiln(t, withSettle)
	reg := k.RegistryAddr()
	g := gittest.NewServer(t, "")
	busybox, err := os.ReadFile(filepath.Join(root, "examples", "base", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	baseRepo := gittest.NewRepo(t)
	baseRepo.Commit(map[string]string{
		"Dockerfile": "FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY version /base-version\n",
		"busybox":    string(busybox),
		"version":    "1\n",
	})
	baseURL := g.Publish(baseRepo, "team/base.git", "main")
	appRepo := gittest.NewRepo(t)
	appRepo.Commit(map[string]string{
		"Dockerfile": "FROM " + reg + "/chain/base:latest\nRUN cat /base-version > /app-saw && echo " + nonce() + " > /nonce\n",
	})
	appURL := g.Publish(appRepo, "team/app.git", "main")
	const secret = "base secret"
	ctx := context.Background()
	if _, err := k.api.CreateTask(ctx, api.Task{Name: "base", Context: baseURL + "#main", Tags: []string{"chain/base:latest"},
		WebhookSecret: secret}); err != nil {
		t.Fatalf("creating task base: %v", err)
	}
	out, errOut, code := k.cli(t, "task", "create", "app", "--context", appURL+"#main", "-t", "chain/app:{{.Run.ID}}")
	if code != 0 {
		t.Fatalf("kiln task create app = exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = k.cli(t, "task", "deps", "app")
	if code != 0 || !strings.Contains(out, reg+"/chain/base:latest") || !strings.Contains(out, "runtime") {
		t.Fatalf("kiln task deps app = exit %d\n%s%s\nwant %s/chain/base:latest, runtime", code, out, errOut, reg)
	}

	// The base's first build starts the app's first, though the app never ran: its base is new to it.
	first, err := k.api.RunTask(ctx, "base")
	if err != nil {
		t.Fatalf("running task base: %v", err)
	}
	baseRun := k.waitDone(t, first.ID)
	if baseRun.Status != "Succeeded" {
		t.Fatalf("base run %s = %s (%q)\n%s", baseRun.ID, baseRun.Status, baseRun.Error, k.logOf(t, baseRun.ID))
	}
	app1 := k.waitTaskRuns(t, "app", 1)[0]
	checkBaseRun(t, k, app1, reg+"/chain/base:latest", "", baseRun.Images[0].Digest)
	if got, _ := imageFile(t, reg+"/chain/app:"+app1.ID, "/app-saw"); got != "1\n" {
		t.Errorf("/app-saw of the first app image = %q, want the first base's 1", got)
	}

	// A commit to the base's repository, delivered as GitHub would: base, then app.
	before := baseRepo.Git("rev-parse", "HEAD")
	second := baseRepo.Commit(map[string]string{"version": "2\n"})
	status, answer := k.deliver(t, "push", guid(), secret, githubPush(t, "github/push.branch.json", baseURL, "main", before, second, []string{"version"}))
	ids := runsOf(answer)
	if status != 202 || len(ids) != 1 {
		t.Fatalf("push delivery = %d %v, want 202 and one run", status, answer)
	}
	baseRun2 := k.waitDone(t, ids[0])
	if baseRun2.Status != "Succeeded" {
		t.Fatalf("base run %s = %s (%q)", baseRun2.ID, baseRun2.Status, baseRun2.Error)
	}
	app2 := k.waitTaskRuns(t, "app", 2)[0]
	checkBaseRun(t, k, app2, reg+"/chain/base:latest", baseRun.Images[0].Digest, baseRun2.Images[0].Digest)
	appRef := reg + "/chain/app:" + app2.ID
	if got, _ := imageFile(t, appRef, "/app-saw"); got != "2\n" {
		t.Errorf("/app-saw of the second app image = %q, want the second base's 2", got)
	}
	baseLayers := layerDigests(t, reg+"/chain/base:latest")
	appLayers := layerDigests(t, appRef)
	if len(appLayers) <= len(baseLayers) || !slices.Equal(appLayers[:len(baseLayers)], baseLayers) {
		t.Errorf("app image %s layers %v do not start with the new base's %v", appRef, appLayers, baseLayers)
	}
	deps, err := k.api.TaskDeps(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Bases) != 1 || deps.Bases[0].BuiltDigest != baseRun2.Images[0].Digest || deps.Bases[0].RegistryDigest != baseRun2.Images[0].Digest {
		t.Errorf("deps of app = %+v, want built on and registry at %s", deps.Bases, baseRun2.Images[0].Digest)
	}
	time.Sleep(4 * baseSettle)
	if runs := k.taskRuns(t, "app"); len(runs) != 2 {
		t.Errorf("task app has %d runs after two base builds, want 2", len(runs))
	}
}

// TestBaseImageNotification: bases pushed straight to the embedded registry reach Kiln by its notifications.
// Ten dependents of one base get exactly ten runs; the same digest pushed again starts nothing.
func TestBaseImageNotification(t *testing.T) {
	k := startKiln(t, withSettle)
	reg := k.pushBase(t)
	base := reg + "/notify/base:1"
	g := gittest.NewServer(t, "")
	r := gittest.NewRepo(t)
	r.Commit(map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN cat /stamp > /app-saw\n",
	})
	url := g.Publish(r, "team/app.git", "main")
	const dependents = 10
	for i := range dependents {
		if _, err := k.api.CreateTask(context.Background(), api.Task{Name: fmt.Sprintf("app%d", i), Context: url + "#main",
			Tags: []string{fmt.Sprintf("notify/app%d:{{.Run.ID}}", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	d1 := k.pushStamped(t, reg+"/base/busybox:1", base, "one")
	for i := range dependents {
		runs := k.waitTaskRuns(t, fmt.Sprintf("app%d", i), 1)
		checkBaseRun(t, k, runs[0], base, "", d1)
		if runs[0].BaseImage[0].Source != "notification" {
			t.Errorf("run %s learned of the base by %q, want notification", runs[0].ID, runs[0].BaseImage[0].Source)
		}
	}

	k.pushStamped(t, reg+"/base/busybox:1", base, "one") // the same image, so the same digest
	d2 := k.pushStamped(t, reg+"/base/busybox:1", base, "two")
	for i := range dependents {
		runs := k.waitTaskRuns(t, fmt.Sprintf("app%d", i), 2)
		checkBaseRun(t, k, runs[0], base, d1, d2)
	}
	time.Sleep(4 * baseSettle)
	all, err := k.api.ListRuns(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range all {
		if r.Trigger == "base_image" {
			n++
		}
	}
	if n != 2*dependents {
		t.Errorf("%d base image runs after two new digests and one repeated, want %d", n, 2*dependents)
	}
}

// TestBaseImagePoller: with the registry's notifications off, the poller finds the new digest.
func TestBaseImagePoller(t *testing.T) {
	k := startKiln(t, withSettle, func(c *serve.Config) {
		c.RegistryNotify = false
		c.BasePollInterval = 300 * time.Millisecond
	})
	reg := k.pushBase(t)
	base := reg + "/poll/base:1"
	d1 := k.pushStamped(t, reg+"/base/busybox:1", base, "one")
	g := gittest.NewServer(t, "")
	r := gittest.NewRepo(t)
	r.Commit(map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /stamp > /app-saw\n"})
	url := g.Publish(r, "team/app.git", "main")
	ctx := context.Background()
	if _, err := k.api.CreateTask(ctx, api.Task{Name: "app", Context: url + "#main", Tags: []string{"poll/app:{{.Run.ID}}"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		deps, err := k.api.TaskDeps(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if len(deps.Bases) == 1 && deps.Bases[0].RegistryDigest == d1 && deps.Bases[0].Source == "poll" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poller has not checked %s after 30s: deps %+v", base, deps)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if runs := k.taskRuns(t, "app"); len(runs) != 0 {
		t.Fatalf("the poller's first look at %s started %d runs, want none", base, len(runs))
	}
	d2 := k.pushStamped(t, reg+"/base/busybox:1", base, "two")
	run := k.waitTaskRuns(t, "app", 1)[0]
	checkBaseRun(t, k, run, base, "", d2)
	if run.BaseImage[0].Source != "poll" {
		t.Errorf("run %s learned of the base by %q, want poll", run.ID, run.BaseImage[0].Source)
	}
	if got, _ := imageFile(t, reg+"/poll/app:"+run.ID, "/app-saw"); got != "two" {
		t.Errorf("/app-saw = %q, want the new base's stamp", got)
	}
}

// TestBaseImageDependencies: a multi-stage Dockerfile with ARG-expanded FROMs, stage references and --target
// gives the right bases, runtime and build-time, and only the runtime one is tracked unless the type is all.
func TestBaseImageDependencies(t *testing.T) {
	k := startKiln(t, withSettle)
	g := gittest.NewServer(t, "")
	dockerfile := `ARG REG=registry.example:5000
ARG VERSION=1
FROM --platform=linux/amd64 ${REG}/tools/builder:2 AS build
RUN echo build
FROM ${REG}/runtime:${VERSION} AS runtime
FROM runtime AS final
COPY --from=build /out /out
COPY --from=registry.example:5000/assets:latest /a /a
FROM ${REG}/debug:1 AS debug
`
	r := gittest.NewRepo(t)
	r.Commit(map[string]string{"Dockerfile": dockerfile})
	url := g.Publish(r, "team/multi.git", "main")
	ctx := context.Background()
	for _, tc := range []struct {
		name, kind string
		tracked    []string
	}{
		{"runtime-only", "runtime", []string{"registry.example:5000/runtime:3"}},
		{"all-bases", "all", []string{"registry.example:5000/tools/builder:2", "registry.example:5000/runtime:3", "registry.example:5000/assets:latest"}},
	} {
		_, err := k.api.CreateTask(ctx, api.Task{Name: tc.name, Context: url + "#main", Tags: []string{"x:1"},
			BuildArgs: map[string]string{"VERSION": "3"}, Target: "final", BaseImageTriggerType: tc.kind})
		if err != nil {
			t.Fatalf("creating task %s: %v", tc.name, err)
		}
		deps, err := k.api.TaskDeps(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var all, tracked, runtime []string
		for _, b := range deps.Bases {
			all = append(all, b.Reference)
			if b.Tracked {
				tracked = append(tracked, b.Reference)
			}
			if b.Kind == "runtime" {
				runtime = append(runtime, b.Reference)
			}
		}
		wantAll := []string{"registry.example:5000/tools/builder:2", "registry.example:5000/runtime:3", "registry.example:5000/assets:latest"}
		slices.Sort(all)
		slices.Sort(wantAll)
		slices.Sort(tracked)
		slices.Sort(tc.tracked)
		if !slices.Equal(all, wantAll) || !slices.Equal(runtime, []string{"registry.example:5000/runtime:3"}) || !slices.Equal(tracked, tc.tracked) {
			t.Errorf("deps of %s: all %v runtime %v tracked %v; want all %v, runtime [registry.example:5000/runtime:3], tracked %v",
				tc.name, all, runtime, tracked, wantAll, tc.tracked)
		}
	}
	// A Dockerfile that does not parse is refused when the task is saved, naming the line.
	bad := gittest.NewRepo(t)
	bad.Commit(map[string]string{"Dockerfile": "FROM scratch\nCOPY\n"})
	badURL := g.Publish(bad, "team/bad.git", "main")
	_, err := k.api.CreateTask(ctx, api.Task{Name: "bad", Context: badURL + "#main", Tags: []string{"x:1"}})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("creating a task whose Dockerfile does not parse = %v, want an error naming line 2", err)
	}
}

// checkBaseRun checks that run was started by the base image ref moving from old to new.
func checkBaseRun(t *testing.T, k *kiln, run *api.Run, ref, old, new string) {
	t.Helper()
	if run.Trigger != "base_image" || len(run.BaseImage) != 1 || run.BaseImage[0].Reference != ref ||
		run.BaseImage[0].OldDigest != old || run.BaseImage[0].NewDigest != new {
		t.Errorf("run %s: trigger %s, changes %+v; want base_image, %s from %q to %s", run.ID, run.Trigger, run.BaseImage, ref, old, new)
	}
	done := k.waitDone(t, run.ID)
	if done.Status != "Succeeded" {
		t.Errorf("run %s = %s (%q)\n%s", done.ID, done.Status, done.Error, k.logOf(t, done.ID))
		return
	}
	if len(done.Bases) != 1 || done.Bases[0].Digest != new {
		t.Errorf("run %s built on %+v, want %s", done.ID, done.Bases, new)
	}
}

// taskRuns returns the runs of task, newest first.
func (k *kiln) taskRuns(t *testing.T, task string) []*api.Run {
	t.Helper()
	all, err := k.api.ListRuns(context.Background(), "", 200)
	if err != nil {
		t.Fatal(err)
	}
	var runs []*api.Run
	for _, r := range all {
		if r.TaskName == task {
			runs = append(runs, r)
		}
	}
	return runs
}

// waitTaskRuns waits until task has n runs and returns them, newest first.
func (k *kiln) waitTaskRuns(t *testing.T, task string, n int) []*api.Run {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		runs := k.taskRuns(t, task)
		if len(runs) >= n {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s has %d runs after a minute, want %d\n", task, len(runs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushStamped pushes from with one more layer holding /stamp = stamp to the tag to, straight to k's registry
// with go-containerregistry and its credentials, and returns the digest pushed. The same stamp gives the same
// digest.
func (k *kiln) pushStamped(t *testing.T, from, to, stamp string) string {
	t.Helper()
	src, err := name.ParseReference(from)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatalf("reading %s: %v", from, err)
	}
	layer := static.NewLayer(tarOf(t, map[string]string{"stamp": stamp}), types.OCILayer)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(to)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img, k.registryAuth(t)); err != nil {
		t.Fatalf("pushing %s: %v", to, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// layerDigests returns the digests of the layers of the image ref, bottom first.
func layerDigests(t *testing.T, ref string) []v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
