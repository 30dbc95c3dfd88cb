package taskfile

import (
	"reflect"
	"testing"
	"time"
)

func TestStepDefaults(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(*testing.T, *File)
	}{
		{"ACR's timeouts", "steps:\n  - cmd: a\n", func(t *testing.T, f *File) {
			s := f.Steps[0]
			if f.StepTimeout != 10*time.Minute || s.Timeout != 10*time.Minute || s.RetryDelay != 5*time.Second || s.StartDelay != 0 {
				t.Errorf("StepTimeout, Timeout, RetryDelay, StartDelay = %v, %v, %v, %v, want 10m, 10m, 5s, 0",
					f.StepTimeout, s.Timeout, s.RetryDelay, s.StartDelay)
			}
		}},
		{"zero is the default", "stepTimeout: 0\nsteps:\n  - cmd: a\n    timeout: 0\n    retryDelay: 0\n", func(t *testing.T, f *File) {
			if s := f.Steps[0]; s.Timeout != 10*time.Minute || s.RetryDelay != 5*time.Second {
				t.Errorf("Timeout, RetryDelay = %v, %v, want 10m, 5s", s.Timeout, s.RetryDelay)
			}
		}},
		{"stepTimeout is every step's", "stepTimeout: 60\nsteps:\n  - cmd: a\n  - cmd: b\n    timeout: 30\n", func(t *testing.T, f *File) {
			if a, b := f.Steps[0].Timeout, f.Steps[1].Timeout; a != time.Minute || b != 30*time.Second {
				t.Errorf("Timeouts = %v, %v, want 1m, 30s", a, b)
			}
		}},
		{"the longest", "stepTimeout: 28800\nsteps:\n  - cmd: a\n    startDelay: 3600\n    retries: 10\n    retryDelay: 3600\n", func(t *testing.T, f *File) {
			s := f.Steps[0]
			if s.Timeout != 8*time.Hour || s.StartDelay != time.Hour || s.Retries != 10 || s.RetryDelay != time.Hour {
				t.Errorf("Timeout, StartDelay, Retries, RetryDelay = %v, %v, %d, %v", s.Timeout, s.StartDelay, s.Retries, s.RetryDelay)
			}
		}},
		{"working directories", "workingDirectory: /src\nsteps:\n  - cmd: a\n  - cmd: b\n    workingDirectory: /other\n" +
			"  - cmd: c\n    workingDirectory: rel\n  - cmd: d\n    disableWorkingDirectoryOverride: true\n" +
			"  - cmd: e\n    disableWorkingDirectoryOverride: true\n    workingDirectory: /mine\n  - build: .\n  - push: [x]\n",
			func(t *testing.T, f *File) {
				var got []string
				for _, s := range f.Steps {
					got = append(got, s.WorkingDirectory)
				}
				if want := []string{"/src", "/other", "/workspace/rel", "", "/mine", "/src", ""}; !reflect.DeepEqual(got, want) {
					t.Errorf("WorkingDirectory = %q, want %q", got, want)
				}
			}},
		{"the workspace by default", "steps:\n  - cmd: a\n", func(t *testing.T, f *File) {
			if got := f.Steps[0].WorkingDirectory; got != Workspace {
				t.Errorf("WorkingDirectory = %q, want %q", got, Workspace)
			}
		}},
		{"env merged", "env: [A=1, B=2, A=3]\nsteps:\n  - cmd: a\n    env: [B=step, C=]\n  - cmd: b\n", func(t *testing.T, f *File) {
			if got, want := f.Steps[0].Env, []string{"A=3", "B=step", "C="}; !reflect.DeepEqual(got, want) {
				t.Errorf("Steps[0].Env = %q, want %q", got, want)
			}
			if got, want := f.Steps[1].Env, []string{"A=3", "B=2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("Steps[1].Env = %q, want %q", got, want)
			}
		}},
		{"push deduplicated", "steps:\n  - push: [a:1, b, a:1]\n", func(t *testing.T, f *File) {
			if got, want := f.Steps[0].Push, []string{"a:1", "b"}; !reflect.DeepEqual(got, want) {
				t.Errorf("Push = %q, want %q", got, want)
			}
		}},
		{"numbers written otherwise", "stepTimeout: 0x3c\nsteps:\n  - cmd: a\n    retries: 0o2\n", func(t *testing.T, f *File) {
			if f.StepTimeout != time.Minute || f.Steps[0].Retries != 2 {
				t.Errorf("StepTimeout, Retries = %v, %d, want 1m, 2", f.StepTimeout, f.Steps[0].Retries)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustLoad(t, tt.src))
		})
	}
}

func TestStepValueErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"negative timeout", "steps:\n  - cmd: a\n    timeout: -1\n", 3, "steps[0].timeout", "-1 is out of range: it must be 0 to 28800 seconds"},
		{"timeout over 8 hours", "steps:\n  - cmd: a\n    timeout: 28801\n", 3, "steps[0].timeout", "out of range"},
		{"timeout in words", "steps:\n  - cmd: a\n    timeout: 10m\n", 3, "steps[0].timeout", `must be a whole number of seconds, not "10m"`},
		{"timeout quoted", "steps:\n  - cmd: a\n    timeout: \"10\"\n", 3, "steps[0].timeout", "must be a whole number of seconds"},
		{"timeout fraction", "steps:\n  - cmd: a\n    timeout: 1.5\n", 3, "steps[0].timeout", "must be a whole number"},
		{"stepTimeout out of range", "stepTimeout: 100000\nsteps:\n  - cmd: a\n", 1, "stepTimeout", "out of range"},
		{"stepTimeout a list", "stepTimeout: [1]\nsteps:\n  - cmd: a\n", 1, "stepTimeout", "not a list"},
		{"startDelay over an hour", "steps:\n  - cmd: a\n    startDelay: 3601\n", 3, "steps[0].startDelay", "it must be 0 to 3600 seconds"},
		{"retryDelay negative", "steps:\n  - cmd: a\n    retryDelay: -5\n", 3, "steps[0].retryDelay", "out of range"},
		{"too many retries", "steps:\n  - cmd: a\n    retries: 11\n", 3, "steps[0].retries", "it must be 0 to 10 retries"},
		{"huge number", "steps:\n  - cmd: a\n    retries: 99999999999999999999\n", 3, "steps[0].retries", "must be a whole number"},
		{"ignoreErrors not a bool", "steps:\n  - cmd: a\n    ignoreErrors: yes\n", 3, "steps[0].ignoreErrors", `must be true or false, not "yes"`},
		{"env without =", "steps:\n  - cmd: a\n    env:\n      - A=1\n      - B\n", 5, "steps[0].env[1]", "must be KEY=VALUE"},
		{"env empty key", "env: [\"=1\"]\nsteps:\n  - cmd: a\n", 1, "env[0]", "the key is empty"},
		{"env a mapping", "env: {A: 1}\nsteps:\n  - cmd: a\n", 1, "env", "must be a list"},
		{"env entry a mapping", "env:\n  - A: 1\nsteps:\n  - cmd: a\n", 2, "env[0]", "must be a single value"},
		{"push a string", "steps:\n  - push: app:1\n", 2, "steps[0].push", `must be a list of images, as push: ["app:1"]`},
		{"push empty", "steps:\n  - push: []\n", 2, "steps[0].push", "lists no images"},
		{"push bad tag", "steps:\n  - push:\n      - ok:1\n      - Bad:1\n", 4, "steps[0].push[1]", "is not an image tag"},
		{"step not a mapping", "steps:\n  - cmd a\n", 2, "steps[0]", "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}
