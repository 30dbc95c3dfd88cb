package taskfile

import (
	"reflect"
	"testing"
)

func TestWhen(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		after [][]int // each step's After
		ids   []string
	}{
		{
			name:  "sequential by default",
			src:   "steps:\n  - cmd: a\n  - cmd: b\n  - cmd: c\n",
			after: [][]int{nil, {0}, {1}},
			ids:   []string{"acb_step_0", "acb_step_1", "acb_step_2"},
		},
		{
			name:  "parallel",
			src:   "steps:\n  - cmd: a\n    when: [\"-\"]\n  - cmd: b\n    when: [\"-\"]\n",
			after: [][]int{nil, nil},
			ids:   []string{"acb_step_0", "acb_step_1"},
		},
		{
			name: "parallel builds, then dependent tests (ACR's when-parallel-dependent)",
			src: `steps:
  - id: build-hello-world
    build: -t hello-world -f hello-world.dockerfile .
    when: ["-"]
  - id: build-hello-world-test
    build: -t hello-world-test -f hello-world.dockerfile .
    when: ["-"]
  - id: hello-world
    cmd: hello-world
    when: ["build-hello-world"]
  - id: func-tests
    cmd: hello-world-test
    when: ["hello-world", build-hello-world-test]
  - push: ["hello-world"]
    when: ["func-tests"]
`,
			after: [][]int{nil, nil, {0}, {2, 1}, {3}},
			ids:   []string{"build-hello-world", "build-hello-world-test", "hello-world", "func-tests", "acb_step_4"},
		},
		{
			name:  "a default id can be waited for",
			src:   "steps:\n  - cmd: a\n  - cmd: b\n    when: [\"-\"]\n  - cmd: c\n    when: [acb_step_0, acb_step_0]\n",
			after: [][]int{nil, nil, {0}},
			ids:   []string{"acb_step_0", "acb_step_1", "acb_step_2"},
		},
		{
			name:  "an empty when is no when",
			src:   "steps:\n  - cmd: a\n  - cmd: b\n    when: []\n",
			after: [][]int{nil, {0}},
			ids:   []string{"acb_step_0", "acb_step_1"},
		},
		{
			name:  "the previous step of one that started at once",
			src:   "steps:\n  - cmd: a\n  - cmd: b\n    when: [\"-\"]\n  - cmd: c\n",
			after: [][]int{nil, nil, {1}},
			ids:   []string{"acb_step_0", "acb_step_1", "acb_step_2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustLoad(t, tt.src)
			var after [][]int
			var ids []string
			for _, s := range f.Steps {
				after = append(after, s.After)
				ids = append(ids, s.ID)
			}
			if !reflect.DeepEqual(after, tt.after) {
				t.Errorf("After = %v, want %v", after, tt.after)
			}
			if !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("IDs = %q, want %q", ids, tt.ids)
			}
		})
	}
}

func TestWhenErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"unknown id", "steps:\n  - cmd: a\n  - cmd: b\n    when: [nope]\n", 4, "steps[1].when[0]", `no step has the id "nope"`},
		{"itself", "steps:\n  - id: a\n    cmd: a\n    when: [a]\n", 4, "steps[0].when[0]", "cannot wait for itself"},
		{"a later step", "steps:\n  - id: a\n    cmd: a\n    when: [b]\n  - id: b\n    cmd: b\n", 4, "steps[0].when[0]",
			`step "b" comes later in the file (line 5)`},
		{"a cycle", "steps:\n  - id: a\n    cmd: a\n    when: [b]\n  - id: b\n    cmd: b\n    when: [a]\n", 4, "steps[0].when[0]",
			"a step can wait only for steps above it"},
		{"dash with ids", "steps:\n  - id: a\n    cmd: a\n  - cmd: b\n    when:\n      - a\n      - \"-\"\n", 7, "steps[1].when[1]",
			`"-" (start at once) cannot be given with step ids`},
		{"not a list", "steps:\n  - cmd: a\n    when: \"-\"\n", 3, "steps[0].when", "must be a list"},
		{"duplicate id", "steps:\n  - id: a\n    cmd: a\n  - id: a\n    cmd: b\n", 4, "steps[1].id", `id "a" is already the id of steps[0] (line 2)`},
		{"explicit id taking a default one", "steps:\n  - cmd: a\n  - id: acb_step_0\n    cmd: b\n", 3, "steps[1].id", "already the id of steps[0]"},
		{"bad id", "steps:\n  - id: has space\n    cmd: a\n", 2, "steps[0].id", "is not a step id"},
		{"dash id", "steps:\n  - id: \"-\"\n    cmd: a\n", 2, "steps[0].id", "is not a step id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}
