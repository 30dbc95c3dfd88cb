package scheduler

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// TestBuildRefusesHostNetwork: a run that asks for the host's network, on a worker that does not allow it, ends
// Failed with a reason naming the flag, before anything of it is fetched or built.
func TestBuildRefusesHostNetwork(t *testing.T) {
	tests := []struct {
		name    string
		network string
		want    string
	}{
		{name: "host", network: proto.NetworkHost, want: "--allow-host-network"},
		{name: "unknown", network: "bridge", want: "default, host, none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Worker{WorkDir: t.TempDir()} // no store, no builder: the run must not get as far as either
			run := &proto.Run{Id: "k1", Spec: &proto.BuildSpec{ContextObject: "k1", Network: tt.network}}
			var log bytes.Buffer
			_, err := w.build(context.Background(), run, newRunLog(&log))
			out := outcomeOf(context.Background(), err, time.Hour)
			if out.status != proto.Status_FAILED || !strings.Contains(out.message, tt.want) {
				t.Errorf("build(network %q) ends %s %q, want Failed naming %s", tt.network, out.status, out.message, tt.want)
			}
		})
	}
}
