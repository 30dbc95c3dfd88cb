package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// sleeperDockerfile is a build whose RUN step runs until it is killed. The step's shell stays in front of its
// sleep (it has a command after it), so that marker shows in the shell's /proc/PID/cmdline.
func sleeperDockerfile(reg, marker string) string {
	return fmt.Sprintf("FROM %s/base/busybox:1\n"+
		`RUN ["/bin/busybox", "sh", "-c", "echo started-%s; /bin/busybox sleep 3000; echo never-%s"]`+"\n", reg, marker, marker)
}

// stepProcs returns the live processes whose command line holds marker: a build step's, seen from the host.
// A process whose parent holds marker too is left out: it is the step's shell forking a command, which has
// the shell's command line until it runs the command, not a second step.
func stepProcs(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parents := make(map[int]int) // pid → parent pid, of the processes with marker
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		// A zombie's command line reads empty: only live processes match.
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(marker)) {
			parents[pid] = parentOf(pid)
		}
	}
	var pids []int
	for pid, parent := range parents {
		if _, forked := parents[parent]; !forked {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parentOf returns the parent process id of pid, or 0 when it cannot be read.
func parentOf(pid int) int {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The fields after the command, which is in parentheses and may hold anything: state, then the parent.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(string(fields[1]))
	return ppid
}

// alive reports whether process pid is running: not gone, not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// nextStep waits until a step process with marker other than old runs, and returns it, or until the run has
// ended, and returns 0 and the run. It fails the test when two step processes with marker run at once.
func nextStep(t *testing.T, k *kiln, id, marker string, old int) (int, *api.Run) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		procs := stepProcs(t, marker)
		if len(procs) > 1 {
			t.Fatalf("step processes %v with %s run at once: a retry runs beside the step it replaces", procs, marker)
		}
		if len(procs) == 1 && procs[0] != old {
			return procs[0], nil
		}
		r, err := k.api.Run(context.Background(), id)
		if err != nil {
			t.Fatalf("Run(%s) = %v", id, err)
		}
		if r.Status != "Queued" && r.Status != "Running" {
			return 0, r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s on attempt %d after 3 minutes, and no new step process with %s runs", id, r.Status, r.Attempt, marker)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// terminalStatuses returns the terminal statuses announced for run id on KILN_STATUS, in order.
func terminalStatuses(t *testing.T, natsURL, id string) []proto.Status {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("nats.Connect(%s) = %v", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(t.Context(), proto.StreamStatus, jetstream.OrderedConsumerConfig{FilterSubjects: []string{proto.StatusSubject(id)}})
	if err != nil {
		t.Fatalf("reading %s: %v", proto.StreamStatus, err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []proto.Status
	for range info.NumPending {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("reading %s: %v", proto.StreamStatus, err)
		}
		var ev proto.RunStatusChanged
		if err := gproto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if proto.Terminal(ev.GetStatus()) {
			got = append(got, ev.GetStatus())
		}
	}
	return got
}

// TestBuildkitdKilledMidStep: when the buildkitd running a build's RUN step is SIGKILLed, the step's processes
// end with it, before the attempt that runs the step again starts (never two at once), however many times it
// happens; and the run ends Error, once, on its last attempt, saying why, with no step process left.
func TestBuildkitdKilledMidStep(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.BuildkitAddr = ""; c.BuildkitdBin = buildkitdBin })
	sup := k.Supervisor()
	reg := k.pushBase(t)
	marker := "kiln-crash-" + nonce()
	run := k.submitFiles(t, map[string]string{"Dockerfile": sleeperDockerfile(reg, marker)}, api.BuildRequest{Tags: []string{"crash:1"}})

	var r *api.Run
	old, kills := 0, 0
	for {
		var pid int
		pid, r = nextStep(t, k, run.ID, marker, old)
		if r != nil {
			break
		}
		if old != 0 && alive(old) { // nextStep saw it gone already; this is the same question asked again
			t.Fatalf("the step of a new attempt (pid %d) runs while the killed attempt's (pid %d) still does", pid, old)
		}
		if kills == 3 {
			t.Fatalf("a fourth attempt's step runs (pid %d) after buildkitd was killed under three: the limit is 3", pid)
		}
		bk := sup.PID()
		if bk == 0 {
			t.Fatalf("the step runs (pid %d) and no buildkitd does", pid)
		}
		if err := syscall.Kill(bk, syscall.SIGKILL); err != nil {
			t.Fatalf("killing buildkitd (pid %d): %v", bk, err)
		}
		kills++
		t.Logf("attempt's step pid %d: killed buildkitd pid %d (kill %d)", pid, bk, kills)
		old = pid
	}

	if r.Status != "Error" || r.Attempt < 1 || r.Attempt > 3 || !strings.Contains(r.Error, "of 3 stopped") ||
		!strings.Contains(r.Error, "Kiln gave up on it") {
		t.Errorf("run %s after %d kills of buildkitd = %s on attempt %d (%q), want Error within 3 attempts, saying why",
			r.ID, kills, r.Status, r.Attempt, r.Error)
	}
	if log := k.logOf(t, r.ID); !strings.Contains(log, "goes back to the queue") || !strings.Contains(log, "Kiln gave up on it") {
		t.Errorf("log of %s does not tell of the attempts and why the run ended:\n%s", r.ID, log)
	}

	// The supervisor ends what buildkitd left before it starts it again: once the last kill's restart is done,
	// no step process may run.
	deadline := time.Now().Add(time.Minute)
	for sup.Restarts() < kills || sup.PID() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("buildkitd not restarted a minute after kill %d (restarts %d)", kills, sup.Restarts())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if procs := stepProcs(t, marker); len(procs) != 0 {
		t.Errorf("step processes %v still run after the run ended and buildkitd was restarted", procs)
	}
	if got := terminalStatuses(t, k.NATSURL(), r.ID); len(got) != 1 || got[0] != proto.Status_ERROR {
		t.Errorf("terminal statuses announced for %s = %v, want one, Error", r.ID, got)
	}
}

// TestKilnKilledMidStep: when `kiln serve` is SIGKILLed while its buildkitd runs a build's RUN step, the step is
// ended by the next `kiln serve` on the same data directory, before that one runs the step again.
func TestKilnKilledMidStep(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })
	dataDir := t.TempDir()
	startWorker := func() *exec.Cmd {
		var out syncWriter
		out.w = &bytes.Buffer{}
		w := exec.Command(kilnBin, "serve", "--data-dir", dataDir, "--listen", "", "--registry-listen", "",
			"--nats-url", k.NATSURL(), "--buildkitd", buildkitdBin, "--workers", "1", "--ack-wait", "3s")
		w.Stdout, w.Stderr = &out, &out
		w.WaitDelay = 5 * time.Second
		if err := w.Start(); err != nil {
			t.Fatalf("starting kiln serve: %v", err)
		}
		t.Cleanup(func() {
			_ = w.Process.Signal(syscall.SIGTERM) // a graceful stop, which stops its buildkitd too
			_ = w.Wait()
			if t.Failed() {
				t.Logf("kiln serve (pid %d) log:\n%s", w.Process.Pid, out.String())
			}
		})
		return w
	}
	first := startWorker()
	reg := k.pushBase(t)
	marker := "kiln-crash-" + nonce()
	run := k.submitFiles(t, map[string]string{"Dockerfile": sleeperDockerfile(reg, marker)}, api.BuildRequest{Tags: []string{"crash:2"}})
	pid, r := nextStep(t, k, run.ID, marker, 0)
	if r != nil {
		t.Fatalf("run %s = %s (%q) before its step ran", r.ID, r.Status, r.Error)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if !alive(pid) {
		t.Logf("the step (pid %d) ended with kiln serve already", pid)
	}

	startWorker()
	next, r := nextStep(t, k, run.ID, marker, pid)
	if r != nil {
		t.Fatalf("run %s = %s on attempt %d (%q), want its step run again", r.ID, r.Status, r.Attempt, r.Error)
	}
	if alive(pid) {
		t.Fatalf("the step of the new kiln serve's attempt (pid %d) runs while the killed one's (pid %d) still does", next, pid)
	}
	if r, err := k.api.Cancel(context.Background(), run.ID); err != nil {
		t.Fatalf("Cancel(%s) = %+v, %v", run.ID, r, err)
	}
	if r := k.waitDone(t, run.ID); r.Status != "Canceled" || r.Attempt != 2 {
		t.Errorf("run %s = %s on attempt %d (%q), want Canceled on attempt 2", r.ID, r.Status, r.Attempt, r.Error)
	}
}
