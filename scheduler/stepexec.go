package scheduler

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
)

// exec runs step i once, writing its output to log.
func (x *stepExec) exec(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
	st := x.file.Steps[i]
	switch {
	case st.Build != nil:
		return x.build(ctx, i, log)
	case st.Cmd != nil:
		return x.cmd(ctx, i, log)
	default:
		return x.push(ctx, i, log)
	}
}

// build runs a build step: a BuildKit solve of the step's context (relative to its working directory in the
// workspace), exported as an OCI layout that later steps of the run use by the step's tags.
func (x *stepExec) build(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
	st := x.file.Steps[i]
	b := st.Build
	contextDir, err := x.hostPath(st.WorkingDirectory, b.Context)
	if err != nil {
		return nil, err
	}
	layout := filepath.Join(x.work, "step-"+strconv.Itoa(i))
	if err := os.RemoveAll(layout); err != nil {
		return nil, fmt.Errorf("emptying the step's layout directory: %w", err)
	}
	if err := os.MkdirAll(layout, 0o700); err != nil {
		return nil, fmt.Errorf("making the step's layout directory: %w", err)
	}
	// The run's workspace is its own directory: its build steps share a key, so that each sends BuildKit only
	// what the steps before it changed. A context that cannot be named (it is missing) gets a key of its own,
	// and the build says what is wrong with it.
	key, _ := builder.DirContextKey(contextDir)
	res, err := x.w.Builder.Build(ctx, builder.Request{ContextDir: contextDir, Dockerfile: b.Dockerfile, BuildArgs: b.BuildArgs,
		Target: b.Target, Platform: b.Platform, OutputDir: layout, NoCache: b.NoCache, Pull: b.Pull, Labels: b.Labels,
		ContextKey: key, Network: x.network}, log)
	if err != nil {
		return nil, err
	}
	out := &proto.StepResult{}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, tag := range b.Tags {
		ref := qualify(tag, x.w.DefaultRegistry)
		x.built[ref] = layout
		out.Images = append(out.Images, &proto.Image{Reference: ref, Digest: res.Digest})
	}
	for _, base := range res.BaseImages {
		x.bases = append(x.bases, &proto.Image{Reference: base.Ref, Digest: base.Digest})
	}
	fmt.Fprintf(log, "Built %s as %s\n", res.Digest, strings.Join(b.Tags, ", "))
	return out, nil
}

// cmd runs a cmd step: the image (one built earlier in the run, found by its name qualified as tags are, or
// else pulled from its registry, Docker Hub for a name with none) as a container through BuildKit, with the
// workspace at /workspace.
func (x *stepExec) cmd(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
	st := x.file.Steps[i]
	req := builder.ExecRequest{
		Image:      st.Cmd.Ref(), // busybox is docker.io/library/busybox:latest, as docker run reads it
		Args:       st.Cmd.Args,
		Env:        st.Env,
		WorkingDir: st.WorkingDirectory,
		User:       st.User,
		Workspace:  x.workspace,
		Network:    x.network,
	}
	if st.EntryPoint != "" {
		req.Entrypoint = []string{st.EntryPoint}
	}
	x.mu.Lock()
	if layout, ok := x.built[qualify(st.Cmd.Image, x.w.DefaultRegistry)]; ok {
		req.Image, req.Layout = "", layout // the step's own layout holds the one image it built
	}
	x.mu.Unlock()
	code, err := x.w.Builder.Exec(ctx, req, log)
	return &proto.StepResult{ExitCode: int32(code)}, err
}

// push runs a push step: each image, built by an earlier step of the run, pushed with go-containerregistry.
func (x *stepExec) push(ctx context.Context, i int, log io.Writer) (*proto.StepResult, error) {
	st := x.file.Steps[i]
	out := &proto.StepResult{}
	for _, tag := range st.Push {
		ref := qualify(tag, x.w.DefaultRegistry)
		x.mu.Lock()
		layout, ok := x.built[ref]
		x.mu.Unlock()
		if !ok {
			return out, proto.Errorf(proto.Invalid, "push %s: no earlier step of this run built it (build it with -t %s, and make the push step wait for that step)", tag, tag)
		}
		images, err := builder.Push(ctx, layout, []string{ref}, log, x.w.PushOptions)
		out.Images = append(out.Images, images...)
		x.mu.Lock()
		x.images = append(x.images, images...)
		x.mu.Unlock()
		x.w.announcePushed(ctx, x.run, images, x.secrets)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// hostPath is where the build context rel, seen from the working directory wd inside the container, is in the
// workspace on this machine. A context outside /workspace is refused: a build reads its context from the
// workspace.
func (x *stepExec) hostPath(wd, rel string) (string, error) {
	if wd == "" {
		wd = workspaceMount
	}
	p := path.Clean(path.Join(wd, rel))
	if path.IsAbs(rel) {
		p = path.Clean(rel)
	}
	inner, ok := strings.CutPrefix(p, workspaceMount)
	if !ok || (inner != "" && !strings.HasPrefix(inner, "/")) {
		return "", proto.Errorf(proto.Invalid, "build context %s is outside %s, the run's workspace", p, workspaceMount)
	}
	return filepath.Join(x.workspace, filepath.FromSlash(strings.TrimPrefix(inner, "/"))), nil
}

func (x *stepExec) pushed() []*proto.Image {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.images
}

func (x *stepExec) baseImages() []*proto.Image {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.bases
}

// qualify puts registry in front of a reference that names no registry, as tags of kiln build get it.
func qualify(ref, registry string) string {
	if registry == "" {
		return ref
	}
	if first, _, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	return registry + "/" + ref
}
