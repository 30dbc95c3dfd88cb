package builder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/proto"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// appDockerfile is an image whose config sets everything docker run honours.
const appDockerfile = `ARG BASE
FROM ${BASE}
ENV GREETING=hello
WORKDIR /srv
RUN echo from the image > /srv/file.txt
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo \"$GREETING from $(pwd) as $(id -u)\""]
`

// execImages pushes the busybox base and the app image built on it to a registry of the test's own, and
// returns their references and the app's OCI layout.
func execImages(t *testing.T, b *Builder) (base, app, layout string) {
	t.Helper()
	host := newRegistry(t)
	base, _ = pushBase(t, b, host)
	_, layout, log, err := build(t, b, map[string]string{"Dockerfile": appDockerfile}, Request{BuildArgs: map[string]string{"BASE": base}})
	if err != nil {
		t.Fatalf("Build(app) = %v\n%s", err, log)
	}
	app = host + "/app:1"
	if _, err := Push(t.Context(), layout, []string{app}, io.Discard, PushOptions{}); err != nil {
		t.Fatalf("Push(%s) = %v", app, err)
	}
	return base, app, layout
}

// execLog runs req and returns its exit code, its log and its error.
func execLog(t *testing.T, b *Builder, req ExecRequest) (int, string, error) {
	t.Helper()
	var log syncBuffer
	code, err := b.Exec(t.Context(), req, &log)
	return code, log.String(), err
}

func TestExec(t *testing.T) {
	b := newBuilder(t)
	base, app, layout := execImages(t, b)
	baseRef, err := name.ParseReference(base)
	if err != nil {
		t.Fatal(err)
	}
	baseDesc, err := remote.Head(baseRef, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		req  ExecRequest
		want string // the log
	}{
		{
			name: "digest reference",
			req:  ExecRequest{Image: baseRef.Context().String() + "@" + baseDesc.Digest.String(), Args: []string{"echo", "pinned"}},
			want: "pinned\n",
		},
		{
			name: "echo",
			req:  ExecRequest{Image: base, Args: []string{"echo", "hello", "world"}},
			want: "hello world\n",
		},
		{
			name: "stderr",
			req:  ExecRequest{Image: base, Args: []string{"sh", "-c", "echo err >&2"}},
			want: "err\n",
		},
		{
			name: "image defaults",
			req:  ExecRequest{Image: app},
			want: "hello from /srv as 1000\n",
		},
		{
			name: "args replace CMD",
			req:  ExecRequest{Image: app, Args: []string{"cat file.txt"}},
			want: "from the image\n",
		},
		{
			name: "env and working directory",
			req:  ExecRequest{Image: app, Env: []string{"GREETING=bonjour"}, WorkingDir: "/tmp"},
			want: "bonjour from /tmp as 1000\n",
		},
		{
			name: "user",
			req:  ExecRequest{Image: app, User: "0"},
			want: "hello from /srv as 0\n",
		},
		{
			name: "entrypoint drops CMD",
			req:  ExecRequest{Image: app, Entrypoint: []string{"echo", "no cmd"}},
			want: "no cmd\n",
		},
		{
			name: "entrypoint and args",
			req:  ExecRequest{Image: app, Entrypoint: []string{"echo"}, Args: []string{"a", "b"}},
			want: "a b\n",
		},
		{
			name: "empty entrypoint",
			req:  ExecRequest{Image: app, Entrypoint: []string{}, Args: []string{"pwd"}},
			want: "/srv\n",
		},
		{
			name: "platform",
			req:  ExecRequest{Image: base, Platform: "linux/amd64", Args: []string{"uname", "-m"}},
			want: "x86_64\n",
		},
		{
			name: "layout built in the run",
			req:  ExecRequest{Layout: layout},
			want: "hello from /srv as 1000\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, log, err := execLog(t, b, tt.req)
			if err != nil || code != 0 {
				t.Fatalf("Exec() = %d, %v, want 0, nil\n%s", code, err, log)
			}
			if log != tt.want {
				t.Errorf("Exec() log = %q, want %q", log, tt.want)
			}
		})
	}
}

// TestExecPull runs an image of which buildkitd has a layer to download: the log tells of the pull once.
func TestExecPull(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, _ := pushBase(t, b, host)
	baseRef, err := name.ParseReference(base)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(baseRef, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := random.Layer(1<<20, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/pulled:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	dgst, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	for i, want := range []string{"pulling " + ref.String() + "@" + dgst.String() + "\nhello\n", "hello\n"} {
		code, log, err := execLog(t, b, ExecRequest{Image: ref.String(), Args: []string{"echo", "hello"}})
		if err != nil || code != 0 || log != want {
			t.Errorf("Exec(%d) = %d, %v, log %q, want 0, nil, %q", i, code, err, log, want)
		}
	}
}

func TestExecFailures(t *testing.T) {
	b := newBuilder(t)
	base, _, _ := execImages(t, b)
	host, _, _ := strings.Cut(base, "/")

	tests := []struct {
		name     string
		req      ExecRequest
		wantCode int
		wantMsg  string // in the error's message
		wantLog  string // in the log
	}{
		{
			name:     "exit code",
			req:      ExecRequest{Image: base, Args: []string{"sh", "-c", "echo about to fail; exit 3"}},
			wantCode: 3,
			wantMsg:  "the command exited with code 3",
			wantLog:  "about to fail\n",
		},
		{
			name:     "missing image",
			req:      ExecRequest{Image: host + "/nosuch:1", Args: []string{"true"}},
			wantCode: -1,
			wantMsg:  host + "/nosuch:1",
		},
		{
			name:     "unresolvable registry",
			req:      ExecRequest{Image: "nosuch.invalid/x:1", Args: []string{"true"}},
			wantCode: -1,
			wantMsg:  "nosuch.invalid/x:1",
		},
		{
			// runc fails to start it, and exits 1: only the log tells it from a command that exits 1.
			name:     "missing command",
			req:      ExecRequest{Image: base, Args: []string{"nosuch-command"}},
			wantCode: 1,
			wantMsg:  "the command exited with code 1",
			wantLog:  `exec: "nosuch-command": executable file not found in $PATH`,
		},
		{
			name:     "no command",
			req:      ExecRequest{Image: base},
			wantCode: -1,
			wantMsg:  "no command",
		},
		{
			name:     "image and layout",
			req:      ExecRequest{Image: base, Layout: t.TempDir(), Args: []string{"true"}},
			wantCode: -1,
			wantMsg:  "either an image or an OCI layout",
		},
		{
			name:     "bad env",
			req:      ExecRequest{Image: base, Env: []string{"NOVALUE"}, Args: []string{"true"}},
			wantCode: -1,
			wantMsg:  `"NOVALUE" is not KEY=VALUE`,
		},
		{
			name:     "no layout",
			req:      ExecRequest{Layout: t.TempDir(), Args: []string{"true"}},
			wantCode: -1,
			wantMsg:  "index.json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, log, err := execLog(t, b, tt.req)
			t.Logf("Exec() = %d, %v", code, err)
			if code != tt.wantCode || proto.ErrorCode(err) != proto.Invalid {
				t.Fatalf("Exec() = %d, %v (kind %q), want %d and kind %q\n%s", code, err, proto.ErrorCode(err), tt.wantCode, proto.Invalid, log)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) || strings.Contains(msg, "\n") || strings.Contains(msg, "rpc error") {
				t.Errorf("Exec() = %q, want one line with %q and without gRPC's wrapping", msg, tt.wantMsg)
			}
			if !strings.Contains(log, tt.wantLog) || !strings.HasSuffix(log, "ERROR: "+err.Error()+"\n") {
				t.Errorf("Exec() log = %q, want %q in it and the error last", log, tt.wantLog)
			}
		})
	}
}

// TestExecBuildThenTest runs an image of a layout that Build made, as a run's build step then cmd step do,
// picking it in a layout of several by digest or by name.
func TestExecBuildThenTest(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, _ := pushBase(t, b, host)
	_, layout, log, err := build(t, b, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY test.sh /test.sh\nENTRYPOINT [\"sh\", \"/test.sh\"]\n",
		"test.sh":    "echo testing \"$@\" in $(pwd)\nls /workspace\n",
	}, Request{BuildArgs: map[string]string{"BASE": base}})
	if err != nil {
		t.Fatalf("Build() = %v\n%s", err, log)
	}
	desc, err := layoutImage(layout, "")
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{"source.go": "package main\n"})

	tests := []struct {
		name string
		ref  string
	}{
		{name: "only image"},
		{name: "digest", ref: desc.Digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, log, err := execLog(t, b, ExecRequest{Layout: layout, LayoutRef: tt.ref, Workspace: ws, WorkingDir: "/workspace", Args: []string{"unit"}})
			if err != nil || code != 0 {
				t.Fatalf("Exec() = %d, %v\n%s", code, err, log)
			}
			if want := "testing unit in /workspace\nsource.go\n"; log != want {
				t.Errorf("Exec() log = %q, want %q", log, want)
			}
		})
	}
	if _, _, err := execLog(t, b, ExecRequest{Layout: layout, LayoutRef: "nosuch", Args: []string{"true"}}); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("Exec(LayoutRef nosuch) = %v, want kind %q", err, proto.Invalid)
	}
}

func TestLayoutImage(t *testing.T) {
	dir := t.TempDir()
	a := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageManifest, Digest: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		Annotations: map[string]string{ocispecs.AnnotationRefName: "example.com:5000/app:v1"}}
	bb := ocispecs.Descriptor{MediaType: ocispecs.MediaTypeImageManifest, Digest: "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		Annotations: map[string]string{"io.containerd.image.name": "example.com/tools:latest"}}
	writeFiles(t, dir, map[string]string{ocispecs.ImageIndexFile: `{"schemaVersion":2,"manifests":[` + jsonOf(t, a) + "," + jsonOf(t, bb) + `]}`})

	tests := []struct {
		ref  string
		want ocispecs.Descriptor // zero: an error of kind proto.Invalid
	}{
		{ref: "example.com:5000/app:v1", want: a},
		{ref: "v1", want: a},
		{ref: "latest", want: bb},
		{ref: "example.com/tools:latest", want: bb},
		{ref: bb.Digest.String(), want: bb},
		{ref: ""},
		{ref: "5000"},
		{ref: "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},
	}
	for _, tt := range tests {
		got, err := layoutImage(dir, tt.ref)
		if tt.want.Digest == "" {
			if proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("layoutImage(%q) = %v, %v, want kind %q", tt.ref, got.Digest, err, proto.Invalid)
			}
			continue
		}
		if err != nil || got.Digest != tt.want.Digest {
			t.Errorf("layoutImage(%q) = %v, %v, want %v", tt.ref, got.Digest, err, tt.want.Digest)
		}
	}
}

func TestCommand(t *testing.T) {
	img := ocispecs.ImageConfig{Entrypoint: []string{"ep"}, Cmd: []string{"cmd", "arg"}}
	tests := []struct {
		name             string
		img              ocispecs.ImageConfig
		entrypoint, args []string
		want             []string
	}{
		{name: "image's", img: img, want: []string{"ep", "cmd", "arg"}},
		{name: "args", img: img, args: []string{"x"}, want: []string{"ep", "x"}},
		{name: "entrypoint", img: img, entrypoint: []string{"e"}, want: []string{"e"}},
		{name: "both", img: img, entrypoint: []string{"e"}, args: []string{"x"}, want: []string{"e", "x"}},
		{name: "empty entrypoint", img: img, entrypoint: []string{}, args: []string{"x"}, want: []string{"x"}},
		{name: "cmd only", img: ocispecs.ImageConfig{Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "nothing", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := command(tt.img, tt.entrypoint, tt.args); !slices.Equal(got, tt.want) {
				t.Errorf("command(%v, %q, %q) = %q, want %q", tt.img, tt.entrypoint, tt.args, got, tt.want)
			}
		})
	}
}

func TestExecCancel(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, _ := pushBase(t, b, host)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &lineWatcher{want: "sleeping", seen: make(chan struct{})}
	type outcome struct {
		code int
		err  error
		at   time.Time
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := b.Exec(ctx, ExecRequest{Image: base, Workspace: t.TempDir(), Args: []string{"sh", "-c", "echo sleeping && sleep 31"}}, log)
		done <- outcome{code, err, time.Now()}
	}()
	select {
	case <-log.seen:
	case o := <-done:
		t.Fatalf("Exec() = %d, %v before the command started\n%s", o.code, o.err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the command did not start within a minute\n%s", log.String())
	}
	for end := time.Now().Add(5 * time.Second); !sleeping(t, "31"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) { // the shell prints before it starts sleep
			t.Fatalf("no sleep 31 among this machine's processes while the command runs")
		}
	}
	canceled := time.Now()
	cancel()
	select {
	case o := <-done:
		defer func() {
			for end := time.Now().Add(5 * time.Second); sleeping(t, "31"); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(end) {
					t.Errorf("the command still runs 5s after Exec returned")
					break
				}
			}
		}()
		t.Logf("Exec() = %d, %v after %v", o.code, o.err, o.at.Sub(canceled))
		if took := o.at.Sub(canceled); took > 2*time.Second {
			t.Errorf("Exec() returned %v after cancel, want within 2s", took)
		}
		if o.code != -1 || !errors.Is(o.err, context.Canceled) || proto.ErrorCode(o.err) != proto.Unavailable {
			t.Errorf("Exec() = %d, %v (kind %q), want -1 and context.Canceled of kind %q", o.code, o.err, proto.ErrorCode(o.err), proto.Unavailable)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Exec() still running 10s after cancel")
	}
}

// sleeping reports whether a process of this machine runs sleep secs.
func sleeping(t *testing.T, secs string) bool {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cmdlines {
		if b, err := os.ReadFile(p); err == nil && string(b) == "sleep\x00"+secs+"\x00" {
			return true
		}
	}
	return false
}

func TestExecUnreachableBuildkitd(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	b, err := New(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	code, err := b.Exec(t.Context(), ExecRequest{Image: "busybox", Args: []string{"true"}}, io.Discard)
	t.Logf("Exec() = %d, %v", code, err)
	if code != -1 || proto.ErrorCode(err) != proto.Unavailable {
		t.Errorf("Exec() = %d, %v (kind %q), want -1 and kind %q", code, err, proto.ErrorCode(err), proto.Unavailable)
	}
}

// uptime reads /proc/uptime's first field, or the given content of it.
func uptime(t *testing.T, content string) time.Duration {
	t.Helper()
	if content == "" {
		b, err := os.ReadFile("/proc/uptime")
		if err != nil {
			t.Fatal(err)
		}
		content = string(b)
	}
	secs, _, _ := strings.Cut(strings.TrimSpace(content), " ")
	f, err := strconv.ParseFloat(secs, 64)
	if err != nil {
		t.Fatalf("/proc/uptime = %q, want seconds", content)
	}
	return time.Duration(f * float64(time.Second))
}

// jsonOf is v in JSON.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExecBuildkitdLost(t *testing.T) {
	host := newRegistry(t)
	base, _ := pushBase(t, newBuilder(t), host)
	proxy, addr := newCutProxy(t, buildkitdAddr)
	b, err := New(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	log := &lineWatcher{want: "sleeping", seen: make(chan struct{})}
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := b.Exec(t.Context(), ExecRequest{Image: base, Workspace: t.TempDir(), Args: []string{"sh", "-c", "echo sleeping && sleep 30"}}, log)
		done <- outcome{code, err}
	}()
	select {
	case <-log.seen:
	case o := <-done:
		t.Fatalf("Exec() = %d, %v before the command started\n%s", o.code, o.err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the command did not start within a minute\n%s", log.String())
	}
	start := time.Now()
	proxy.cut()
	select {
	case o := <-done:
		t.Logf("Exec() = %d, %v after %v", o.code, o.err, time.Since(start))
		if o.code != -1 || proto.ErrorCode(o.err) != proto.Unavailable {
			t.Errorf("Exec() = %d, %v (kind %q) once the connection is lost, want -1 and kind %q", o.code, o.err, proto.ErrorCode(o.err), proto.Unavailable)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Exec() still running 10s after the connection to buildkitd was lost")
	}
}

// TestExecTiming logs how long a cmd step on an image buildkitd already has takes, from the call to the command
// running and to the call's return, with and without a workspace. It checks nothing: the target, 300 ms to the
// command running, is the benchmark's to hold.
func TestExecTiming(t *testing.T) {
	b := newBuilder(t)
	base, _, layout := execImages(t, b)
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{"a.txt": "a\n", "dir/b.txt": "b\n"})

	tests := []struct {
		name string
		req  ExecRequest
	}{
		{name: "registry image", req: ExecRequest{Image: base}},
		{name: "registry image, workspace", req: ExecRequest{Image: base, Workspace: ws}},
		{name: "layout image, workspace", req: ExecRequest{Layout: layout, Workspace: ws, Entrypoint: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// busybox's date has no %N: /proc/uptime, the host's in the container too, ticks every 10ms.
			tt.req.Args = []string{"cat", "/proc/uptime"}
			var starts, totals []time.Duration
			for i := range 6 {
				start, t0 := time.Now(), uptime(t, "")
				code, log, err := execLog(t, b, tt.req)
				total := time.Since(start)
				if err != nil || code != 0 {
					t.Fatalf("Exec() = %d, %v\n%s", code, err, log)
				}
				if i == 0 { // the first pulls and warms up
					continue
				}
				starts, totals = append(starts, uptime(t, log)-t0), append(totals, total)
			}
			slices.Sort(starts)
			slices.Sort(totals)
			t.Logf("cached image: call to command running %v (median %v), whole call %v (median %v)",
				starts, starts[len(starts)/2], totals, totals[len(totals)/2])
		})
	}
}
