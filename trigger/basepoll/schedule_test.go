package basepoll

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		p        *Poller
		failures int
		want     time.Duration
	}{
		{name: "first failure", p: &Poller{}, failures: 1, want: 30 * time.Second},
		{name: "second failure", p: &Poller{}, failures: 2, want: time.Minute},
		{name: "fourth failure", p: &Poller{}, failures: 4, want: 4 * time.Minute},
		{name: "capped at the interval", p: &Poller{}, failures: 5, want: DefaultInterval},
		{name: "many failures", p: &Poller{}, failures: 1000, want: DefaultInterval},
		{name: "own backoff", p: &Poller{Backoff: time.Second, Interval: time.Hour}, failures: 3, want: 4 * time.Second},
		{name: "backoff longer than the interval", p: &Poller{Backoff: time.Hour, Interval: time.Minute}, failures: 1, want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.backoff(tt.failures); got != tt.want {
				t.Errorf("backoff(%d) = %s, want %s", tt.failures, got, tt.want)
			}
		})
	}
}

func TestNextPoll(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		p      *Poller
		lo, hi time.Duration
	}{
		{name: "defaults", p: &Poller{}, lo: DefaultInterval * 9 / 10, hi: DefaultInterval * 11 / 10},
		{name: "own interval and jitter", p: &Poller{Interval: time.Hour, Jitter: 0.5}, lo: 30 * time.Minute, hi: 90 * time.Minute},
		{name: "no jitter", p: &Poller{Interval: time.Minute, Jitter: -1}, lo: time.Minute, hi: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 1000 {
				if d := tt.p.nextPoll(now).Sub(now); d < tt.lo || d > tt.hi {
					t.Fatalf("nextPoll(now) = now + %s, want between %s and %s", d, tt.lo, tt.hi)
				}
			}
		})
	}
}
