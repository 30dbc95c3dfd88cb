package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/trigger/api"
)

func TestParseTaskCreateSchedules(t *testing.T) {
	const repo = "https://github.com/acme/app.git"
	tests := []struct {
		name string
		args []string
		want []api.Timer
	}{
		{"none", []string{"app", "--context", repo}, nil},
		{"unnamed", []string{"app", "--context", repo, "--schedule", "0 21 * * *"}, []api.Timer{{Schedule: "0 21 * * *"}}},
		{"named and repeated", []string{"app", "--context", repo, "--schedule", "nightly:0 21 * * *", "--schedule=@hourly"},
			[]api.Timer{{Name: "nightly", Schedule: "0 21 * * *"}, {Schedule: "@hourly"}}},
		{"spaces around", []string{"app", "--context", repo, "--schedule", " weekdays : 30 9 * * Mon-Fri "},
			[]api.Timer{{Name: "weekdays", Schedule: "30 9 * * Mon-Fri"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := parseTaskCreate(tt.args)
			if err != nil {
				t.Fatalf("parseTaskCreate(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got.Timers, tt.want) {
				t.Errorf("parseTaskCreate(%q).Timers = %+v, want %+v", tt.args, got.Timers, tt.want)
			}
		})
	}
}

func TestParseTaskCreateSchedulesRefused(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		want     string
	}{
		{"empty name", ":0 21 * * *", "empty timer name"},
		{"no cron", "nightly:", "no cron expression"},
		{"nothing", "", "no cron expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"app", "--context", "https://h/a.git", "--schedule", tt.schedule}
			_, _, err := parseTaskCreate(args)
			var bad usageError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseTaskCreate(%q) error = %v, want a usage error saying %s", args, err, tt.want)
			}
		})
	}
	if _, _, _, err := parseTaskUpdate([]string{"app", "--schedule", "0 21 * * *"}); err == nil {
		t.Errorf("parseTaskUpdate with --schedule = nil error, want one: timers change with kiln task timer")
	}
}

// kilnTimer runs the CLI with args against server, as kiln does, with --server after the first three arguments
// (task timer VERB) instead of the first two, and returns its exit code and output.
func kilnTimer(t *testing.T, server string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	n := min(3, len(args))
	args = append(args[:n:n], append([]string{"--server", server}, args[n:]...)...)
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

func TestTaskTimerVerbs(t *testing.T) {
	url, st := startAPI(t)
	const repo = "https://github.com/acme/app.git#main"
	steps := []struct {
		args []string
		code int
		want string // in the output
	}{
		{[]string{"task", "create", "app", "--context", repo, "--schedule", "0 21 * * *", "--schedule", "weekdays:30 9 * * 1-5"}, 0, "Created task app"},
		{[]string{"task", "create", "bad", "--context", repo, "--schedule", "nightly:@every 24h"}, 1, `timer nightly: schedule "@every 24h" is an interval`},
		{[]string{"task", "show", "app"}, 0, "Timer:          t1: 0 21 * * * (UTC), enabled\nTimer:          weekdays: 30 9 * * 1-5 (UTC), enabled\n"},
		{[]string{"task", "show", "app"}, 0, "Triggers:       commit,timer"},
		{[]string{"task", "list"}, 0, "commit,timer"},
		{[]string{"task", "timer", "add", "app", "--timer-name", "timer2", "--schedule", "30 10 * * *"}, 0, "Added timer timer2 (30 10 * * * UTC) to task app"},
		{[]string{"task", "timer", "add", "app", "--timer-name", "timer2", "--schedule", "0 1 * * *"}, 1, "has a timer named timer2 already"},
		{[]string{"task", "timer", "add", "app", "--timer-name", "sec", "--schedule", "0 0 1 * * *"}, 1, `timer sec: schedule "0 0 1 * * *" has 6 fields`},
		{[]string{"task", "timer", "add", "app", "--schedule", "0 1 * * *"}, 2, "needs --timer-name and --schedule"},
		{[]string{"task", "timer", "update", "app", "--timer-name", "timer2", "--schedule", "30 11 * * *"}, 0, "Updated timer timer2 of task app: 30 11 * * * UTC, Enabled"},
		{[]string{"task", "timer", "update", "app", "--timer-name", "timer2", "--enabled=false"}, 0, "30 11 * * * UTC, Disabled"},
		{[]string{"task", "timer", "update", "app", "--timer-name", "timer2"}, 2, "nothing to change"},
		{[]string{"task", "timer", "update", "app", "--timer-name", "nope", "--enabled"}, 1, "task app has no timer named nope"},
		{[]string{"task", "timer", "update", "app", "--timer-name", "t1", "--schedule", "TZ=Europe/Paris 0 9 * * *"}, 1, "Kiln's timers are UTC"},
		{[]string{"task", "timer", "list", "app"}, 0,
			"NAME      SCHEDULE (UTC)  STATUS\nt1        0 21 * * *      Enabled\nweekdays  30 9 * * 1-5    Enabled\ntimer2    30 11 * * *     Disabled\n"},
		{[]string{"task", "timer", "remove", "app", "--timer-name", "weekdays"}, 0, "Removed timer weekdays from task app"},
		{[]string{"task", "timer", "remove", "app", "--timer-name", "weekdays"}, 1, "task app has no timer named weekdays"},
		{[]string{"task", "timer", "remove", "app"}, 2, "needs --timer-name"},
		{[]string{"task", "timer", "list", "nope"}, 1, "no task named nope"},
		{[]string{"task", "timer", "frobnicate", "app"}, 2, "unknown task timer subcommand"},
		{[]string{"task", "timer"}, 2, "add, update, remove or list"},
	}
	for _, s := range steps {
		code, out := kilnTimer(t, url, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("kiln %s = %d %q, want %d with %q", strings.Join(s.args, " "), code, out, s.code, s.want)
		}
	}

	code, out := kilnTimer(t, url, "task", "timer", "list", "app", "-o", "json")
	var timers []api.Timer
	if err := json.Unmarshal([]byte(out), &timers); code != 0 || err != nil || len(timers) != 2 || timers[1].Name != "timer2" {
		t.Errorf("kiln task timer list app -o json = %d %q (%v), want two timers as JSON", code, out, err)
	}
	task, err := st.Task(t.Context(), "app")
	if err != nil || len(task.Timers) != 2 || task.Timers[0].Name != "t1" || !task.Timers[1].Disabled {
		t.Errorf("store.Task(app) timers = %v, %v; want t1 and timer2, disabled", task.GetTimers(), err)
	}
}
