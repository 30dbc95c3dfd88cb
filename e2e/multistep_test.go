package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
	"github.com/kilnbuild/kiln/trigger/gittest"
)

// runFile runs `kiln run -f acb.yaml` with files as the context and args before the context, and returns the
// run as recorded, the CLI's output and its exit code.
func (k *kiln) runFile(t *testing.T, files map[string]string, args ...string) (*api.Run, string, int) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args = append(append([]string{"run", "-f", "acb.yaml"}, args...), dir)
	out, errOut, code := k.cli(t, args...)
	return k.runOf(t, out+errOut), out + errOut, code
}

var queuedID = regexp.MustCompile(`Queued a run with ID: (k[0-9a-z]+)`)

// runOf returns the run whose ID the CLI's output names, or nil when it names none.
func (k *kiln) runOf(t *testing.T, out string) *api.Run {
	t.Helper()
	m := queuedID.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	return k.waitDone(t, m[1])
}

// stepOf returns the step id of run.
func stepOf(t *testing.T, run *api.Run, id string) api.Step {
	t.Helper()
	for _, s := range run.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("run %s has no step %s: %+v", run.ID, id, run.Steps)
	return api.Step{}
}

// TestMultiStep runs ACR task files on the real BuildKit: no Docker daemon anywhere.
func TestMultiStep(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	base := reg + "/base/busybox:1"

	t.Run("build, test with a cmd step, push", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{
			"Dockerfile": "FROM " + base + "\nCOPY hello.txt /hello.txt\n",
			"hello.txt":  "hello from a step " + nonce() + "\n",
			"acb.yaml": `version: v1.1.0
steps:
  - id: build
    build: -t $Registry/steps/app:$ID .
  - id: test
    cmd: $Registry/steps/app:$ID cat /hello.txt
  - id: push
    push: ["$Registry/steps/app:$ID"]
`,
		})
		if code != 0 || run == nil || run.Status != "Succeeded" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		if !strings.Contains(out, "[test] hello from a step") {
			t.Errorf("the log does not show the test step's output:\n%s", out)
		}
		ref := reg + "/steps/app:" + run.ID
		for _, id := range []string{"build", "test", "push"} {
			if s := stepOf(t, run, id); s.Status != "Succeeded" || s.StartedAt == nil || s.FinishedAt == nil {
				t.Errorf("step %s = %+v, want Succeeded with its times", id, s)
			}
		}
		if b := stepOf(t, run, "build"); len(b.Images) != 1 || b.Images[0].Reference != ref {
			t.Errorf("build step images = %+v, want %s", b.Images, ref)
		}
		if len(run.Images) != 1 || run.Images[0].Reference != ref {
			t.Errorf("run images = %+v, want %s pushed", run.Images, ref)
		}
		if got, _ := imageFile(t, ref, "/hello.txt"); !strings.HasPrefix(got, "hello from a step") {
			t.Errorf("/hello.txt in the pushed %s = %q", ref, got)
		}
	})

	t.Run("parallel steps overlap", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": `steps:
  - id: a
    when: ["-"]
    cmd: {{.Values.base}} sleep 1
  - id: b
    when: ["-"]
    cmd: {{.Values.base}} sleep 1
  - id: after
    when: [a, b]
    cmd: {{.Values.base}} true
`}, "--set", "base="+base)
		if code != 0 || run == nil || run.Status != "Succeeded" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		times := func(id string) (time.Time, time.Time) {
			start := logTime(t, out, `Step `+id+` \(cmd\) started at (\S+)`)
			end := logTime(t, out, `Step `+id+` succeeded at (\S+)`)
			return start, end
		}
		aStart, aEnd := times("a")
		bStart, bEnd := times("b")
		afterStart, _ := times("after")
		if !aStart.Before(bEnd) || !bStart.Before(aEnd) {
			t.Errorf("a ran %s–%s and b %s–%s by the log: they did not overlap", aStart, aEnd, bStart, bEnd)
		}
		if afterStart.Before(aEnd) || afterStart.Before(bEnd) {
			t.Errorf("after started at %s, before a (%s) and b (%s) ended", afterStart, aEnd, bEnd)
		}
	})

	t.Run("parallel steps keep each other's writes to the workspace", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": `steps:
  - id: a
    when: ["-"]
    cmd: {{.Values.base}} sh -c "echo from-a > /workspace/a.txt && sleep 2"
  - id: b
    when: ["-"]
    cmd: {{.Values.base}} sh -c "echo from-b > /workspace/b.txt && sleep 2"
  - id: both
    when: [a, b]
    cmd: {{.Values.base}} cat /workspace/a.txt /workspace/b.txt
`}, "--set", "base="+base)
		if code != 0 || run == nil || run.Status != "Succeeded" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		aStart := logTime(t, out, `Step a \(cmd\) started at (\S+)`)
		aEnd := logTime(t, out, `Step a succeeded at (\S+)`)
		bStart := logTime(t, out, `Step b \(cmd\) started at (\S+)`)
		bEnd := logTime(t, out, `Step b succeeded at (\S+)`)
		if !aStart.Before(bEnd) || !bStart.Before(aEnd) {
			t.Errorf("a ran %s–%s and b %s–%s by the log: they did not overlap", aStart, aEnd, bStart, bEnd)
		}
		if !strings.Contains(out, "[both] from-a") || !strings.Contains(out, "[both] from-b") {
			t.Errorf("the step after a and b does not show both files:\n%s", out)
		}
	})

	t.Run("a failing cmd step fails the run with its exit code", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - id: boom\n    cmd: " + base + " sh -c \"exit 3\"\n  - cmd: " + base + " echo never\n"})
		if code != 1 || run == nil || run.Status != "Failed" {
			t.Fatalf("kiln run = exit %d, run %+v\n%s", code, run, out)
		}
		if s := stepOf(t, run, "boom"); s.ExitCode != 3 || s.Status != "Failed" || !strings.Contains(run.Error, "3") {
			t.Errorf("step boom = %+v, run error %q; want Failed with exit code 3", s, run.Error)
		}
		if s := stepOf(t, run, "acb_step_1"); s.Status != "Skipped" || s.StartedAt != nil {
			t.Errorf("the step after a failure = %+v, want it never started", s)
		}
		if strings.Contains(out, "never") && !strings.Contains(out, "echo never") {
			t.Errorf("the step after the failure ran:\n%s", out)
		}
	})

	t.Run("ignoreErrors", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - id: flaky\n    cmd: " + base + " false\n    ignoreErrors: true\n  - id: next\n    cmd: " + base + " echo went-on\n"})
		if code != 0 || run == nil || run.Status != "Succeeded" || !strings.Contains(out, "[next] went-on") {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		if s := stepOf(t, run, "flaky"); !s.ErrorIgnored || s.ExitCode != 1 {
			t.Errorf("step flaky = %+v, want its failure ignored, exit code 1", s)
		}
	})

	t.Run("a step timeout", func(t *testing.T) {
		started := time.Now()
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - id: slow\n    cmd: " + base + " sleep 60\n    timeout: 1\n"})
		if code != 1 || run == nil || run.Status != "Failed" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		if s := stepOf(t, run, "slow"); !strings.Contains(s.Error, "timed out") {
			t.Errorf("step slow = %+v, want it timed out", s)
		}
		if took := time.Since(started); took > 30*time.Second {
			t.Errorf("a 1-second step timeout took %s to end the run", took)
		}
	})

	t.Run("retries", func(t *testing.T) {
		// flaky fails until gate, beside it, has left /workspace/ready: its first attempts fail, a retry succeeds.
		// (A failed attempt's own writes to the workspace are not kept: BuildKit returns no result of a failed exec.)
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": `steps:
  - id: gate
    when: ["-"]
    cmd: ` + base + ` sh -c "sleep 2 && touch /workspace/ready"
  - id: flaky
    when: ["-"]
    cmd: ` + base + ` test -f /workspace/ready
    retries: 8
    retryDelay: 1
`})
		if code != 0 || run == nil || run.Status != "Succeeded" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		if s := stepOf(t, run, "flaky"); s.Attempts < 2 || s.Status != "Succeeded" {
			t.Errorf("step flaky = %+v, want Succeeded after a retry", s)
		}
		if n := strings.Count(out, "Step flaky failed"); n < 1 {
			t.Errorf("the log shows %d failed attempts of flaky before its retry succeeded:\n%s", n, out)
		}
	})

	t.Run("values from --values and --set", func(t *testing.T) {
		values := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(values, []byte("greeting: hello\nname: world\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - cmd: " + base + ` echo "{{.Values.greeting | upper}}, {{.Values.name}}"` + "\n"},
			"--values", values, "--set", "name=kiln")
		if code != 0 || run == nil || !strings.Contains(out, "HELLO, kiln") {
			t.Fatalf("kiln run = exit %d, want HELLO, kiln in the log\n%s", code, out)
		}
	})

	t.Run("a secret reaches the step, not the log or the record", func(t *testing.T) {
		secret := "s3cr3t-" + nonce()
		if err := k.api.SetSecret(context.Background(), "e2etoken", []byte(secret)); err != nil {
			t.Fatal(err)
		}
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": `secrets:
  - id: e2etoken
steps:
  - id: write
    cmd: ` + base + ` sh -c "echo {{.Secrets.e2etoken}} > /workspace/token.txt; echo the token is {{.Secrets.e2etoken}}"
  - id: read
    cmd: ` + base + ` sh -c "test \"$(cat /workspace/token.txt)\" = {{.Secrets.e2etoken}} && echo workspace-has-it"
`})
		if code != 0 || run == nil || run.Status != "Succeeded" || !strings.Contains(out, "workspace-has-it") {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		if strings.Contains(out, secret) || !strings.Contains(out, "the token is ***") {
			t.Errorf("the log shows the secret, or not its mask:\n%s", out)
		}
		if strings.Contains(k.logOf(t, run.ID), secret) {
			t.Error("the stored log holds the secret")
		}
		req, err := http.NewRequest(http.MethodGet, k.APIURL()+"/v1/runs/"+run.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+k.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		record, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/runs/%s = %s: %s", run.ID, resp.Status, record)
		}
		if strings.Contains(string(record), secret) {
			t.Errorf("the run record holds the secret: %s", record)
		}
	})

	t.Run("an unsupported field is refused with its line", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": "steps:\n  - cmd: " + base + " true\n    isolation: hyperv\n"})
		if code == 0 || run != nil || !strings.Contains(out, "isolation") || !strings.Contains(out, ":3") {
			t.Errorf("kiln run = exit %d, run %v\n%s\nwant a refusal naming isolation on line 3", code, run, out)
		}
	})

	t.Run("--cmd with no context", func(t *testing.T) {
		out, errOut, code := k.cli(t, "run", "--cmd", base+" echo hi-from-cmd", os.DevNull)
		run := k.runOf(t, out)
		if code != 0 || run == nil || run.Status != "Succeeded" || !strings.Contains(out, "hi-from-cmd") {
			t.Fatalf("kiln run --cmd = exit %d\n%s%s", code, out, errOut)
		}
	})
}

// logTime finds the first match of pattern in the log and parses its group as a step clock time.
func logTime(t *testing.T, log, pattern string) time.Time {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no %q in the log:\n%s", pattern, log)
	}
	ts, err := time.Parse("15:04:05.000", m[1])
	if err != nil {
		t.Fatalf("time %q in the log: %v", m[1], err)
	}
	return ts
}

// TestTaskFileTask: a task whose -f is a task file runs its steps from the commit it builds; a task file Kiln
// refuses is refused when the task is saved.
func TestTaskFileTask(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	g := gittest.NewServer(t, "")
	r := gittest.NewRepo(t)
	r.Commit(map[string]string{
		"Dockerfile": "FROM " + reg + "/base/busybox:1\nCOPY msg /msg\n",
		"msg":        "from git\n",
		"ci/acb.yaml": `version: v1.1.0
steps:
  - build: -t $Registry/steps/task:$ID .
  - cmd: $Registry/steps/task:$ID sh -c "cat /msg; echo branch {{.Run.Branch}} commit {{.Run.Commit}}"
  - push: ["$Registry/steps/task:$ID"]
`,
	})
	url := g.Publish(r, "team/steps.git", "main")
	out, errOut, code := k.cli(t, "task", "create", "steps", "--context", url+"#main", "-f", "ci/acb.yaml")
	if code != 0 {
		t.Fatalf("kiln task create -f ci/acb.yaml = exit %d\n%s%s", code, out, errOut)
	}
	deps, err := k.api.TaskDeps(context.Background(), "steps")
	if err != nil || len(deps.Bases) != 1 || deps.Bases[0].Reference != reg+"/base/busybox:1" || !deps.Bases[0].Tracked {
		t.Errorf("deps of the task file's task = %+v, %v; want its build step's base %s/base/busybox:1, tracked", deps, err, reg)
	}
	out, errOut, code = k.cli(t, "task", "run", "steps")
	run := k.runOf(t, out)
	if code != 0 || run == nil || run.Status != "Succeeded" {
		t.Fatalf("kiln task run steps = exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "from git") || !strings.Contains(out, "branch main commit "+run.Git.Commit) || len(run.Steps) != 3 {
		t.Errorf("run %s: %d steps, log\n%s\nwant the file's three steps, the committed /msg and the branch and commit", run.ID, len(run.Steps), out)
	}
	if len(run.Images) != 1 || run.Images[0].Reference != reg+"/steps/task:"+run.ID {
		t.Errorf("run %s pushed %+v", run.ID, run.Images)
	}

	bad := gittest.NewRepo(t)
	bad.Commit(map[string]string{"acb.yaml": "steps:\n  - cmd: busybox true\n    privileged: true\n"})
	badURL := g.Publish(bad, "team/bad-steps.git", "main")
	out, errOut, code = k.cli(t, "task", "create", "bad", "--context", badURL+"#main", "-f", "acb.yaml")
	if code == 0 || !strings.Contains(out+errOut, "privileged") || !strings.Contains(out+errOut, ":3") {
		t.Errorf("kiln task create with a refused field = exit %d\n%s%s\nwant a refusal naming privileged on line 3", code, out, errOut)
	}
}
