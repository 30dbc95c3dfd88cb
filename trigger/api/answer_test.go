package api

import (
	"errors"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestErrorAnswer(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   proto.Code
		msg    string
	}{
		{"invalid", proto.Errorf(proto.Invalid, "bad tag"), 400, proto.Invalid, "bad tag"},
		{"not found", proto.Errorf(proto.NotFound, "no run k1"), 404, proto.NotFound, "no run k1"},
		{"conflict", proto.Errorf(proto.Conflict, "ended"), 409, proto.Conflict, "ended"},
		{"unauthorized", proto.Errorf(proto.Unauthorized, "token"), 401, proto.Unauthorized, "token"},
		{"too large", proto.Errorf(proto.TooLarge, "big"), 413, proto.TooLarge, "big"},
		{"unavailable", proto.Errorf(proto.Unavailable, "nats down"), 503, proto.Unavailable, "nats down"},
		{"internal keeps its detail", proto.Errorf(proto.Internal, "nil map in %s", "x"), 500, proto.Internal, internalMessage},
		{"a plain error is internal", errors.New("secret detail"), 500, proto.Internal, internalMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := errorAnswer(tt.err)
			if status != tt.status || body.Error.Code != tt.code || body.Error.Message != tt.msg {
				t.Errorf("errorAnswer(%v) = %d %+v, want %d %s %q", tt.err, status, body, tt.status, tt.code, tt.msg)
			}
			if st := statusOf(tt.code); codeForStatus(st) != tt.code {
				t.Errorf("codeForStatus(%d) = %s, want %s", st, codeForStatus(st), tt.code)
			}
		})
	}
}
