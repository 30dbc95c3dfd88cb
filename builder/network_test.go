package builder

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

func TestSolveOptNetwork(t *testing.T) {
	tests := []struct {
		name      string
		network   string
		wantAttr  string // force-network-mode; "" for none set
		wantAllow []string
		wantErr   bool
	}{
		{name: "sandbox", network: ""},
		{name: "default", network: proto.NetworkDefault},
		{name: "none", network: proto.NetworkNone, wantAttr: "none"},
		{name: "host", network: proto.NetworkHost, wantAttr: "host", wantAllow: []string{"network.host"}},
		{name: "unknown", network: "bridge", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{ContextDir: t.TempDir(), OutputDir: t.TempDir(), Network: tt.network}
			opt, err := solveOpt(req, nil)
			if tt.wantErr {
				if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.network) {
					t.Errorf("solveOpt(Network %q) = %v, want an error of kind invalid naming it", tt.network, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("solveOpt(Network %q) = %v", tt.network, err)
			}
			if got := opt.FrontendAttrs["force-network-mode"]; got != tt.wantAttr {
				t.Errorf("solveOpt(Network %q) force-network-mode = %q, want %q", tt.network, got, tt.wantAttr)
			}
			if !slices.Equal(opt.AllowedEntitlements, tt.wantAllow) {
				t.Errorf("solveOpt(Network %q) AllowedEntitlements = %q, want %q", tt.network, opt.AllowedEntitlements, tt.wantAllow)
			}
		})
	}
}

// TestNetworkNone runs a RUN step and a command with no network on the real buildkitd: each sees loopback only.
func TestNetworkNone(t *testing.T) {
	b := newBuilder(t)
	base, _ := pushBase(t, b, newRegistry(t))
	const links = "ip -o link | cut -d: -f2 | tr -d ' \\n'; echo ."

	_, _, log, err := build(t, b, map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN echo " + strconv.FormatInt(time.Now().UnixNano(), 36) + "; echo links=$(" + links + ")\n",
	}, Request{Network: proto.NetworkNone})
	if err != nil {
		t.Fatalf("Build(Network none) = %v\n%s", err, log)
	}
	if !strings.Contains(log, "links=lo.") {
		t.Errorf("Build(Network none) log has no \"links=lo.\", want loopback only:\n%s", log)
	}

	code, out, err := execLog(t, b, ExecRequest{Image: base, Network: proto.NetworkNone, Args: []string{"sh", "-c", links}})
	if err != nil || code != 0 {
		t.Fatalf("Exec(Network none) = %d, %v\n%s", code, err, out)
	}
	if out != "lo.\n" {
		t.Errorf("Exec(Network none) log = %q, want \"lo.\\n\": loopback only", out)
	}
}
