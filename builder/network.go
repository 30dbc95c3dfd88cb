package builder

import (
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/entitlements"

	"github.com/kilnbuild/kiln/proto"
)

// netMode is BuildKit's network mode for a request's Network, with the entitlements a solve needs for it.
// "" is BuildKit's sandbox: each step in a network namespace of its own on the daemon's network (an isolated
// bridge, for the buildkitd Kiln supervises). Any other value but proto.NetworkHost and proto.NetworkNone is
// kind proto.Invalid.
func netMode(network string) (pb.NetMode, []string, error) {
	switch network {
	case "", proto.NetworkDefault:
		return llb.NetModeSandbox, nil, nil
	case proto.NetworkNone:
		return llb.NetModeNone, nil, nil
	case proto.NetworkHost:
		return llb.NetModeHost, []string{entitlements.EntitlementNetworkHost.String()}, nil
	}
	return 0, nil, proto.Errorf(proto.Invalid, "the network %q is not one of \"\", %q, %q", network, proto.NetworkHost, proto.NetworkNone)
}

// dockerfileNetwork is the Dockerfile frontend's force-network-mode for mode: it applies to every RUN that
// names no --network of its own. "" leaves the sandbox.
func dockerfileNetwork(mode pb.NetMode) string {
	switch mode {
	case llb.NetModeHost:
		return "host"
	case llb.NetModeNone:
		return "none"
	}
	return ""
}
