package builder

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/proto"
)

// syncBuffer is a bytes.Buffer safe to write from BuildKit's progress while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// build runs a Dockerfile build of files and returns its result, its OCI layout directory and its log.
func build(t *testing.T, b *Builder, files map[string]string, req Request) (*Result, string, string, error) {
	t.Helper()
	req.ContextDir = t.TempDir()
	req.OutputDir = filepath.Join(t.TempDir(), "oci")
	writeFiles(t, req.ContextDir, files)
	var log syncBuffer
	res, err := b.Build(t.Context(), req, &log)
	return res, req.OutputDir, log.String(), err
}

// pushBase builds a busybox image from scratch and pushes it to host as base:1, returning the reference and
// its digest. It needs the static busybox at /bin/busybox.
func pushBase(t *testing.T, b *Builder, host string) (string, string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("the build tests need a static busybox at /bin/busybox (apt-get install busybox-static): %v", err)
	}
	res, dir, log, err := build(t, b, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY --chmod=755 busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
		"busybox":    string(bb),
	}, Request{})
	if err != nil {
		t.Fatalf("Build(busybox base) = %v\n%s", err, log)
	}
	ref := host + "/base:1"
	if _, err := Push(t.Context(), dir, []string{ref}, io.Discard, PushOptions{}); err != nil {
		t.Fatalf("Push(%s) = %v", ref, err)
	}
	return ref, res.Digest
}

func TestBuildAndPush(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, baseDigest := pushBase(t, b, host)

	files := map[string]string{
		"ci/Kilnfile": `ARG BASE
FROM ${BASE} AS build
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from run" > /out/greeting.txt
COPY input.txt /out/input.txt

FROM ${BASE}
COPY --from=build /out/ /srv/
RUN cat /srv/input.txt >> /srv/greeting.txt
`,
		"input.txt": "from the context\n",
	}
	tests := []struct {
		name   string
		target string
		path   string // the file the image must hold
		want   string // its content
	}{
		{name: "final stage", path: "srv/greeting.txt", want: "bonjour from run\nfrom the context\n"},
		{name: "target stage", target: "build", path: "out/greeting.txt", want: "bonjour from run\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, dir, log, err := build(t, b, files, Request{
				Dockerfile: "ci/Kilnfile",
				BuildArgs:  map[string]string{"BASE": base, "GREETING": "bonjour"},
				Target:     tt.target,
				Platform:   "linux/amd64",
			})
			if err != nil {
				t.Fatalf("Build() = %v\n%s", err, log)
			}
			if !strings.Contains(log, "RUN mkdir -p /out") {
				t.Errorf("Build() log = %q, want BuildKit's RUN step in it", log)
			}
			wantBase := BaseImage{Ref: base, Digest: baseDigest}
			if len(res.BaseImages) != 1 || res.BaseImages[0] != wantBase {
				t.Errorf("Build().BaseImages = %v, want [%v]", res.BaseImages, wantBase)
			}

			refs := []string{host + "/app:1", host + "/app:latest"}
			var pushLog bytes.Buffer
			images, err := Push(t.Context(), dir, refs, &pushLog, PushOptions{})
			if err != nil {
				t.Fatalf("Push(%v) = %v", refs, err)
			}
			if len(images) != len(refs) {
				t.Fatalf("Push(%v) = %d images, want %d", refs, len(images), len(refs))
			}
			for i, img := range images {
				if img.GetReference() != refs[i] || img.GetDigest() != res.Digest {
					t.Errorf("Push(%v)[%d] = %s@%s, want %s@%s", refs, i, img.GetReference(), img.GetDigest(), refs[i], res.Digest)
				}
				if want := "pushed " + refs[i] + "@" + res.Digest; !strings.Contains(pushLog.String(), want) {
					t.Errorf("Push(%v) log = %q, want %q in it", refs, pushLog.String(), want)
				}
				if got := readImageFile(t, refs[i], res.Digest, tt.path); got != tt.want {
					t.Errorf("%s in %s = %q, want %q", tt.path, refs[i], got, tt.want)
				}
			}
		})
	}
}

// readImageFile pulls ref, checks that its digest is wantDigest, and returns the content of path in its
// flattened filesystem.
func readImageFile(t *testing.T, ref, wantDigest, path string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", ref, err)
	}
	if d, err := img.Digest(); err != nil || d.String() != wantDigest {
		t.Errorf("remote.Image(%s).Digest() = %v, %v, want %s", ref, d, err, wantDigest)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", ref, path)
		}
		if err != nil {
			t.Fatalf("reading %s: %v", ref, err)
		}
		if strings.TrimPrefix(hdr.Name, "/") == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("reading %s in %s: %v", path, ref, err)
			}
			return string(b)
		}
	}
}

func TestBuildFailures(t *testing.T) {
	b := newBuilder(t)
	host := newRegistry(t)
	base, _ := pushBase(t, b, host)

	tests := []struct {
		name    string
		files   map[string]string
		wantMsg string // in the error's message
		wantLog string // in the log
	}{
		{
			name:    "missing Dockerfile",
			files:   map[string]string{"README": "no Dockerfile here"},
			wantMsg: "failed to read dockerfile: open Dockerfile: no such file or directory",
			wantLog: "load build definition from Dockerfile",
		},
		{
			name:    "syntax error",
			files:   map[string]string{"Dockerfile": "FROM " + base + "\nFORM scratch\n"},
			wantMsg: "unknown instruction: FORM",
			wantLog: "unknown instruction: FORM",
		},
		{
			name:    "unknown base",
			files:   map[string]string{"Dockerfile": "FROM nosuch.invalid/x:1\nRUN true\n"},
			wantMsg: "nosuch.invalid/x:1",
			wantLog: "load metadata for nosuch.invalid/x:1",
		},
		{
			name:    "failing RUN",
			files:   map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo about to fail && exit 3\n"},
			wantMsg: `process "/bin/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3`,
			wantLog: "about to fail",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, log, err := build(t, b, tt.files, Request{})
			if code := proto.ErrorCode(err); code != proto.Invalid {
				t.Fatalf("Build() = %v (kind %q), want kind %q", err, code, proto.Invalid)
			}
			msg := err.Error()
			t.Logf("Build() = %q", msg)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Build() = %q, want %q in it", msg, tt.wantMsg)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "rpc error") || strings.Contains(msg, "failed to solve") {
				t.Errorf("Build() = %q, want one line without gRPC's or the client's wrapping", msg)
			}
			if !strings.Contains(log, tt.wantLog) || !strings.Contains(log, "ERROR") {
				t.Errorf("Build() log = %q, want %q and BuildKit's ERROR line in it", log, tt.wantLog)
			}
		})
	}
}

func TestBuildDockerfilePath(t *testing.T) {
	b := newBuilder(t)
	tests := []struct {
		name       string
		dockerfile string
		wantMsg    string
	}{
		{name: "outside the context", dockerfile: "../Dockerfile", wantMsg: "not inside the build context"},
		{name: "absolute", dockerfile: "/Dockerfile", wantMsg: "not inside the build context"},
		{name: "missing directory", dockerfile: "nosuch/Dockerfile", wantMsg: "the build context has no directory nosuch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := build(t, b, map[string]string{"Dockerfile": "FROM scratch\n"}, Request{Dockerfile: tt.dockerfile})
			if code := proto.ErrorCode(err); code != proto.Invalid || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Build(Dockerfile %s) = %v (kind %q), want kind %q with %q", tt.dockerfile, err, code, proto.Invalid, tt.wantMsg)
			}
		})
	}
}

func TestPing(t *testing.T) {
	if err := newBuilder(t).Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v, want nil", err)
	}
}
