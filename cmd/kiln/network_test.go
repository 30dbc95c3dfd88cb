package main

import (
	"strings"
	"testing"
)

// TestNetworkFlag: --network takes default, host or none, for task create and update alike.
func TestNetworkFlag(t *testing.T) {
	const repo = "https://github.com/acme/app.git"
	tests := []struct {
		name    string
		network string
		wantErr string
	}{
		{name: "default", network: "default"},
		{name: "host", network: "host"},
		{name: "none", network: "none"},
		{name: "unknown", network: "bridge", wantErr: `"bridge" is not one of default, host, none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, task, err := parseTaskCreate([]string{"app", "--context", repo, "--network", tt.network})
			_, _, patch, uerr := parseTaskUpdate([]string{"app", "--network", tt.network})
			if tt.wantErr != "" {
				for _, e := range []error{err, uerr} {
					if e == nil || !strings.Contains(e.Error(), tt.wantErr) {
						t.Errorf("parsing --network %s = %v, want an error saying %s", tt.network, e, tt.wantErr)
					}
				}
				return
			}
			if err != nil || task.Network != tt.network {
				t.Errorf("parseTaskCreate(--network %s) = network %q, %v, want %q", tt.network, task.Network, err, tt.network)
			}
			if uerr != nil || patch.Network == nil || *patch.Network != tt.network {
				t.Errorf("parseTaskUpdate(--network %s) = network %v, %v, want %q", tt.network, patch.Network, uerr, tt.network)
			}
		})
	}
	if _, _, patch, err := parseTaskUpdate([]string{"app", "--timeout", "60"}); err != nil || patch.Network != nil {
		t.Errorf("parseTaskUpdate without --network = network %v, %v, want it left unset", patch.Network, err)
	}
}
