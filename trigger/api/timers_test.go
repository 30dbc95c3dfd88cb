package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

func TestCreateTaskTimers(t *testing.T) {
	e := newEnv(t, Config{})
	got := e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git","timers":[
		{"schedule":"0 21 * * *"}, {"name":"t1","schedule":" @daily "}, {"schedule":"*/5 * * * *","enabled":false}]}`)
	yes, no := true, false
	want := []Timer{{Name: "t2", Schedule: "0 21 * * *", Enabled: &yes}, {Name: "t1", Schedule: "@daily", Enabled: &yes},
		{Name: "t3", Schedule: "*/5 * * * *", Enabled: &no}}
	if !reflect.DeepEqual(got.Timers, want) {
		t.Errorf("POST /v1/tasks timers = %+v, want %+v", got.Timers, want)
	}
	stored, err := e.st.Task(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	wantStored := []*proto.Timer{{Name: "t2", Schedule: "0 21 * * *"}, {Name: "t1", Schedule: "@daily"},
		{Name: "t3", Schedule: "*/5 * * * *", Disabled: true}}
	if len(stored.Timers) != len(wantStored) {
		t.Fatalf("stored timers = %v, want %v", stored.Timers, wantStored)
	}
	for i := range wantStored {
		if !gproto.Equal(stored.Timers[i], wantStored[i]) {
			t.Errorf("stored timer %d = %v, want %v", i, stored.Timers[i], wantStored[i])
		}
	}
	var listed Task
	if status, body := e.taskCall(t, "GET", "/v1/tasks/app", "", &listed); status != http.StatusOK || !reflect.DeepEqual(listed.Timers, want) {
		t.Errorf("GET /v1/tasks/app = %d %s, want the timers", status, body)
	}
	if status, body := e.taskCall(t, "PATCH", "/v1/tasks/app", `{"timers":[]}`, nil); status != http.StatusBadRequest {
		t.Errorf("PATCH /v1/tasks/app with timers = %d %s, want 400: timers change through their own routes", status, body)
	}
}

func TestCreateTaskTimersRefused(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name   string
		timers string
		want   []string // in the message
	}{
		{"bad spec", `[{"name":"nightly","schedule":"0 25 * * *"}]`, []string{"timer nightly", `"0 25 * * *"`, "25"}},
		{"bad spec, no name", `[{"name":"t1","schedule":"0 3 * * *"},{"schedule":"0 3 * *"}]`, []string{"timer t2", `"0 3 * *"`, "has 4 fields"}},
		{"@every", `[{"name":"often","schedule":"@every 5m"}]`, []string{"timer often", `"@every 5m"`, "interval"}},
		{"seconds", `[{"name":"s","schedule":"0 */5 * * * *"}]`, []string{"timer s", "has 6 fields"}},
		{"time zone", `[{"name":"paris","schedule":"CRON_TZ=Europe/Paris 0 9 * * *"}]`, []string{"timer paris", "Kiln's timers are UTC"}},
		{"no schedule", `[{"name":"t1"}]`, []string{"timer t1", "needs a schedule"}},
		{"bad name", `[{"name":"a b","schedule":"0 3 * * *"}]`, []string{`"a b" is not a valid timer name`}},
		{"two of a name", `[{"name":"x","schedule":"0 3 * * *"},{"name":"x","schedule":"0 4 * * *"}]`, []string{"two timers named x"}},
		{"two of a schedule", `[{"schedule":"0 3 * * *"},{"name":"b","schedule":"0  3 * * *"}]`, []string{"timers t1 and b", "same schedule"}},
		{"unknown field", `[{"name":"x","schedule":"0 3 * * *","status":"Enabled"}]`, []string{"status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.taskCall(t, "POST", "/v1/tasks", `{"name":"app","context":"https://github.com/acme/app.git","timers":`+tt.timers+`}`, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("POST /v1/tasks with timers %s = %d %s, want 400", tt.timers, status, body)
			}
			msg := errorOf(t, []byte(body)).Message
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("POST /v1/tasks with timers %s: message %q, want it to say %q", tt.timers, msg, w)
				}
			}
			if _, err := e.st.Task(t.Context(), "app"); proto.ErrorCode(err) != proto.NotFound {
				t.Errorf("store.Task(app) after a refused create: %v, want not found", err)
			}
		})
	}
}

func TestTimerRoutes(t *testing.T) {
	e := newEnv(t, Config{})
	e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git","timers":[{"schedule":"0 21 * * *"}]}`)
	steps := []struct {
		method, path, body string
		status             int
		want               string // in the answer
	}{
		{"GET", "/v1/tasks/app/timers", "", 200, `{"timers":[{"name":"t1","schedule":"0 21 * * *","enabled":true}]}`},
		{"POST", "/v1/tasks/app/timers", `{"name":"timer2","schedule":"30 10 * * *"}`, 201, `{"name":"timer2","schedule":"30 10 * * *","enabled":true}`},
		{"POST", "/v1/tasks/app/timers", `{"schedule":"*/15 * * * *","enabled":false}`, 201, `{"name":"t2","schedule":"*/15 * * * *","enabled":false}`},
		{"POST", "/v1/tasks/app/timers", `{"name":"timer2","schedule":"0 1 * * *"}`, 409, "has a timer named timer2 already"},
		{"POST", "/v1/tasks/app/timers", `{"name":"late","schedule":"0 21 * * *"}`, 409, "timer t1 of task app has the schedule"},
		{"POST", "/v1/tasks/app/timers", `{"name":"bad","schedule":"61 * * * *"}`, 400, `timer bad: schedule \"61 * * * *\"`},
		{"POST", "/v1/tasks/app/timers", `{"name":"bad","schedule":"@every 1m"}`, 400, "interval"},
		{"POST", "/v1/tasks/app/timers", `{"schedule":"TZ=UTC 0 1 * * *"}`, 400, "timer (the new one): schedule"},
		{"POST", "/v1/tasks/nope/timers", `{"name":"x","schedule":"0 1 * * *"}`, 404, "nope"},
		{"PATCH", "/v1/tasks/app/timers/timer2", `{"schedule":"30 11 * * *"}`, 200, `{"name":"timer2","schedule":"30 11 * * *","enabled":true}`},
		{"PATCH", "/v1/tasks/app/timers/timer2", `{"enabled":false}`, 200, `{"name":"timer2","schedule":"30 11 * * *","enabled":false}`},
		{"PATCH", "/v1/tasks/app/timers/t2", `{"schedule":"30 11 * * *","enabled":true}`, 409, "timer timer2 of task app has the schedule"},
		{"PATCH", "/v1/tasks/app/timers/t2", `{"schedule":"0 0 * * * *"}`, 400, "timer t2: schedule"},
		{"PATCH", "/v1/tasks/app/timers/nope", `{"enabled":true}`, 404, "task app has no timer named nope"},
		{"PATCH", "/v1/tasks/app/timers/t2", `{"name":"t9"}`, 400, "name"},
		{"DELETE", "/v1/tasks/app/timers/t1", "", 204, ""},
		{"DELETE", "/v1/tasks/app/timers/t1", "", 404, "task app has no timer named t1"},
		{"DELETE", "/v1/tasks/nope/timers/t1", "", 404, "nope"},
		{"GET", "/v1/tasks/app/timers", "", 200,
			`{"timers":[{"name":"timer2","schedule":"30 11 * * *","enabled":false},{"name":"t2","schedule":"*/15 * * * *","enabled":false}]}`},
		{"POST", "/v1/tasks/app/timers", `{"schedule":"0 22 * * *"}`, 201, `{"name":"t1","schedule":"0 22 * * *","enabled":true}`},
	}
	for _, s := range steps {
		status, body := e.taskCall(t, s.method, s.path, s.body, nil)
		if status != s.status || !strings.Contains(body, s.want) {
			t.Errorf("%s %s %s = %d %s, want %d with %s", s.method, s.path, s.body, status, body, s.status, s.want)
		}
	}
	stored, err := e.st.Task(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.GetUpdatedAt().AsTime(); !got.Equal(testNow) {
		t.Errorf("task UpdatedAt = %s, want the time of the last timer change %s", got, testNow)
	}
}

func TestTimerChangeStampsTask(t *testing.T) {
	now := testNow
	e := newEnv(t, Config{Now: func() time.Time { return now }})
	e.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git"}`)
	for i, step := range []struct{ method, path, body string }{
		{"POST", "/v1/tasks/app/timers", `{"schedule":"0 3 * * *"}`},
		{"PATCH", "/v1/tasks/app/timers/t1", `{"schedule":"0 4 * * *"}`},
		{"DELETE", "/v1/tasks/app/timers/t1", ""},
	} {
		now = testNow.Add(time.Duration(i+1) * time.Minute)
		if status, body := e.taskCall(t, step.method, step.path, step.body, nil); status/100 != 2 {
			t.Fatalf("%s %s = %d %s", step.method, step.path, status, body)
		}
		stored, err := e.st.Task(t.Context(), "app")
		if err != nil || !stored.GetUpdatedAt().AsTime().Equal(now) {
			t.Errorf("after %s %s: task UpdatedAt = %v (%v), want %s: the scheduler catches up only after it",
				step.method, step.path, stored.GetUpdatedAt(), err, now)
		}
	}
}

func TestClientTimers(t *testing.T) {
	e := newEnv(t, Config{Token: "kiln-token"})
	c := NewClient(e.url, "kiln-token")
	ctx := t.Context()
	if _, err := c.CreateTask(ctx, Task{Name: "app", Context: "https://github.com/acme/app.git",
		Timers: []Timer{{Schedule: "0 21 * * *"}}}); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	no := false
	added, err := c.AddTimer(ctx, "app", Timer{Name: "timer2", Schedule: "30 10 * * *", Enabled: &no})
	if err != nil || added.Name != "timer2" || added.Enabled == nil || *added.Enabled {
		t.Errorf("AddTimer(timer2) = %+v, %v; want it saved disabled", added, err)
	}
	if _, err := c.AddTimer(ctx, "app", Timer{Name: "timer2", Schedule: "0 1 * * *"}); proto.ErrorCode(err) != proto.Conflict {
		t.Errorf("AddTimer of a name taken: error = %v, want conflict", err)
	}
	if _, err := c.AddTimer(ctx, "app", Timer{Schedule: "@every 1h"}); proto.ErrorCode(err) != proto.Invalid ||
		!strings.Contains(err.Error(), "@every 1h") {
		t.Errorf("AddTimer(@every 1h): error = %v, want invalid naming the spec", err)
	}
	schedule, yes := "30 11 * * *", true
	updated, err := c.UpdateTimer(ctx, "app", "timer2", TimerPatch{Schedule: &schedule, Enabled: &yes})
	if err != nil || updated.Schedule != schedule || !*updated.Enabled {
		t.Errorf("UpdateTimer(timer2) = %+v, %v; want the new schedule, enabled", updated, err)
	}
	if err := c.RemoveTimer(ctx, "app", "t1"); err != nil {
		t.Errorf("RemoveTimer(t1): %v", err)
	}
	if err := c.RemoveTimer(ctx, "app", "t1"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("RemoveTimer(t1) again: error = %v, want not found", err)
	}
	timers, err := c.Timers(ctx, "app")
	if err != nil || len(timers) != 1 || timers[0].Name != "timer2" || timers[0].Schedule != schedule {
		t.Errorf("Timers(app) = %+v, %v; want [timer2]", timers, err)
	}
	if _, err := c.Timers(ctx, "nope"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("Timers(nope): error = %v, want not found", err)
	}
}
