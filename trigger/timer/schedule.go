package timer

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kilnbuild/kiln/proto"
)

// Schedule is when a timer fires: a five-field cron expression (minute, hour, day of month, month, day of
// week), read in UTC.
type Schedule struct {
	spec string
	cron *cron.SpecSchedule
}

// parser reads the five fields of standard cron, and nothing else: descriptors are turned into five fields
// first (descriptors), and ParseSchedule refuses time zones and intervals before it.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// descriptors are the cron shorthands Kiln accepts, each the five fields it stands for. @every is not among
// them: an interval is not a time of day, and it would depend on when a process started.
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// cronFields names the five fields, for error messages.
const cronFields = "minute hour day-of-month month day-of-week"

// ParseSchedule reads spec, a five-field cron expression such as "30 9 * * Mon-Fri", or one of @yearly,
// @annually, @monthly, @weekly, @daily, @midnight and @hourly. Times are UTC. A spec that is not one, names a
// time zone (TZ=, CRON_TZ=), is an interval (@every), has a seconds or year field, or never comes is
// proto.Invalid, with the reason.
func ParseSchedule(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	text := spec
	switch {
	case spec == "":
		return nil, proto.Errorf(proto.Invalid, "a timer needs a schedule: five cron fields (%s), such as \"0 3 * * *\"", cronFields)
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return nil, proto.Errorf(proto.Invalid,
			"schedule %q names a time zone, but Kiln's timers are UTC: leave out the prefix and give the times in UTC", spec)
	case strings.HasPrefix(spec, "@every"):
		return nil, proto.Errorf(proto.Invalid,
			"schedule %q is an interval, not a cron expression: give five cron fields (%s), such as \"*/15 * * * *\"", spec, cronFields)
	case strings.HasPrefix(spec, "@"):
		var ok bool
		if text, ok = descriptors[strings.ToLower(spec)]; !ok {
			return nil, proto.Errorf(proto.Invalid,
				"schedule %q is not a cron expression: the shorthands are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly", spec)
		}
	}
	if n := len(strings.Fields(text)); n != 5 {
		return nil, proto.Errorf(proto.Invalid,
			"schedule %q has %d fields, and a timer's has five (%s): no seconds or year", spec, n, cronFields)
	}
	parsed, err := parser.Parse(text)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "schedule %q is not a valid cron expression (%s): %v", spec, cronFields, err)
	}
	sched := parsed.(*cron.SpecSchedule)
	sched.Location = time.UTC
	if sched.Next(time.Now()).IsZero() {
		return nil, proto.Errorf(proto.Invalid, "schedule %q never comes: no date matches it", spec)
	}
	return &Schedule{spec: spec, cron: sched}, nil
}

// Next returns the first occurrence of s after t, in UTC: always on a whole minute.
func (s *Schedule) Next(t time.Time) time.Time {
	return s.cron.Next(t.UTC())
}

// Latest returns the last occurrence of s in (from, to], and false when there is none.
func (s *Schedule) Latest(from, to time.Time) (time.Time, bool) {
	var last time.Time
	for at := s.Next(from); !at.IsZero() && !at.After(to); at = s.Next(at) {
		last = at
	}
	return last, !last.IsZero()
}

// String returns the schedule as it was given, without surrounding spaces.
func (s *Schedule) String() string { return s.spec }

// maxName is the longest timer name, as for a task.
const maxName = 50

// CheckName returns nil when name can name a timer, and otherwise a proto.Invalid error that states the rule:
// 1 to 50 ASCII letters, digits, '-' or '_', the first a letter or digit.
func CheckName(name string) error {
	ok := name != "" && len(name) <= maxName && name[0] != '-' && name[0] != '_'
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			ok = false
		}
	}
	if !ok {
		return proto.Errorf(proto.Invalid,
			"%q is not a valid timer name: a timer name is 1 to 50 ASCII letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// Check returns nil when t is a timer Kiln can keep: a valid name and schedule. Otherwise it is proto.Invalid,
// naming the timer.
func Check(t *proto.Timer) error {
	if err := CheckName(t.GetName()); err != nil {
		return err
	}
	if _, err := ParseSchedule(t.GetSchedule()); err != nil {
		return proto.Errorf(proto.Invalid, "timer %s: %w", t.GetName(), err)
	}
	return nil
}
