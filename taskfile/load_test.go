package taskfile

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullFile uses every field Kiln supports: ACR's when-parallel-dependent and build-test-update samples, adapted.
const fullFile = `version: v1.0.0
stepTimeout: 900
workingDirectory: /workspace/src
env:
  - GOFLAGS=-mod=vendor
  - MODE={{.Values.env}}
secrets:
  - id: token
steps:
  # build the image and its tests, at once
  - id: build-hello
    build: >-
      -t {{.Run.Registry}}/hello:{{.Run.ID}} -t hello:latest -f hello.dockerfile
      --build-arg COMMIT={{.Run.Commit}} --build-arg MODE --target final --platform linux/amd64 .
    when: ["-"]
    timeout: 1200
  - id: build-test
    build: -t hello-test --no-cache --pull ./test
    when: ["-"]
  - id: test
    cmd: hello-test --url http://hello "a b"
    entryPoint: /bin/run-tests
    user: "1000:1000"
    pull: true
    env: ["TOKEN={{.Secrets.token}}", "MODE=test"]
    workingDirectory: tests
    when: [build-hello, build-test]
    startDelay: 5
    retries: 2
    retryDelay: 10
    ignoreErrors: true
  - push:
      - "{{.Run.Registry}}/hello:{{.Run.ID}}"
      - "{{.Run.Registry}}/hello:latest"
  - cmd: alpine:3.20 sh -c 'echo done'
    disableWorkingDirectoryOverride: true
`

func TestLoadFull(t *testing.T) {
	f := mustLoad(t, fullFile)
	want := &File{
		Version:          "v1.0.0",
		StepTimeout:      900 * time.Second,
		WorkingDirectory: "/workspace/src",
		Env:              []string{"GOFLAGS=-mod=vendor", "MODE=prod"},
		Secrets:          []Secret{{ID: "token", Line: 8}},
		Steps: []Step{
			{
				ID: "build-hello", Line: 11,
				Build: &Build{
					Tags:       []string{"127.0.0.1:5000/hello:k7", "hello:latest"},
					Dockerfile: "hello.dockerfile",
					BuildArgs:  map[string]string{"COMMIT": "abc123", "MODE": "prod"},
					Labels:     map[string]string{},
					Target:     "final", Platform: "linux/amd64", Context: ".",
				},
				When: []string{"-"},
				Env:  []string{"GOFLAGS=-mod=vendor", "MODE=prod"}, WorkingDirectory: "/workspace/src",
				Timeout: 1200 * time.Second, RetryDelay: 5 * time.Second,
			},
			{
				ID: "build-test", Line: 17,
				Build: &Build{Tags: []string{"hello-test"}, BuildArgs: map[string]string{}, Labels: map[string]string{},
					Context: "./test", NoCache: true, Pull: true},
				When: []string{"-"},
				Env:  []string{"GOFLAGS=-mod=vendor", "MODE=prod"}, WorkingDirectory: "/workspace/src",
				Timeout: 900 * time.Second, RetryDelay: 5 * time.Second,
			},
			{
				ID: "test", Line: 20,
				Cmd:              &Cmd{Image: "hello-test", Args: []string{"--url", "http://hello", "a b"}},
				When:             []string{"build-hello", "build-test"},
				After:            []int{0, 1},
				Env:              []string{"GOFLAGS=-mod=vendor", "MODE=test", "TOKEN=s3cr3t-value"},
				WorkingDirectory: "/workspace/tests", EntryPoint: "/bin/run-tests", User: "1000:1000", Pull: true,
				Timeout: 900 * time.Second, StartDelay: 5 * time.Second, Retries: 2, RetryDelay: 10 * time.Second,
				IgnoreErrors: true,
			},
			{
				ID: "acb_step_3", Line: 32,
				Push:    []string{"127.0.0.1:5000/hello:k7", "127.0.0.1:5000/hello:latest"},
				After:   []int{2},
				Env:     []string{"GOFLAGS=-mod=vendor", "MODE=prod"},
				Timeout: 900 * time.Second, RetryDelay: 5 * time.Second,
			},
			{
				ID: "acb_step_4", Line: 35,
				Cmd:     &Cmd{Image: "alpine:3.20", Args: []string{"sh", "-c", "echo done"}},
				After:   []int{3},
				Env:     []string{"GOFLAGS=-mod=vendor", "MODE=prod"},
				Timeout: 900 * time.Second, RetryDelay: 5 * time.Second,
			},
		},
	}
	if len(f.Steps) != len(want.Steps) {
		t.Fatalf("Load() has %d steps, want %d", len(f.Steps), len(want.Steps))
	}
	for i := range want.Steps {
		if !reflect.DeepEqual(f.Steps[i], want.Steps[i]) {
			t.Errorf("Steps[%d] =\n%+v\nwant\n%+v", i, f.Steps[i], want.Steps[i])
		}
	}
	f.Steps, want.Steps = nil, nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("Load() =\n%+v\nwant\n%+v", f, want)
	}
}

func TestStepKind(t *testing.T) {
	f := mustLoad(t, fullFile)
	var kinds []string
	for i := range f.Steps {
		kinds = append(kinds, f.Steps[i].Kind())
	}
	if want := []string{"build", "build", "cmd", "push", "cmd"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("Kind() = %v, want %v", kinds, want)
	}
}

func TestLoadTemplates(t *testing.T) {
	tests := []struct {
		name string
		data func(*Data)
		cmd  string // the text of the one cmd step, after "cmd: alpine echo "
		want []string
	}{
		{name: "run variables", cmd: "{{.Run.ID}} {{.Run.Commit}} {{.Run.Branch}} {{.Run.Registry}} {{.Run.Date}} {{.Run.TaskName}}",
			want: []string{"k7", "abc123", "main", "127.0.0.1:5000", "20260123-142501z", "web"}},
		{name: "more run variables", cmd: "{{.Run.TriggeredBy}} {{.Run.OS}} {{.Run.Architecture}} {{.Run.SharedVolume}} {{.Build.ID}}",
			want: []string{"commit", "linux", "amd64", "/workspace", "k7"}},
		{name: "registry name of a registry that is not Azure's", cmd: "{{.Run.RegistryName}}", want: []string{"127.0.0.1:5000"}},
		{name: "registry name of an Azure registry", data: func(d *Data) { d.Run.Registry = "myregistry.azurecr.io" },
			cmd: "{{.Run.RegistryName}}", want: []string{"myregistry"}},
		{name: "registry name given", data: func(d *Data) { d.Run.RegistryName = "named" },
			cmd: "{{.Run.RegistryName}}", want: []string{"named"}},
		{name: "values", cmd: "{{.Values.tag}} {{.Values.env}}", want: []string{"v2", "prod"}},
		{name: "sprig upper and default", cmd: `{{.Values.env | upper}} {{index .Values "missing" | default "dev"}}`,
			want: []string{"PROD", "dev"}},
		{name: "sprig default of an empty value", data: func(d *Data) { d.Values["empty"] = "" },
			cmd: `{{.Values.empty | default "fallback"}}`, want: []string{"fallback"}},
		{name: "sprig trunc and replace", cmd: `{{.Run.Commit | trunc 3}} {{"a-b" | replace "-" "_"}}`, want: []string{"abc", "a_b"}},
		{name: "conditionals", cmd: `{{if eq .Run.Branch "main"}}release{{else}}dev{{end}}`, want: []string{"release"}},
		{name: "dollar signs are not aliases in v1.0.0", cmd: `$Registry $$ID`, want: []string{"$Registry", "$$ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testData()
			if tt.data != nil {
				tt.data(&d)
			}
			src := "steps:\n  - cmd: alpine echo " + tt.cmd + "\n"
			f, err := Load([]byte(src), "acb.yaml", d)
			if err != nil {
				t.Fatalf("Load(%q) = %v", src, err)
			}
			if got := f.Steps[0].Cmd.Args[1:]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%q) args = %q, want %q", src, got, tt.want)
			}
		})
	}
}

func TestLoadTemplateErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"missing value", "steps:\n  - cmd: alpine echo {{.Values.nope}}\n", 2, "",
			`{{.Values.nope}}: no value named "nope": give it with --set nope=VALUE`},
		{"unknown run variable", "steps:\n  - cmd: alpine\n  - cmd: alpine echo {{.Run.Nope}}\n", 3, "",
			`there is no run variable "Nope": they are ID, Commit`},
		{"unknown function", "steps:\n  - cmd: alpine echo {{nope .Run.ID}}\n", 2, "", `function "nope" not defined`},
		{"env is not a function here", "steps:\n  - cmd: alpine echo {{env \"HOME\"}}\n", 2, "", `function "env" not defined`},
		{"expandenv is not a function here", "steps:\n  - cmd: alpine echo {{expandenv \"$HOME\"}}\n", 2, "", `function "expandenv" not defined`},
		{"getHostByName is not a function here", "steps:\n  - cmd: alpine {{getHostByName \"x\"}}\n", 2, "", `function "getHostByName" not defined`},
		{"unclosed action", "steps:\n  - cmd: alpine\n  - cmd: alpine echo {{.Run.ID\n", 3, "", "unclosed action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"syntax error", "steps:\n  - cmd: alpine\n  - cmd: alpine\n     bad: indent\n", 4, "", "not valid YAML"},
		{"syntax error made by a template", "steps:\n  - cmd: alpine echo {{.Values.tag}}: x\n", 2, "",
			"(the line reads: - cmd: alpine echo v2: x)"},
		{"tab indent", "steps:\n\t- cmd: alpine\n", 2, "", "not valid YAML"},
		{"empty file", "# nothing\n", 0, "", "the file is empty"},
		{"two documents", "steps:\n  - cmd: alpine\n---\nsteps: []\n", 3, "", "one YAML document"},
		{"not a mapping", "- cmd: alpine\n", 1, "", "must be a mapping of fields, and the file is a list"},
		{"no steps", "version: v1.0.0\n", 1, "steps", "missing"},
		{"empty steps", "steps: []\n", 1, "steps", "lists no steps"},
		{"steps not a list", "steps: alpine\n", 1, "steps", "must be a list of steps"},
		{"duplicate field", "steps:\n  - cmd: alpine\nsteps:\n  - cmd: alpine\n", 3, "steps", "given twice (first on line 1)"},
		{"duplicate step field", "steps:\n  - cmd: alpine\n    timeout: 1\n    timeout: 2\n", 4, "steps[0].timeout", "given twice"},
		{"merge key", "steps:\n  - <<: {cmd: alpine}\n", 2, "steps[0].<<", "merge keys"},
		{"unknown top-level field", "steps:\n  - cmd: alpine\nfoo: 1\n", 3, "foo", "unknown field"},
		{"unknown step field", "steps:\n  - cmd: alpine\n    foo: 1\n", 3, "steps[0].foo", "unknown field: a step's fields are"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

func TestYAMLAnchors(t *testing.T) {
	f := mustLoad(t, "env: &e [\"A=1\"]\nsteps:\n  - cmd: alpine\n    env: *e\n")
	if got := f.Steps[0].Env; !reflect.DeepEqual(got, []string{"A=1"}) {
		t.Errorf("Env = %q, want [A=1]", got)
	}
}

func TestCheckNeedsNoRun(t *testing.T) {
	src := "steps:\n  - build: -t {{.Run.Registry}}/app:{{.Run.Commit}}-{{.Run.ID}} .\n  - cmd: alpine echo {{.Run.Date}}\n"
	f, err := Check([]byte(src), "acb.yaml", Data{})
	if err != nil {
		t.Fatalf("Check() = %v, want no error", err)
	}
	if got := f.Steps[0].Build.Tags[0]; !strings.HasPrefix(got, "registry.invalid/app:") {
		t.Errorf("Check() tag = %q, want one with the sample registry", got)
	}
	// Load with an empty run renders an invalid tag, which Check's samples avoid.
	_, err = Load([]byte(src), "acb.yaml", Data{})
	wantError(t, err, 2, "steps[0].build", "is not an image tag")
}
