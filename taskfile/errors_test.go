package taskfile

import (
	"errors"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"everything", Error{File: "acb.yaml", Line: 7, Field: "steps[1].isolation", Msg: "not supported"},
			"acb.yaml:7: steps[1].isolation: not supported"},
		{"no field", Error{File: "acb.yaml", Line: 3, Msg: "not valid YAML"}, "acb.yaml:3: not valid YAML"},
		{"no line", Error{File: "acb.yaml", Field: "steps", Msg: "missing"}, "acb.yaml: steps: missing"},
		{"no file", Error{Field: "cmd", Msg: "is empty"}, "cmd: is empty"},
		{"line but no file", Error{Line: 2, Msg: "bad"}, "line 2: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorKind(t *testing.T) {
	var err error = &Error{File: "acb.yaml", Line: 1, Msg: "bad"}
	if got := proto.ErrorCode(err); got != proto.Invalid {
		t.Errorf("ErrorCode() = %q, want %q", got, proto.Invalid)
	}
	var pe *proto.Error
	if !errors.As(err, &pe) || pe.Message != "acb.yaml:1: bad" {
		t.Errorf("errors.As(*proto.Error) = %v, want the message acb.yaml:1: bad", pe)
	}
}

func TestRedact(t *testing.T) {
	secrets := map[string]string{"a": "pass", "b": "password", "empty": ""}
	err := redact(&Error{File: "f", Msg: "password and pass"}, secrets)
	if got, want := err.Error(), "f: [secret] and [secret]"; got != want {
		t.Errorf("redact() = %q, want %q", got, want)
	}
}
