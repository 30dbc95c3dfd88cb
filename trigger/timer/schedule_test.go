package timer

import (
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 3, 4, 10, 7, 30, 0, time.UTC) // a Wednesday
	tests := []struct {
		name string
		spec string
		next time.Time // the first occurrence after from
	}{
		{"every minute", "* * * * *", time.Date(2026, 3, 4, 10, 8, 0, 0, time.UTC)},
		{"every five minutes", "*/5 * * * *", time.Date(2026, 3, 4, 10, 10, 0, 0, time.UTC)},
		{"spaces around and between", "  0   12 * * *  ", time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)},
		{"weekday names", "30 9 * * Mon-Fri", time.Date(2026, 3, 5, 9, 30, 0, 0, time.UTC)},
		{"month names", "30 9 * Jan Mon", time.Date(2027, 1, 4, 9, 30, 0, 0, time.UTC)},
		{"ranges and lists", "20,40 1-3 * * *", time.Date(2026, 3, 5, 1, 20, 0, 0, time.UTC)},
		{"question mark", "0 0 1 * ?", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"leap day", "0 0 29 2 *", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"@hourly", "@hourly", time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC)},
		{"@daily", "@daily", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"@midnight", "@midnight", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)},
		{"@weekly", "@weekly", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)},
		{"@monthly", "@monthly", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"@yearly", "@yearly", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@annually in capitals", "@ANNUALLY", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.spec, err)
			}
			if got := s.Next(from); !got.Equal(tt.next) || got.Location() != time.UTC {
				t.Errorf("ParseSchedule(%q).Next(%s) = %s, want %s in UTC", tt.spec, from, got, tt.next)
			}
			if s.String() != strings.TrimSpace(tt.spec) {
				t.Errorf("ParseSchedule(%q).String() = %q, want the spec trimmed", tt.spec, s.String())
			}
		})
	}
}

func TestParseScheduleIsUTC(t *testing.T) {
	s, err := ParseSchedule("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	tokyo := time.FixedZone("JST", 9*3600)
	from := time.Date(2026, 3, 4, 8, 0, 0, 0, tokyo) // 23:00 UTC the day before
	want := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	if got := s.Next(from); !got.Equal(want) {
		t.Errorf("Next(%s) = %s, want %s", from, got, want)
	}
}

func TestParseScheduleRefuses(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want string // in the error
	}{
		{"empty", "", "needs a schedule"},
		{"blank", "   ", "needs a schedule"},
		{"@every", "@every 1h", "an interval, not a cron expression"},
		{"unknown shorthand", "@reboot", "the shorthands are"},
		{"seconds field", "0 */5 * * * *", "has 6 fields"},
		{"four fields", "*/5 * * *", "has 4 fields"},
		{"seven fields", "0 0 12 * * ? 2026", "has 7 fields"},
		{"TZ prefix", "TZ=Europe/Paris 0 9 * * *", "Kiln's timers are UTC"},
		{"CRON_TZ prefix", "CRON_TZ=UTC 0 9 * * *", "Kiln's timers are UTC"},
		{"TZ prefix alone", "TZ=UTC", "Kiln's timers are UTC"},
		{"minute out of range", "60 * * * *", "60"},
		{"hour out of range", "0 24 * * *", "24"},
		{"weekday out of range", "0 0 * * 7", "7"},
		{"not a number", "a * * * *", "\"a\""},
		{"zero step", "*/0 * * * *", "step"},
		{"backwards range", "0 5-1 * * *", "5-1"},
		{"never", "0 0 30 2 *", "never comes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchedule(tt.spec)
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSchedule(%q) = %v, want an invalid error with %q", tt.spec, err, tt.want)
			}
			if spec := strings.TrimSpace(tt.spec); spec != "" && !strings.Contains(err.Error(), spec) {
				t.Errorf("ParseSchedule(%q) = %v, want the error to name the spec", tt.spec, err)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	s, err := ParseSchedule("*/5 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 4, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		from, to time.Time
		want     time.Time // zero for none
	}{
		{"none in the span", at(10, 1), at(10, 4), time.Time{}},
		{"the end is in", at(10, 1), at(10, 5), at(10, 5)},
		{"the start is out", at(10, 5), at(10, 9), time.Time{}},
		{"the latest of several", at(10, 1), at(10, 17), at(10, 15)},
		{"an empty span", at(10, 5), at(10, 5), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Latest(tt.from, tt.to)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("Latest(%s, %s) = %s, %v; want %s", tt.from, tt.to, got, ok, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		timer *proto.Timer
		want  string // in the error; "" for none
	}{
		{"good", &proto.Timer{Name: "nightly", Schedule: "0 3 * * *"}, ""},
		{"disabled is still checked", &proto.Timer{Name: "t1", Schedule: "0 3 * *", Disabled: true}, "timer t1: schedule \"0 3 * *\""},
		{"no name", &proto.Timer{Schedule: "0 3 * * *"}, "not a valid timer name"},
		{"a slash in the name", &proto.Timer{Name: "a/b", Schedule: "0 3 * * *"}, "not a valid timer name"},
		{"a leading dash", &proto.Timer{Name: "-a", Schedule: "0 3 * * *"}, "not a valid timer name"},
		{"too long", &proto.Timer{Name: strings.Repeat("t", 51), Schedule: "0 3 * * *"}, "not a valid timer name"},
		{"bad schedule", &proto.Timer{Name: "nightly", Schedule: "@every 24h"}, "timer nightly: schedule \"@every 24h\" is an interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.timer)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check(%v) = %v, want nil", tt.timer, err)
			case tt.want != "" && (proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check(%v) = %v, want an invalid error with %q", tt.timer, err, tt.want)
			}
		})
	}
}
