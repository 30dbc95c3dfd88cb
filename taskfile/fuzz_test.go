package taskfile

import (
	"errors"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// FuzzTaskFile reads a task file as Check does, and renders it as a template alone. Whatever the file, it
// must not panic; an error is an *Error of kind Invalid (or a busy worker's, of kind Unavailable) and short;
// the rendered text is within tmpl.FileLimits; and the render ends (the bound here is only a hang guard, far
// above the time limit).
func FuzzTaskFile(f *testing.F) {
	seeds := []string{
		// ACR's samples (learn.microsoft.com, container-registry-tasks-reference-yaml and the acr-task-commands repo).
		"version: v1.1.0\nsteps:\n  - build: -t $Registry/hello-world:$ID .\n  - push: [\"$Registry/hello-world:$ID\"]\n",
		"version: v1.0.0\nsteps:\n  - build: -t {{.Run.Registry}}/hello-world:{{.Run.ID}} -f hello-world.dockerfile .\n  - cmd: -t {{.Run.Registry}}/hello-world:{{.Run.ID}}\n  - push:\n    - {{.Run.Registry}}/hello-world:{{.Run.ID}}\n",
		"version: v1.1.0\nalias:\n  values:\n    repo: myrepo\nsteps:\n  - build: -t $Registry/$repo:$ID .\n",
		"steps:\n  - cmd: bash echo {{.Values.greeting | default \"hi\" | upper}}\n    env: [\"A=B\"]\n    timeout: 60\n",
		"secrets:\n  - id: token\n    keyvault: https://x.vault.azure.net/secrets/t\nsteps:\n  - cmd: alpine echo {{.Secrets.token}}\n",
		"steps:\n{{range $i, $v := list \"a\" \"b\"}}  - id: s{{$i}}\n    cmd: alpine echo {{$v}}\n{{end}}",
		"steps:\n  - cmd: busybox echo hi\n    cache: enabled\n",
		"steps:\n  - build: -t app:{{.Run.ID}} .\n    cache: disabled\n",
		"steps:\n  - cmd: docker build -t x .\n",
		// The bombs Kiln was found open to, and their kin.
		"steps:\n  - cmd: alpine echo x{{range 20000000}}xxxxxxxxxx{{end}}\n",
		"steps:\n  - cmd: alpine echo {{range 100000000}}{{end}}\n",
		"steps:\n  - cmd: alpine echo {{ repeat 200000000 \"x\" | len }}\n",
		"{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}",
		"{{$s := \"xx\"}}{{range 40}}{{$s = print $s $s}}{{end}}",
		"{{printf \"%0999999999d\" 1}}",
		"{{untilStep 9223372036854775800 9223372036854775807 10}}",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	data := testData()
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		_, err := Check([]byte(src), "acb.yaml", data)
		checkFuzzError(t, err)
		l := &loader{name: "acb.yaml", data: data, check: true}
		out, err := l.render(src)
		checkFuzzError(t, err)
		if len(out) > tmpl.FileLimits.Output {
			t.Errorf("render() = %d bytes, over the %d bytes limit", len(out), tmpl.FileLimits.Output)
		}
		if took := time.Since(start); took > 10*tmpl.FileLimits.Time {
			t.Errorf("Check and render took %v", took)
		}
	})
}

// checkFuzzError fails when err is not an error a task file may have.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	var le *tmpl.LimitError
	switch {
	case errors.As(err, &le) && proto.ErrorCode(err) == proto.Unavailable:
	case !errors.As(err, &e):
		t.Fatalf("error = %T %v, want an *Error", err, err)
	case proto.ErrorCode(err) != proto.Invalid:
		t.Fatalf("ErrorCode(%v) = %q, want %q", err, proto.ErrorCode(err), proto.Invalid)
	}
	if len(err.Error()) > 1024 {
		t.Fatalf("error of %d bytes, want at most 1 KiB: %.200s", len(err.Error()), err)
	}
}
