package taskfile

import (
	"reflect"
	"strings"
	"testing"
)

const secretFile = `secrets:
  - id: token
  - id: other
steps:
  - cmd: alpine echo {{.Secrets.token}}
    env: ["OTHER={{index .Secrets "other"}}", "AGAIN={{$.Secrets.token}}"]
`

func TestSecrets(t *testing.T) {
	f := mustLoad(t, secretFile)
	if want := []Secret{{ID: "token", Line: 2}, {ID: "other", Line: 3}}; !reflect.DeepEqual(f.Secrets, want) {
		t.Errorf("Secrets = %+v, want %+v", f.Secrets, want)
	}
	s := f.Steps[0]
	if got := s.Cmd.Args; !reflect.DeepEqual(got, []string{"echo", "s3cr3t-value"}) {
		t.Errorf("Args = %q, want the secret's value", got)
	}
	if want := []string{"OTHER=hunter2", "AGAIN=s3cr3t-value"}; !reflect.DeepEqual(s.Env, want) {
		t.Errorf("Env = %q, want %q", s.Env, want)
	}
}

// TestCheckSecrets is the two passes: the API checks a file without secret values and learns which secrets it
// needs; the worker fetches them and loads it.
func TestCheckSecrets(t *testing.T) {
	d := testData()
	d.Secrets = nil
	f, err := Check([]byte(secretFile), "acb.yaml", d)
	if err != nil {
		t.Fatalf("Check() = %v, want no error", err)
	}
	var ids []string
	for _, s := range f.Secrets {
		ids = append(ids, s.ID)
	}
	if want := []string{"token", "other"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("Check() secrets = %q, want %q", ids, want)
	}
	if got := f.Steps[0].Cmd.Args[1]; got != secretPlaceholder {
		t.Errorf("Check() rendered a secret as %q, want the placeholder %q", got, secretPlaceholder)
	}
	d.Secrets = map[string]string{"token": "t", "other": "o"}
	if _, err := Load([]byte(secretFile), "acb.yaml", d); err != nil {
		t.Errorf("Load() with the secrets = %v, want no error", err)
	}
}

func TestSecretErrors(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		secrets map[string]string
		check   bool
		line    int
		field   string
		msg     string
	}{
		{name: "not declared", src: "steps:\n  - cmd: a\n  - cmd: alpine echo {{.Secrets.token}}\n", line: 3,
			field: "{{.Secrets.token}}", msg: `secret "token" is not declared: add it to the file's secrets (- id: token)`},
		{name: "not declared, checked", src: "steps:\n  - cmd: alpine echo {{index .Secrets \"token\"}}\n", check: true, line: 2,
			field: "{{.Secrets.token}}", msg: "is not declared"},
		{name: "no value", src: "secrets:\n  - id: token\n  - id: missing\nsteps:\n  - cmd: a\n", line: 3,
			field: "secrets[1].id", msg: `secret "missing" has no value: set it with kiln secret set missing`},
		{name: "no id", src: "secrets:\n  - keyvalue: x\nsteps:\n  - cmd: a\n", line: 2, field: "secrets[0].keyvalue", msg: "unknown field"},
		{name: "empty entry", src: "secrets:\n  - {}\nsteps:\n  - cmd: a\n", line: 2, field: "secrets[0].id", msg: "missing"},
		{name: "bad name", src: "secrets:\n  - id: my.secret\nsteps:\n  - cmd: a\n", line: 2, field: "secrets[0].id", msg: "is not a secret's name"},
		{name: "twice", src: "secrets:\n  - id: token\n  - id: token\nsteps:\n  - cmd: a\n", line: 3, field: "secrets[1].id",
			msg: "declared twice (first on line 2)"},
		{name: "not a list", src: "secrets: token\nsteps:\n  - cmd: a\n", line: 1, field: "secrets", msg: "must be a list"},
		{name: "dynamic name", src: "secrets:\n  - id: token\nsteps:\n  - cmd: alpine echo {{$n := \"token\"}}{{index .Secrets $n}}\n",
			line: 4, msg: "read a secret by its name written out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testData()
			if tt.secrets != nil {
				d.Secrets = tt.secrets
			}
			var err error
			if tt.check {
				_, err = Check([]byte(tt.src), "acb.yaml", d)
			} else {
				_, err = Load([]byte(tt.src), "acb.yaml", d)
			}
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

// TestSecretNotInErrors checks that an error about a line that holds a secret does not show the secret.
func TestSecretNotInErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		shown bool // the error quotes the text the secret is in
	}{
		{"bad image", "secrets:\n  - id: token\nsteps:\n  - cmd: \"{{.Secrets.token}}/Image\"\n", true},
		{"bad env", "secrets:\n  - id: token\nsteps:\n  - cmd: a\n    env: [\"{{.Secrets.token}}\"]\n", false},
		{"bad YAML", "secrets:\n  - id: token\nsteps:\n  - cmd: a {{.Secrets.token}}: x\n", true},
		{"bad number", "secrets:\n  - id: token\nsteps:\n  - cmd: a\n    timeout: {{.Secrets.token}}\n", true},
		{"bad build arg", "secrets:\n  - id: token\nsteps:\n  - build: --build-arg '={{.Secrets.token}}' .\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			if err == nil {
				t.Fatal("Load() = nil, want an error")
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("Load() = %q, want no secret in it", err)
			}
			if tt.shown && !strings.Contains(err.Error(), "[secret]") {
				t.Errorf("Load() = %q, want the secret shown as [secret]", err)
			}
		})
	}
}

func TestSecretIDs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"declared", secretFile, []string{"token", "other"}},
		{"none", "steps:\n  - cmd: a\n", []string{}},
		{"declared and not read", "secrets:\n  - id: unused\nsteps:\n  - cmd: a\n", []string{"unused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SecretIDs([]byte(tt.src), "acb.yaml", Data{})
			if err != nil {
				t.Fatalf("SecretIDs() = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SecretIDs() = %q, want %q", got, tt.want)
			}
		})
	}
	_, err := SecretIDs([]byte("steps:\n  - cmd: a\n    detach: true\n"), "acb.yaml", Data{})
	wantError(t, err, 3, "steps[0].detach", "not supported by Kiln")
}
