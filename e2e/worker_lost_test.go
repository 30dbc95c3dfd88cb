package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
)

// TestWorkerKilled: a worker process SIGKILLed mid-build leaves its run to another worker, which runs it again;
// the run ends once, Succeeded on its second attempt, never stuck in Running. The workers are separate processes
// sharing one NATS, as they would be on separate machines.
func TestWorkerKilled(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })

	var workerLog bytes.Buffer
	worker := exec.Command(kilnBin, "serve", "--data-dir", t.TempDir(), "--listen", "", "--registry-listen", "",
		"--nats-url", k.NATSURL(), "--buildkit-addr", buildkitAddr, "--workers", "1", "--ack-wait", "3s")
	worker.Stdout, worker.Stderr = &workerLog, &workerLog
	if err := worker.Start(); err != nil {
		t.Fatalf("starting a worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = worker.Process.Kill()
		_ = worker.Wait()
		if t.Failed() {
			t.Logf("worker process log:\n%s", workerLog.String())
		}
	})

	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN echo started " + nonce() + " && sleep 4 && echo slept > /slept\n"},
		api.BuildRequest{Tags: []string{"survivor:{{.Run.ID}}"}})
	k.wait(t, run.ID, time.Minute, "Running its RUN step", func(r *api.Run) bool {
		return r.Status == "Running" && strings.Contains(k.logOf(t, r.ID), "started")
	})
	if err := worker.Process.Kill(); err != nil { // SIGKILL: no goodbye, no hand-back
		t.Fatal(err)
	}
	_ = worker.Wait()

	startKiln(t, func(c *serve.Config) {
		c.NATSURL = k.NATSURL()
		c.RegistryListen = ""
		c.DefaultRegistry = reg
		c.Workers = 1
	})
	r := k.waitDone(t, run.ID)
	if r.Status != "Succeeded" || r.Attempt != 2 {
		t.Fatalf("run %s after its worker was killed = %s on attempt %d (%q), want Succeeded on attempt 2", r.ID, r.Status, r.Attempt, r.Error)
	}
	if got, _ := imageFile(t, r.Images[0].Reference, "/slept"); got != "slept\n" {
		t.Errorf("/slept = %q in %s", got, r.Images[0].Reference)
	}
	if log := k.logOf(t, r.ID); !strings.Contains(log, "Attempt 2") {
		t.Errorf("log of %s does not tell of the second attempt:\n%s", r.ID, log)
	}
}

// TestShutdownHandsBack: a worker stopped gracefully in the middle of a build hands the run back to the queue,
// Queued, without using up an attempt, and another worker runs it.
func TestShutdownHandsBack(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })
	worker := func(c *serve.Config) {
		c.NATSURL, c.Listen, c.RegistryListen, c.DefaultRegistry, c.Workers = k.NATSURL(), "", "", k.RegistryAddr(), 1
	}
	first := startKiln(t, worker)
	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN echo started " + nonce() + " && sleep 3\n"},
		api.BuildRequest{Tags: []string{"handed:1"}})
	k.wait(t, run.ID, time.Minute, "Running its RUN step", func(r *api.Run) bool {
		return r.Status == "Running" && strings.Contains(k.logOf(t, r.ID), "started")
	})
	if err := first.Close(); err != nil {
		t.Fatalf("Close() of the first worker = %v", err)
	}
	r, err := k.api.Run(t.Context(), run.ID)
	if err != nil || r.Status != "Queued" || r.Attempt != 0 {
		t.Fatalf("run %s after its worker stopped = %+v, %v; want Queued with its attempt handed back", run.ID, r, err)
	}
	startKiln(t, worker)
	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" || r.Attempt != 1 {
		t.Fatalf("run %s = %s on attempt %d (%q), want Succeeded on attempt 1: a hand-back uses no attempt", r.ID, r.Status, r.Attempt, r.Error)
	}
	if log := k.logOf(t, run.ID); !strings.Contains(log, "goes back to the queue") {
		t.Errorf("log of %s does not say the run went back to the queue:\n%s", run.ID, log)
	}
}
