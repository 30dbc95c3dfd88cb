package taskfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// testData is the data most tests load files with.
func testData() Data {
	return Data{
		Run: RunInfo{ID: "k7", Commit: "abc123", Branch: "main", Registry: "127.0.0.1:5000", Date: "20260123-142501z",
			OS: "linux", Architecture: "amd64", TaskName: "web", TriggeredBy: "commit"},
		Values:  map[string]string{"tag": "v2", "env": "prod"},
		Secrets: map[string]string{"token": "s3cr3t-value", "other": "hunter2"},
	}
}

// mustLoad loads src with testData and fails the test on an error.
func mustLoad(t *testing.T, src string) *File {
	t.Helper()
	f, err := Load([]byte(src), "acb.yaml", testData())
	if err != nil {
		t.Fatalf("Load() = %v, want no error", err)
	}
	return f
}

// wantError checks that err is an *Error of kind proto.Invalid at line, naming field, with msg in its text.
// A line of 0 or a field of "" is not checked.
func wantError(t *testing.T, err error, line int, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want one at line %d, field %q, saying %q", line, field, msg)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %T %v, want an *Error", err, err)
	}
	if got := proto.ErrorCode(err); got != proto.Invalid {
		t.Errorf("ErrorCode(%v) = %q, want %q", err, got, proto.Invalid)
	}
	if line != 0 && e.Line != line {
		t.Errorf("error %q: Line = %d, want %d", err, e.Line, line)
	}
	if field != "" && e.Field != field {
		t.Errorf("error %q: Field = %q, want %q", err, e.Field, field)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error = %q, want it to say %q", err, msg)
	}
}
