package basepoll

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{name: "none", header: "", want: 0},
		{name: "seconds", header: "120", want: 2 * time.Minute},
		{name: "seconds with spaces", header: " 7 ", want: 7 * time.Second},
		{name: "zero", header: "0", want: 0},
		{name: "negative", header: "-5", want: 0},
		{name: "huge", header: "99999999999999999", want: maxRetryAfter},
		{name: "date", header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "past date", header: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "far date", header: now.Add(100 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter},
		{name: "garbage", header: "soon", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tt.header, got, tt.want)
			}
		})
	}
}
