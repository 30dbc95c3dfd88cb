package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

func TestPrintRunShowsTriggersAndSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(1500 * time.Millisecond)
	run := &api.Run{ID: "k7", Status: "Failed", Trigger: "timer",
		Timer:     &api.TimerTrigger{Name: "nightly", ScheduledAt: t0},
		BaseImage: []api.BaseChange{{Reference: "reg/base:1", NewDigest: "sha256:b", Source: "poll"}},
		Steps: []api.Step{
			{ID: "build", Kind: "build", Status: "Succeeded", StartedAt: &t0, FinishedAt: &t1,
				Images: []api.Image{{Reference: "reg/app:k7"}}},
			{ID: "test", Kind: "cmd", Status: "Failed", ExitCode: 3, Attempts: 2},
			{ID: "push", Kind: "push", Status: "Skipped"},
		}}
	var out bytes.Buffer
	printRun(&out, run)
	for _, want := range []string{
		"Timer:     nightly at 2026-11-23T10:00:00Z",
		"Base:      reg/base:1 none → sha256:b (poll)",
		"Step:      build (build) Succeeded in 1.5s, reg/app:k7",
		"Step:      test (cmd) Failed, exit code 3, 2 attempts",
		"Step:      push (push) Skipped",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printRun() lacks %q:\n%s", want, out.String())
		}
	}
}
