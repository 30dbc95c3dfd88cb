package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// templateBombs are templates of a few bytes that would expand to gigabytes or loop for minutes, each with
// what the answer must say. Found on Kiln as it was: the first took 8.6 s and 1.1 GiB and answered 200 MB.
var templateBombs = []struct {
	name, tmpl string
	tagSays    string // in a tag, which has text/template's functions only
	fileSays   string // in a task file, which has Sprig's too
}{
	{"a range that writes", "x{{range 20000000}}xxxxxxxxxx{{end}}",
		"a range may make at most 1000 iterations", "a range may make at most 10000 iterations"},
	{"a range that writes nothing", "{{range 100000000}}{{end}}",
		"a range may make at most 1000 iterations", "a range may make at most 10000 iterations"},
	{"repeat", `{{ repeat 200000000 "x" | len }}`,
		`function "repeat" not defined`, "repeat would make more than the 1 MiB limit"},
	{"printf's width", `{{ printf "%0200000000d" 1 }}`,
		"a width or precision of 0200000000 is over the limit", "a width or precision of 0200000000 is over the limit"},
}

// hangGuard bounds how long a refusal may take here: far above the time limit, so that it fails only a test
// that hangs; what the test asserts is that the limit refused the template, and how short the answer is.
const hangGuard = 5 * time.Second

// TestTemplateBombInTag: a build whose tag is a bomb is refused (400) with a short answer naming the tag and
// the limit.
func TestTemplateBombInTag(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 }) // refused at submission: no run starts
	for _, tt := range templateBombs {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY Dockerfile /\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := k.submitDir(t, dir, api.BuildRequest{Tags: []string{"app:" + tt.tmpl}})
			took := time.Since(start)
			if err == nil {
				t.Fatalf("SubmitRun(tag %q) = a run, want it refused", tt.tmpl)
			}
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.tagSays) {
				t.Errorf("SubmitRun(tag %q) = %v (%s), want %s saying %q", tt.tmpl, err, proto.ErrorCode(err), proto.Invalid, tt.tagSays)
			}
			if n := len(err.Error()); n > 1024 {
				t.Errorf("SubmitRun(tag %q) answered %d bytes, want under 1 KiB", tt.tmpl, n)
			}
			if took > hangGuard {
				t.Errorf("SubmitRun(tag %q) took %v", tt.tmpl, took)
			}
			t.Logf("refused in %v: %v", took, err)
		})
	}
}

// TestTemplateBombInTaskFile: `kiln run` of a task file holding a bomb is refused when it is submitted, with a
// short answer naming the file, the line and the limit; no run is queued.
func TestTemplateBombInTaskFile(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 }) // refused at submission: no run starts
	for _, tt := range templateBombs {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			run, out, code := k.runFile(t, map[string]string{
				"acb.yaml": "version: v1.1.0\nsteps:\n  - cmd: busybox echo " + tt.tmpl + "\n",
			})
			took := time.Since(start)
			if code == 0 || run != nil {
				t.Fatalf("kiln run (%s) = exit %d, run %v, want refused\n%.2000s", tt.tmpl, code, run, out)
			}
			if !strings.Contains(out, "task file:3: ") || !strings.Contains(out, tt.fileSays) {
				t.Errorf("kiln run (%s) said\n%.2000s\nwant task file:3: and %q", tt.tmpl, out, tt.fileSays)
			}
			if len(out) > 1024 {
				t.Errorf("kiln run (%s) printed %d bytes, want under 1 KiB", tt.tmpl, len(out))
			}
			if took > hangGuard+10*time.Second { // the CLI starts as a process of its own
				t.Errorf("kiln run (%s) took %v", tt.tmpl, took)
			}
			t.Logf("refused in %v: %s", took, strings.TrimSpace(out))
		})
	}
}

// TestDroppedSprigFunction: Sprig's key generation is not there to call, in the API process or anywhere.
func TestDroppedSprigFunction(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 }) // refused at submission: no run starts
	run, out, code := k.runFile(t, map[string]string{
		"acb.yaml": "steps:\n  - cmd: busybox echo {{ genPrivateKey \"rsa\" | len }}\n",
	})
	if code == 0 || run != nil || !strings.Contains(out, `function "genPrivateKey" not defined: Kiln leaves this one of Sprig's out`) {
		t.Fatalf("kiln run with genPrivateKey = exit %d, run %v:\n%s\nwant it refused as a function Kiln leaves out", code, run, out)
	}
}
