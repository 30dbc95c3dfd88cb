package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/timer"
)

// Timer is one of a task's timers as the API shows it, and the body of POST /v1/tasks/{name}/timers that adds
// one. Schedule is five cron fields (minute hour day-of-month month day-of-week), or @hourly, @daily and the
// like, in UTC: at most once a minute, as trigger/timer.ParseSchedule reads it. A timer sent without a name gets
// the first of t1, t2, ... that the task does not use, as ACR names them. Enabled nil means true. A task's
// timers must differ in name and in schedule.
type Timer struct {
	Name     string `json:"name,omitempty"`
	Schedule string `json:"schedule"`
	Enabled  *bool  `json:"enabled,omitempty"`
}

// TimerPatch is the body of PATCH /v1/tasks/{name}/timers/{timer}: each field that is set replaces the timer's.
// The name cannot change.
type TimerPatch struct {
	Schedule *string `json:"schedule,omitempty"`
	Enabled  *bool   `json:"enabled,omitempty"`
}

// timerList is the answer of GET /v1/tasks/{name}/timers.
type timerList struct {
	Timers []Timer `json:"timers"`
}

// timerFromProto returns the API's view of the timer t.
func timerFromProto(t *proto.Timer) Timer {
	return Timer{Name: t.GetName(), Schedule: t.GetSchedule(), Enabled: boolPtr(!t.GetDisabled())}
}

// timersFromProto returns the API's view of ts, nil for none.
func timersFromProto(ts []*proto.Timer) []Timer {
	var out []Timer
	for _, t := range ts {
		out = append(out, timerFromProto(t))
	}
	return out
}

// timersOf checks the timers of a task's create and returns them as stored, each with a name.
func timersOf(req []Timer) ([]*proto.Timer, error) {
	out := make([]*proto.Timer, len(req))
	for i, r := range req {
		if r.Name == "" {
			continue
		}
		if err := timer.CheckName(r.Name); err != nil {
			return nil, err
		}
		if named(out, r.Name) != nil {
			return nil, proto.Errorf(proto.Invalid, "the task has two timers named %s", r.Name)
		}
		out[i] = &proto.Timer{Name: r.Name}
	}
	for i := range req { // once every name given is in, so that a default name never takes one of them
		if out[i] == nil {
			out[i] = &proto.Timer{Name: freeName(out)}
		}
	}
	for i, r := range req {
		if err := setSchedule(out[i], r); err != nil {
			return nil, err
		}
	}
	for _, t := range out {
		if other := sameSchedule(out, t); other != nil {
			return nil, proto.Errorf(proto.Invalid, "timers %s and %s have the same schedule %q: a task's timers must differ",
				t.Name, other.Name, t.Schedule)
		}
	}
	return out, nil
}

// timerOfRequest checks r and returns the timer it stands for, its name left "" when r has none.
func timerOfRequest(r Timer) (*proto.Timer, error) {
	if r.Name != "" {
		if err := timer.CheckName(r.Name); err != nil {
			return nil, err
		}
	}
	t := &proto.Timer{Name: r.Name}
	return t, setSchedule(t, r)
}

// setSchedule checks r's schedule and sets it, and r's Enabled, on t. An error names the timer.
func setSchedule(t *proto.Timer, r Timer) error {
	sched, err := timer.ParseSchedule(r.Schedule)
	if err != nil {
		name := t.Name
		if name == "" {
			name = "(the new one)"
		}
		return proto.Errorf(proto.Invalid, "timer %s: %w", name, err)
	}
	t.Schedule, t.Disabled = sched.String(), !or(r.Enabled, true)
	return nil
}

// named returns the timer of ts named name, or nil.
func named(ts []*proto.Timer, name string) *proto.Timer {
	if i := slices.IndexFunc(ts, func(t *proto.Timer) bool { return t.GetName() == name }); i >= 0 {
		return ts[i]
	}
	return nil
}

// sameSchedule returns the timer of ts other than t with t's schedule, spaces aside, or nil.
func sameSchedule(ts []*proto.Timer, t *proto.Timer) *proto.Timer {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, o := range ts {
		if o != t && norm(o.GetSchedule()) == norm(t.GetSchedule()) {
			return o
		}
	}
	return nil
}

// freeName returns the first of t1, t2, ... that no timer of ts is named.
func freeName(ts []*proto.Timer) string {
	for i := 1; ; i++ {
		if name := "t" + strconv.Itoa(i); named(ts, name) == nil {
			return name
		}
	}
}

// listTimers is GET /v1/tasks/{name}/timers: the task's timers, in the order they were added.
func (s *Server) listTimers(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	t, err := s.st.Task(r.Context(), name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	out := timerList{Timers: timersFromProto(t.GetTimers())}
	if out.Timers == nil {
		out.Timers = []Timer{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addTimer is POST /v1/tasks/{name}/timers: it adds the Timer of the body to the task and answers 201 with it.
// A name or a schedule the task's timers have already is a conflict.
func (s *Server) addTimer(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var req Timer
	if err := decodeJSON(r.Body, &req, "the body", "a valid timer"); err != nil {
		return err
	}
	add, err := timerOfRequest(req)
	if err != nil {
		return err
	}
	now := timestamppb.New(s.cfg.Now().UTC())
	var added *proto.Timer
	_, err = s.st.UpdateTask(r.Context(), name, func(t *proto.Task) error {
		tm := &proto.Timer{Name: add.Name, Schedule: add.Schedule, Disabled: add.Disabled}
		if tm.Name == "" {
			tm.Name = freeName(t.Timers)
		}
		if named(t.Timers, tm.Name) != nil {
			return proto.Errorf(proto.Conflict, "task %s has a timer named %s already", name, tm.Name)
		}
		if other := sameSchedule(t.Timers, tm); other != nil {
			return proto.Errorf(proto.Conflict, "timer %s of task %s has the schedule %q already: a task's timers must differ",
				other.Name, name, tm.Schedule)
		}
		t.Timers = append(t.Timers, tm)
		t.UpdatedAt = now
		added = tm
		return nil
	})
	if err != nil {
		return storeError(err, "adding a timer to task %s", name)
	}
	writeJSON(w, http.StatusCreated, timerFromProto(added))
	return nil
}

// updateTimer is PATCH /v1/tasks/{name}/timers/{timer}: the fields the TimerPatch sets change, and the answer
// is the timer.
func (s *Server) updateTimer(w http.ResponseWriter, r *http.Request) error {
	name, timerName := r.PathValue("name"), r.PathValue("timer")
	var p TimerPatch
	if err := decodeJSON(r.Body, &p, "the body", "a valid timer update"); err != nil {
		return err
	}
	var schedule string
	if p.Schedule != nil {
		sched, err := timer.ParseSchedule(*p.Schedule)
		if err != nil {
			return proto.Errorf(proto.Invalid, "timer %s: %w", timerName, err)
		}
		schedule = sched.String()
	}
	now := timestamppb.New(s.cfg.Now().UTC())
	var updated *proto.Timer
	_, err := s.st.UpdateTask(r.Context(), name, func(t *proto.Task) error {
		tm := named(t.Timers, timerName)
		if tm == nil {
			return proto.Errorf(proto.NotFound, "task %s has no timer named %s", name, timerName)
		}
		if p.Schedule != nil {
			tm.Schedule = schedule
			if other := sameSchedule(t.Timers, tm); other != nil {
				return proto.Errorf(proto.Conflict, "timer %s of task %s has the schedule %q already: a task's timers must differ",
					other.Name, name, tm.Schedule)
			}
		}
		if p.Enabled != nil {
			tm.Disabled = !*p.Enabled
		}
		t.UpdatedAt = now
		updated = tm
		return nil
	})
	if err != nil {
		return storeError(err, "updating timer %s of task %s", timerName, name)
	}
	writeJSON(w, http.StatusOK, timerFromProto(updated))
	return nil
}

// removeTimer is DELETE /v1/tasks/{name}/timers/{timer}: it removes the timer and answers 204.
func (s *Server) removeTimer(w http.ResponseWriter, r *http.Request) error {
	name, timerName := r.PathValue("name"), r.PathValue("timer")
	now := timestamppb.New(s.cfg.Now().UTC())
	_, err := s.st.UpdateTask(r.Context(), name, func(t *proto.Task) error {
		n := len(t.Timers)
		t.Timers = slices.DeleteFunc(t.Timers, func(tm *proto.Timer) bool { return tm.GetName() == timerName })
		if len(t.Timers) == n {
			return proto.Errorf(proto.NotFound, "task %s has no timer named %s", name, timerName)
		}
		t.UpdatedAt = now
		return nil
	})
	if err != nil {
		return storeError(err, "removing timer %s of task %s", timerName, name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
