package taskfile

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseBuild(t *testing.T) {
	none := map[string]string{}
	tests := []struct {
		name string
		in   string
		env  []string
		want *Build
	}{
		{"context only", ".", nil, &Build{BuildArgs: none, Labels: none, Context: "."}},
		{"tags and file", "-t a:1 --tag b:2 --image c -f sub/Dockerfile ctx", nil,
			&Build{Tags: []string{"a:1", "b:2", "c"}, Dockerfile: "sub/Dockerfile", BuildArgs: none, Labels: none, Context: "ctx"}},
		{"flags with =", "--tag=a:1 --file=D --target=t --platform=linux/arm64/v8 .", nil,
			&Build{Tags: []string{"a:1"}, Dockerfile: "D", Target: "t", Platform: "linux/arm64/v8", BuildArgs: none, Labels: none, Context: "."}},
		{"short flags with the value attached", "-ta:1 -fD .", nil,
			&Build{Tags: []string{"a:1"}, Dockerfile: "D", BuildArgs: none, Labels: none, Context: "."}},
		{"context first", ". -t a", nil, &Build{Tags: []string{"a"}, BuildArgs: none, Labels: none, Context: "."}},
		{"build args with quotes", `--build-arg "GREETING=hello world" --build-arg 'Q="x"' --build-arg E= --build-arg=K=a=b .`, nil,
			&Build{BuildArgs: map[string]string{"GREETING": "hello world", "Q": `"x"`, "E": "", "K": "a=b"}, Labels: none, Context: "."}},
		{"build arg from the env", "--build-arg FROM_ENV --build-arg UNSET .", []string{"FROM_ENV=1", "FROM_ENV=2"},
			&Build{BuildArgs: map[string]string{"FROM_ENV": "2"}, Labels: none, Context: "."}},
		{"labels", "--label org.opencontainers.image.source=https://x --label empty .", nil,
			&Build{BuildArgs: none, Labels: map[string]string{"org.opencontainers.image.source": "https://x", "empty": ""}, Context: "."}},
		{"booleans", "--no-cache --pull=false .", nil, &Build{BuildArgs: none, Labels: none, Context: ".", NoCache: true}},
		{"escaped blank in the context", `my\ dir`, nil, &Build{BuildArgs: none, Labels: none, Context: "my dir"}},
		{"multi-line", "-t a\n  -f D\n  .", nil, &Build{Tags: []string{"a"}, Dockerfile: "D", BuildArgs: none, Labels: none, Context: "."}},
		{"end of flags", "-t a -- -ctx", nil, &Build{Tags: []string{"a"}, BuildArgs: none, Labels: none, Context: "-ctx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBuild(tt.in, tt.env)
			if err != nil {
				t.Fatalf("parseBuild(%q) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseBuild(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{"no context", "-t a", "names no build context"},
		{"two contexts", "-t a . other", `more than one build context ("." and "other")`},
		{"unknown flag", "--isolation hyperv .", "--isolation: not supported by Kiln"},
		{"secret flag", "--secret id=x .", "--secret: not supported by Kiln"},
		{"flag without its value", ". -t", "-t: needs a value"},
		{"bad tag", "-t Upper/case .", `"Upper/case" is not an image tag`},
		{"tag by digest", "-t app@sha256:0123456789012345678901234567890123456789012345678901234567890123 .", "names a digest"},
		{"bad build arg", "--build-arg =v .", `"=v" is not KEY=VALUE or KEY`},
		{"several platforms", "--platform linux/amd64,linux/arm64 .", "names several platforms"},
		{"bad platform", "--platform amd64 .", "is not a platform"},
		{"bad boolean", "--no-cache=yes .", "takes true or false"},
		{"unclosed quote", `--build-arg "A=1 .`, "double quote"},
		{"context from stdin", "-t a -", "standard input"},
		{"dockerfile from stdin", "-f - .", "standard input"},
		{"git context", "https://github.com/Azure/acr-builder.git", "not supported by Kiln"},
		{"empty target", "--target= .", "needs a stage's name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBuild(tt.in, nil)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("parseBuild(%q) = %v, want an error saying %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestBuildStep(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(*testing.T, *Step)
	}{
		{"pull property", "steps:\n  - build: .\n    pull: true\n", func(t *testing.T, s *Step) {
			if !s.Build.Pull || !s.Pull {
				t.Errorf("Build.Pull, Pull = %v, %v, want true, true", s.Build.Pull, s.Pull)
			}
		}},
		{"build arg from the step and file env", "env: [A=file, B=file]\nsteps:\n  - build: --build-arg A --build-arg B .\n    env: [A=step]\n",
			func(t *testing.T, s *Step) {
				if want := map[string]string{"A": "step", "B": "file"}; !reflect.DeepEqual(s.Build.BuildArgs, want) {
					t.Errorf("BuildArgs = %v, want %v", s.Build.BuildArgs, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, &mustLoad(t, tt.src).Steps[0])
		})
	}
}

func TestBuildStepErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"unknown flag", "steps:\n  - cmd: alpine\n  - build: -t a --squash .\n", 3, "steps[1].build", "--squash: not supported by Kiln"},
		{"empty", "steps:\n  - build:\n", 2, "steps[0].build", "is empty"},
		{"a list", "steps:\n  - build: [-t, a, .]\n", 2, "steps[0].build", "must be a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}
