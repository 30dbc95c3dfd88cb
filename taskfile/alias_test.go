package taskfile

import (
	"reflect"
	"testing"
)

func TestAliases(t *testing.T) {
	tests := []struct {
		name string
		src  string
		args []string // the args of the file's one cmd step, after "echo"
	}{
		{
			name: "predefined",
			src:  "version: v1.1.0\nsteps:\n  - cmd: alpine echo $ID $Registry $RegistryName $Date $Commit $Branch $OS $Architecture $SharedVolume\n",
			args: []string{"k7", "127.0.0.1:5000", "127.0.0.1:5000", "20260123-142501z", "abc123", "main", "linux", "amd64", "/workspace"},
		},
		{
			name: "custom values",
			src:  "version: v1.1.0\nalias:\n  values:\n    repo: myrepo\n    greeting: hello world\nsteps:\n  - cmd: alpine echo $Registry/$repo:$ID $greeting\n",
			args: []string{"127.0.0.1:5000/myrepo:k7", "hello", "world"},
		},
		{
			name: "custom values rendered as templates",
			src:  "version: v1.1.0\nalias:\n  values:\n    tag: \"{{.Values.tag}}-{{.Run.ID}}\"\nsteps:\n  - cmd: alpine echo $tag\n",
			args: []string{"v2-k7"},
		},
		{
			name: "a custom value is text, not a template",
			src:  "version: v1.1.0\nalias:\n  values:\n    braces: '{{\"{{\"}}.Run.ID}}'\nsteps:\n  - cmd: alpine echo $braces\n",
			args: []string{"{{.Run.ID}}"},
		},
		{
			name: "custom overrides predefined",
			src:  "version: v1.1.0\nalias:\n  values:\n    Registry: other.example\nsteps:\n  - cmd: alpine echo $Registry\n",
			args: []string{"other.example"},
		},
		{
			name: "double directive escapes",
			src:  "version: v1.1.0\nsteps:\n  - cmd: alpine echo $$ID $$ $$$ID\n",
			args: []string{"$ID", "$", "$k7"},
		},
		{
			name: "unknown names stay",
			src:  "version: v1.1.0\nsteps:\n  - cmd: alpine echo '$HOME ${PATH} $'\n",
			args: []string{"$HOME ${PATH} $"},
		},
		{
			name: "back to back",
			src:  "version: v1.1.0\nsteps:\n  - cmd: alpine echo $ID$Branch-$OS\n",
			args: []string{"k7main-linux"},
		},
		{
			name: "own directive",
			src:  "version: v1.1.0\nalias:\n  directive: \"#\"\n  values:\n    repo: r\nsteps:\n  - cmd: \"alpine echo #repo #ID $ID ##\"\n",
			args: []string{"r", "k7", "$ID", "#"},
		},
		{
			name: "image alias as a value",
			src:  "version: v1.1.0\nsteps:\n  - cmd: alpine echo $bash\n",
			args: []string{"mcr.microsoft.com/acr/bash:fe316c9"},
		},
		{
			name: "comments and other fields after the alias block",
			src:  "version: v1.1.0\nalias:\n  values:\n    # a comment\n    a: b\n# at the margin\nstepTimeout: 60\nsteps:\n  - cmd: alpine echo $a\n",
			args: []string{"b"},
		},
		{
			name: "v1.0.0 has no aliases",
			src:  "version: v1.0.0\nsteps:\n  - cmd: alpine echo $ID $$\n",
			args: []string{"$ID", "$$"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustLoad(t, tt.src)
			if got := f.Steps[0].Cmd.Args[1:]; !reflect.DeepEqual(got, tt.args) {
				t.Errorf("Load(%q) args = %q, want %q", tt.src, got, tt.args)
			}
		})
	}
}

func TestAliasedCmdImage(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		image string
		args  []string
	}{
		{"image alias", "version: v1.1.0\nsteps:\n  - cmd: bash echo hi\n", "mcr.microsoft.com/acr/bash:fe316c9", []string{"echo", "hi"}},
		{"acr alias", "version: v1.1.0\nsteps:\n  - cmd: acr purge --ago 7d\n", "mcr.microsoft.com/acr/acr-cli:0.19", []string{"purge", "--ago", "7d"}},
		{"custom alias of an image and arguments", "version: v1.1.0\nalias:\n  values:\n    lint: golangci/golangci-lint:v1 golangci-lint\nsteps:\n  - cmd: lint run\n",
			"golangci/golangci-lint:v1", []string{"golangci-lint", "run"}},
		{"not the first word", "version: v1.1.0\nsteps:\n  - cmd: alpine bash\n", "alpine", []string{"bash"}},
		{"no alias in v1.0.0", "steps:\n  - cmd: bash echo hi\n", "bash", []string{"echo", "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.src).Steps[0].Cmd
			if c.Image != tt.image || !reflect.DeepEqual(c.Args, tt.args) {
				t.Errorf("Load(%q) cmd = %q %q, want %q %q", tt.src, c.Image, c.Args, tt.image, tt.args)
			}
		})
	}
}

func TestAliasErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"src", "version: v1.1.0\nalias:\n  src:\n    - https://example.com/aliases.yml\nsteps:\n  - cmd: alpine\n", 3, "alias.src", "not supported by Kiln"},
		{"bad name", "version: v1.1.0\nalias:\n  values:\n    my-repo: x\nsteps:\n  - cmd: alpine\n", 4, "alias.values.my-repo", "letters and digits"},
		{"long directive", "version: v1.1.0\nalias:\n  directive: \"%%\"\nsteps:\n  - cmd: alpine\n", 3, "alias.directive", "one character"},
		{"letter directive", "version: v1.1.0\nalias:\n  directive: a\nsteps:\n  - cmd: alpine\n", 3, "alias.directive", "one character"},
		{"unknown field", "version: v1.1.0\nalias:\n  value:\n    a: b\nsteps:\n  - cmd: alpine\n", 3, "alias.value", "unknown field"},
		{"values not a mapping", "version: v1.1.0\nalias:\n  values: [a]\nsteps:\n  - cmd: alpine\n", 3, "alias.values", "must be a mapping"},
		{"template error in the block", "version: v1.1.0\nalias:\n  values:\n    a: \"{{.Values.nope}}\"\nsteps:\n  - cmd: alpine\n", 4, "", `no value named "nope"`},
		{"alias in v1.0.0", "alias:\n  values:\n    a: b\nsteps:\n  - cmd: alpine\n", 1, "alias", "aliases need version: v1.1.0"},
		{"alias not at the margin", "version: v1.1.0\nsteps: [{cmd: alpine}]\n? alias\n: {values: {a: b}}\n", 3, "alias", "must begin a line of its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

func TestSplitAlias(t *testing.T) {
	src := "version: v1.1.0\nalias:\n  values:\n    a: b\n\n# c\nsteps:\n  - cmd: x\n"
	block, rest := splitAlias(src)
	if want := "\nalias:\n  values:\n    a: b\n\n# c"; block != want {
		t.Errorf("splitAlias() block = %q, want %q", block, want)
	}
	if want := "version: v1.1.0\n\n\n\n\n\nsteps:\n  - cmd: x\n"; rest != want {
		t.Errorf("splitAlias() rest = %q, want %q", rest, want)
	}
}
