package proto

import (
	"strings"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		allowHost bool
		want      string
		wantErr   []string // what the error names; nil for none
	}{
		{name: "empty", in: "", want: ""},
		{name: "default", in: "default", want: ""},
		{name: "none", in: "none", want: "none"},
		{name: "host allowed", in: "host", allowHost: true, want: "host"},
		{name: "host refused", in: "host", wantErr: []string{"network", "--allow-host-network"}},
		{name: "unknown", in: "bridge", allowHost: true, wantErr: []string{"network", `"bridge"`, "default, host, none"}},
		{name: "case matters", in: "Host", allowHost: true, wantErr: []string{"default, host, none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetwork("network", tt.in, tt.allowHost)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Errorf("ParseNetwork(%q, %t) = %q, %v, want %q", tt.in, tt.allowHost, got, err, tt.want)
				}
				return
			}
			if ErrorCode(err) != Invalid {
				t.Fatalf("ParseNetwork(%q, %t) = %q, %v, want an error of kind %s", tt.in, tt.allowHost, got, err, Invalid)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseNetwork(%q, %t) = %q, want it to name %s", tt.in, tt.allowHost, err, w)
				}
			}
		})
	}
}
