package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// TestTimersAcrossProcesses: two kiln serve processes share one NATS JetStream; each occurrence of a task's
// timer starts exactly one run, however both tick. The ticks are driven with a test clock: the timer fires on
// 29 February at midnight, which this test's real minutes never are, and both processes are made to tick at
// the occurrences of 2028 and 2032 at the same moment.
func TestTimersAcrossProcesses(t *testing.T) {
	k1 := startKiln(t)
	reg := k1.pushBase(t)
	k2 := startKiln(t, func(c *serve.Config) {
		c.NATSURL, c.RegistryListen, c.DefaultRegistry, c.Workers = k1.NATSURL(), "", reg, 1
	})
	g := gittest.NewServer(t, "")
	r := gittest.NewRepo(t)
	r.Commit(map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN echo nightly\n"})
	url := g.Publish(r, "team/nightly.git", "main")
	out, errOut, code := k1.cli(t, "task", "create", "nightly", "--context", url+"#main", "-t", "nightly:{{.Run.ID}}",
		"--schedule", "leap:0 0 29 2 *")
	if code != 0 {
		t.Fatalf("kiln task create --schedule = exit %d\n%s%s", code, out, errOut)
	}
	if out, _, _ := k2.cli(t, "task", "timer", "list", "nightly"); !containsAll(out, "leap", "0 0 29 2 *") {
		t.Fatalf("the second process lists the timers\n%s\nwant leap, 0 0 29 2 *", out)
	}

	occurrences := []time.Time{time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2032, 2, 29, 0, 0, 0, 0, time.UTC)}
	for _, at := range occurrences {
		var wg sync.WaitGroup
		for _, k := range []*kiln{k1, k2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := k.Timers().Tick(context.Background(), at.Add(2*time.Second)); err != nil {
					t.Errorf("Tick(%s) = %v", at, err)
				}
			}()
		}
		wg.Wait()
	}
	runs := k1.taskRuns(t, "nightly")
	if len(runs) != len(occurrences) {
		t.Fatalf("%d runs after %d occurrences ticked by two processes, want one each", len(runs), len(occurrences))
	}
	for i, run := range runs { // newest first
		want := occurrences[len(occurrences)-1-i]
		if run.Trigger != "timer" || run.Timer == nil || run.Timer.Name != "leap" || !run.Timer.ScheduledAt.Equal(want) {
			t.Errorf("run %s: trigger %s, timer %+v; want timer leap scheduled at %s", run.ID, run.Trigger, run.Timer, want)
		}
		if done := k1.waitDone(t, run.ID); done.Status != "Succeeded" {
			t.Errorf("run %s = %s (%s)", done.ID, done.Status, done.Error)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
