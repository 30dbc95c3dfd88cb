package taskfile

import (
	"testing"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		version string
	}{
		{"none", "steps:\n  - cmd: a\n", "v1.0.0"},
		{"v1.0.0", "version: v1.0.0\nsteps:\n  - cmd: a\n", "v1.0.0"},
		{"preview", "version: 1.0-preview-1\nsteps:\n  - cmd: a\n", "1.0-preview-1"},
		{"v1.1.0 quoted with a comment", "# a task\nversion: \"v1.1.0\" # aliases\nsteps:\n  - cmd: a\n", "v1.1.0"},
		{"any case", "version: V1.1.0\nsteps:\n  - cmd: a\n", "V1.1.0"},
		{"after the steps", "steps:\n  - cmd: a\nversion: v1.1.0\n", "v1.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustLoad(t, tt.src).Version; got != tt.version {
				t.Errorf("Version = %q, want %q", got, tt.version)
			}
		})
	}
}

func TestVersionErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"unknown", "version: v2.0.0\nsteps:\n  - cmd: a\n", 1, `unknown version "v2.0.0"`},
		{"later 1.x", "\nversion: v1.2.0\nsteps:\n  - cmd: a\n", 2, "1.0-preview-1, v1.0.0 or v1.1.0"},
		{"no v", "version: 1.1.0\nsteps:\n  - cmd: a\n", 1, "did you mean v1.1.0?"},
		{"templated", "version: \"{{.Values.v}}\"\nsteps:\n  - cmd: a\n", 1, "unknown version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, "version", tt.msg)
		})
	}
}
