package builder

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/kilnbuild/kiln/proto"
	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
)

// solveError gives a failed solve its kind: the caller's cancellation and a buildkitd that cannot be reached or
// was lost are proto.Unavailable (the build may work later, elsewhere); everything else BuildKit reports is the
// build's own failure, proto.Invalid, since running the same build again fails the same way.
func solveError(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return proto.Errorf(proto.Unavailable, "building: stopped: %w", context.Cause(ctx))
	}
	switch grpcerrors.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return proto.Errorf(proto.Unavailable, "building: buildkitd at %s: %s", addr, cause(err))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return proto.Errorf(proto.Unavailable, "building: buildkitd at %s: %s", addr, cause(err))
	}
	return proto.Errorf(proto.Invalid, "%s", cause(err))
}

// grpcWrapping matches what gRPC puts before a status message.
var grpcWrapping = regexp.MustCompile(`rpc error: code = \w+ desc = `)

// clientWrapping is what the BuildKit client puts before the daemon's message.
var clientWrapping = []string{"failed to solve: ", "failed to list workers: "}

// cause is BuildKit's own message in err, on one line: without the client's "failed to solve: " and gRPC's
// "rpc error: code = ... desc = " wrapping, and with the lines of a multi-line message joined by "; ".
func cause(err error) string {
	msg := grpcWrapping.ReplaceAllString(err.Error(), "")
	for trimmed := ""; trimmed != msg; {
		trimmed = msg
		for _, w := range clientWrapping {
			msg = strings.TrimPrefix(msg, w)
		}
	}
	var lines []string
	for line := range strings.Lines(msg) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}
