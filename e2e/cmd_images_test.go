package e2e

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/deploy/buildkitd"
)

// TestCmdDockerHubShortName: `cmd: busybox echo hi` runs Docker Hub's busybox, as in ACR's samples. Docker Hub is
// out of reach here, so a registry of the test's own stands in for it: a buildkitd of the test's own pulls
// docker.io's images through it (Config.Mirrors), and the test pushes the busybox base there as
// library/busybox:latest. Kiln names the image docker.io/library/busybox:latest; without that, BuildKit
// refused "busybox" with "object required".
func TestCmdDockerHubShortName(t *testing.T) {
	hub := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(hub.Close)
	hubHost := strings.TrimPrefix(hub.URL, "http://")

	dir := t.TempDir()
	addr := "unix://" + filepath.Join(dir, "buildkitd.sock")
	sup := buildkitd.New(buildkitd.Config{Bin: buildkitdBin, Root: filepath.Join(dir, "root"), Addr: addr, Mirrors: []string{hubHost}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute)
	defer readyCancel()
	if err := sup.WaitReady(readyCtx); err != nil {
		t.Fatalf("buildkitd with a mirror for docker.io did not become ready: %v", err)
	}

	k := startKiln(t, func(c *serve.Config) { c.BuildkitAddr = addr })
	base := k.pushBase(t) + "/base/busybox:1"
	img, err := remote.Image(mustRef(t, base), k.registryAuth(t))
	if err != nil {
		t.Fatalf("reading %s: %v", base, err)
	}
	if err := remote.Write(mustRef(t, hubHost+"/library/busybox:latest"), img); err != nil {
		t.Fatalf("pushing busybox to the stand-in for Docker Hub: %v", err)
	}

	t.Run("kiln run --cmd", func(t *testing.T) {
		word := "hi-" + nonce()
		out, errOut, code := k.cli(t, "run", "--cmd", "busybox echo "+word, os.DevNull)
		run := k.runOf(t, out)
		if code != 0 || run == nil || run.Status != "Succeeded" || !strings.Contains(out, word) {
			t.Fatalf("kiln run --cmd 'busybox echo %s' = exit %d\n%s%s", word, code, out, errOut)
		}
	})
	t.Run("a task file's cmd step", func(t *testing.T) {
		word := "hi-" + nonce()
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - cmd: busybox:latest echo " + word + "\n"})
		if code != 0 || run == nil || run.Status != "Succeeded" || !strings.Contains(out, word) {
			t.Fatalf("kiln run of cmd: busybox:latest echo %s = exit %d\n%s", word, code, out)
		}
	})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatalf("ParseReference(%q) = %v", s, err)
	}
	return ref
}

// TestTaskFileCache: cache: enabled is taken, and is BuildKit's cache as always; cache: disabled builds again
// (--no-cache). The image records a random value when its RUN step runs, and a cmd step prints it.
func TestTaskFileCache(t *testing.T) {
	k := startKiln(t)
	base := k.pushBase(t) + "/base/busybox:1"
	dockerfile := "FROM " + base + "\nRUN echo " + nonce() + " $(cat /proc/sys/kernel/random/uuid) > /stamp\n"
	stamp := regexp.MustCompile(`\[show\] (\S+ [0-9a-f-]{36})`)
	runWith := func(cache string) string {
		t.Helper()
		run, out, code := k.runFile(t, map[string]string{
			"Dockerfile": dockerfile,
			"acb.yaml": "version: v1.1.0\nsteps:\n  - id: build\n    build: -t $Registry/cache/app:$ID .\n    cache: " + cache +
				"\n  - id: show\n    cmd: $Registry/cache/app:$ID cat /stamp\n",
		})
		m := stamp.FindStringSubmatch(out)
		if code != 0 || run == nil || run.Status != "Succeeded" || m == nil {
			t.Fatalf("kiln run with cache: %s = exit %d\n%s", cache, code, out)
		}
		return m[1]
	}
	first := runWith("enabled")
	if again := runWith("enabled"); again != first {
		t.Errorf("with cache: enabled the RUN step ran again (%q, then %q), want it cached", first, again)
	}
	if fresh := runWith("disabled"); fresh == first {
		t.Errorf("with cache: disabled the RUN step came from the cache (%q), want it run again", fresh)
	}
}

// TestDockerStepRefused: a cmd step of the docker CLI is refused when the run is submitted (400), naming the file
// and line, saying why and what to write instead; no run is queued.
func TestDockerStepRefused(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })
	const why = "needs a Docker daemon, and Kiln has none: steps run on BuildKit. Build an image with a build step"
	run, out, code := k.runFile(t, map[string]string{
		"Dockerfile": "FROM scratch\n",
		"acb.yaml":   "steps:\n  - build: -t app .\n  - cmd: docker push app\n",
	})
	if code == 0 || run != nil || !strings.Contains(out, "task file:3: steps[1].cmd") || !strings.Contains(out, why) {
		t.Errorf("kiln run of cmd: docker push app = exit %d, run %v\n%s\nwant it refused at task file:3, saying %q", code, run, out, why)
	}
	out, errOut, code := k.cli(t, "run", "--cmd", "docker:24-cli ps", os.DevNull)
	if code == 0 || k.runOf(t, out) != nil || !strings.Contains(out+errOut, why) {
		t.Errorf("kiln run --cmd 'docker:24-cli ps' = exit %d\n%s%s\nwant it refused, saying %q", code, out, errOut, why)
	}
}
