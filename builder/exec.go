package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/kilnbuild/kiln/proto"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	sessioncontent "github.com/moby/buildkit/session/content"
	"github.com/moby/buildkit/session/grpchijack"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/grpcerrors"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
)

// WorkspaceDir is where an Exec's workspace is mounted in the container.
const WorkspaceDir = "/workspace"

// ExecRequest is one command run in a container, as a task file's cmd step: docker run on BuildKit.
type ExecRequest struct {
	// Image is the image to run, a registry reference pulled by buildkitd. Either it or Layout is set.
	Image string
	// Layout is an OCI image layout directory on this machine, such as the OutputDir of an earlier Build, and
	// LayoutRef says which of its images to run: a digest, or a name or tag its index.json gives the image
	// (org.opencontainers.image.ref.name); "" when the layout holds a single image.
	Layout, LayoutRef string

	// Entrypoint and Args are the command, as docker run's --entrypoint and arguments are: a nil Entrypoint
	// keeps the image's ENTRYPOINT, a non-nil one (even empty) replaces it and drops the image's CMD; Args, when
	// not empty, replace CMD.
	Entrypoint, Args []string
	// Env is K=V pairs set over the image's environment.
	Env []string
	// WorkingDir is the command's working directory; "" is the image's.
	WorkingDir string
	// User is the user the command runs as ("uid[:gid]", or a name the image's /etc/passwd knows); "" is the
	// image's.
	User string
	// Workspace is a host directory mounted read-write at /workspace, which holds what the command left there
	// once it has exited 0; "" mounts nothing.
	Workspace string
	// Platform is "os/arch[/variant]", or "" for the daemon's own.
	Platform string
	// Network is the command's network: "" (BuildKit's sandbox), proto.NetworkHost or proto.NetworkNone.
	Network string
}

// Exec runs req's command in a container of its image through BuildKit, as docker run would, with the run's
// workspace mounted at /workspace, and returns the command's exit code. The command's stdout and stderr go to
// log as they come, as the command wrote them, without BuildKit's step numbers and timings; the only other lines
// are "pulling IMAGE" when buildkitd has layers of the image to download, and the error, if any, last
// ("ERROR: ...").
//
// Exec is an action, not a build: the command runs at every call, never answered from BuildKit's cache. The
// image's ENTRYPOINT, CMD, ENV, WORKDIR and USER apply as they do for docker run. A registry image is resolved
// to a digest at every call, so a tag that moved is followed, and pulled by buildkitd with the credentials of
// the docker config if its cache lacks layers of it.
//
// The workspace goes into buildkitd before the command starts, and what the command changed of it comes back
// when the command exits 0: the files it wrote are written, owned as it left them when this process runs as
// root, and the files it deleted are deleted. Either way only the files whose size, time or mode changed cross,
// but inside buildkitd a workspace that changed since the previous Exec is copied once more. A command that
// fails or is stopped leaves the directory as it was before the call: BuildKit keeps nothing of a failed exec
// that could be exported. Concurrent Execs of one workspace do not see each other's writes, but each keeps the
// others': what a command did not touch stays as the host has it, and of a file that two commands changed, the
// one that ends last wins (see workspaceSync).
//
// A command that exits non-zero returns its exit code with an error of kind proto.Invalid ("the command exited
// with code N"); so does one runc cannot start (no such executable, exit code 1, runc's reason in the log).
// Every other failure returns -1: an image that cannot be found or pulled, an image with no command and none
// given, a bad request are kind proto.Invalid; a buildkitd that cannot be reached or is lost, or ctx done, kind
// proto.Unavailable (ctx's error then matches with errors.Is), and the container is killed with the solve.
func (b *Builder) Exec(ctx context.Context, req ExecRequest, log io.Writer) (exitCode int, err error) {
	if log == nil {
		log = io.Discard
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(log, "ERROR: %v\n", err)
		}
	}()
	x, err := newExec(req, b.authProvider())
	if err != nil {
		return -1, err
	}
	// The session is made here rather than by the client, for the workspace's copy back (see workspaceTarget).
	s, err := session.NewSession(ctx, "")
	if err != nil {
		return -1, fmt.Errorf("running a command: %w", err)
	}
	for _, a := range x.attachables {
		s.Allow(a)
	}
	go s.Run(context.WithoutCancel(ctx), grpchijack.Dialer(b.client.ControlClient()))
	defer s.Close()
	opt := client.SolveOpt{SharedSession: s, SessionPreInitialized: true, Exports: x.exports, AllowedEntitlements: x.allowed}

	status := make(chan *client.SolveStatus)
	done := copyExecOutput(status, x.name, log)
	_, err = b.client.Build(ctx, opt, "kiln", x.build, status) // closes status
	<-done
	if err == nil {
		return 0, nil
	}
	if ctx.Err() == nil && x.exit != nil {
		code := int(x.exit.ExitCode)
		return code, proto.Errorf(proto.Invalid, "the command exited with code %d", code)
	}
	err = execError(ctx, b.addr, err)
	if x.err != nil && proto.ErrorCode(err) == proto.Invalid {
		err = x.err
	}
	return -1, err
}

// execError gives a failed Exec its kind, as solveError does for a build.
func execError(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return proto.Errorf(proto.Unavailable, "running a command: stopped: %w", context.Cause(ctx))
	}
	if unavailable(err) {
		return proto.Errorf(proto.Unavailable, "running a command: buildkitd at %s: %s", addr, cause(err))
	}
	return proto.Errorf(proto.Invalid, "%s", cause(err))
}

// unavailable reports whether err says that buildkitd cannot be reached or was lost.
func unavailable(err error) bool {
	switch grpcerrors.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// execLayoutStore is the name of the session's content store that an Exec of a layout image reads it from.
const execLayoutStore = "kiln-exec-layout"

// execution is one Exec on its way: what the build function needs, and what it found.
type execution struct {
	req      ExecRequest
	name     string              // the name of the exec vertex, whose logs are the command's output
	platform *ocispecs.Platform  // nil: the daemon's
	network  pb.NetMode          // the command's network
	allowed  []string            // the entitlements the network needs
	layout   ocispecs.Descriptor // the layout image's descriptor, when req.Layout is set

	attachables []session.Attachable
	exports     []client.ExportEntry
	stamp       string // the workspace's metadata as the Exec starts (workspaceSync.stamp)
	wsKey       string // what BuildKit keeps its copy of the workspace under (workspaceSync.key)

	// set by build
	exit *gatewaypb.ExitError // the command's exit, when it ran and did not exit 0
	err  error                // a failure build could name better than BuildKit's message
}

// newExec checks req and returns its execution, with what its session must offer buildkitd: the credentials
// (auth), the workspace and the layout.
func newExec(req ExecRequest, auth session.Attachable) (*execution, error) {
	x := &execution{req: req, name: "kiln exec " + identity.NewID()}
	if (req.Image == "") == (req.Layout == "") {
		return nil, proto.Errorf(proto.Invalid, "running a command: give either an image or an OCI layout")
	}
	for _, kv := range req.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, proto.Errorf(proto.Invalid, "running a command: the environment variable %q is not KEY=VALUE", kv)
		}
	}
	if req.Platform != "" {
		p, err := platforms.Parse(req.Platform)
		if err != nil {
			return nil, proto.Errorf(proto.Invalid, "running a command: the platform %q: %v", req.Platform, err)
		}
		x.platform = &p
	}
	var err error
	if x.network, x.allowed, err = netMode(req.Network); err != nil {
		return nil, err
	}
	x.attachables = []session.Attachable{auth}
	if req.Layout != "" {
		desc, err := layoutImage(req.Layout, req.LayoutRef)
		if err != nil {
			return nil, err
		}
		x.layout = desc
		// The client's OCIStores would name the store "oci:" + its key; BuildKit's OCI layout source asks for that.
		stores := map[string]content.Store{"oci:" + execLayoutStore: layoutStore{dir: req.Layout}}
		x.attachables = append(x.attachables, sessioncontent.NewAttachable(stores))
	}
	if req.Workspace != "" {
		if fi, err := os.Stat(req.Workspace); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("running a command: the workspace %s is not a directory (%v)", req.Workspace, err)
		}
		ws, err := newWorkspaceSync(req.Workspace)
		if err != nil {
			return nil, fmt.Errorf("running a command: opening the workspace: %w", err)
		}
		x.wsKey = ws.key
		if x.stamp, err = ws.stamp(); err != nil {
			return nil, fmt.Errorf("running a command: reading the workspace: %w", err)
		}
		x.attachables = append(x.attachables, ws.attachables()...)
		x.exports = []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: req.Workspace}}
	}
	return x, nil
}

// build is the gateway build function of an Exec: it resolves the image's config, runs the command on the image
// with the workspace mounted, and returns the workspace as it left it, for the local exporter.
func (x *execution) build(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
	st, img, err := x.image(ctx, c)
	if err != nil {
		x.err = err
		return nil, err
	}
	argv := command(img.Config, x.req.Entrypoint, x.req.Args)
	if len(argv) == 0 {
		x.err = proto.Errorf(proto.Invalid, "running %s: no command: the image has no ENTRYPOINT or CMD and none is given",
			x.imageName())
		return nil, x.err
	}
	for _, kv := range x.req.Env {
		k, v, _ := strings.Cut(kv, "=")
		st = st.AddEnv(k, v)
	}
	if x.req.WorkingDir != "" {
		st = st.Dir(x.req.WorkingDir)
	}
	if x.req.User != "" {
		st = st.User(x.req.User)
	}
	run := st.Run(llb.Args(argv), llb.IgnoreCache, llb.WithCustomName(x.name), llb.Network(x.network))
	out := run.Root()
	if x.req.Workspace != "" {
		out = run.AddMount(WorkspaceDir, workspace(c.BuildOpts().SessionID, x.wsKey, x.stamp))
	}
	def, err := out.Marshal(ctx)
	if err != nil {
		return nil, fmt.Errorf("making the command's LLB: %w", err)
	}
	res, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	if err != nil {
		var exit *gatewaypb.ExitError
		if errors.As(err, &exit) {
			x.exit = exit
		}
		return nil, err
	}
	return res, nil
}

// image returns the state of the image to run, with its environment, working directory and user applied, and
// its config.
func (x *execution) image(ctx context.Context, c gateway.Client) (llb.State, ocispecs.Image, error) {
	var img ocispecs.Image
	sessionID := c.BuildOpts().SessionID
	var (
		ref string
		raw []byte
		err error
		st  llb.State
	)
	if x.req.Layout != "" {
		ref = "kiln/layout@" + x.layout.Digest.String()
		_, _, raw, err = c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
			OCILayoutOpt: &sourceresolver.ResolveOCILayoutOpt{
				Platform: x.platform,
				Store:    sourceresolver.ResolveImageConfigOptStore{SessionID: sessionID, StoreID: execLayoutStore},
			},
		})
		if err != nil {
			return st, img, proto.Errorf(proto.Invalid, "reading the config of %s: %s", x.imageName(), cause(err))
		}
		opts := []llb.OCILayoutOption{llb.OCIStore(sessionID, execLayoutStore), llb.WithCustomName("load " + x.imageName())}
		if x.platform != nil {
			opts = append(opts, llb.Platform(*x.platform))
		}
		st = llb.OCILayout(ref, opts...)
	} else {
		named, err := reference.ParseNormalizedNamed(x.req.Image)
		if err != nil {
			return st, img, proto.Errorf(proto.Invalid, "running %s: %v", x.req.Image, err)
		}
		var dgst digest.Digest
		_, dgst, raw, err = c.ResolveImageConfig(ctx, x.req.Image, sourceresolver.Opt{
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: x.platform},
		})
		if err != nil {
			msg := strings.TrimPrefix(cause(err), x.req.Image+": ")
			return st, img, proto.Errorf(proto.Invalid, "resolving the image %s: %s", x.req.Image, msg)
		}
		// Pinned to the digest the config came from, so that a tag moved meanwhile cannot mix two images.
		pinned, err := reference.WithDigest(named, dgst)
		if err != nil {
			return st, img, proto.Errorf(proto.Invalid, "running %s: %v", x.req.Image, err)
		}
		resolved := pinned.String()
		opts := []llb.ImageOption{llb.WithCustomName(pullPrefix + resolved)}
		if x.platform != nil {
			opts = append(opts, llb.Platform(*x.platform))
		}
		st = llb.Image(resolved, opts...)
	}
	if err := json.Unmarshal(raw, &img); err != nil {
		return st, img, proto.Errorf(proto.Invalid, "reading the config of %s: %v", x.imageName(), err)
	}
	st, err = st.WithImageConfig(raw)
	if err != nil {
		return st, img, proto.Errorf(proto.Invalid, "reading the config of %s: %v", x.imageName(), err)
	}
	if img.Config.User != "" {
		st = st.User(img.Config.User)
	}
	return st, img, nil
}

// imageName names the image of the request for messages.
func (x *execution) imageName() string {
	if x.req.Image != "" {
		return x.req.Image
	}
	if x.req.LayoutRef != "" {
		return fmt.Sprintf("%s in %s", x.req.LayoutRef, x.req.Layout)
	}
	return "the image in " + x.req.Layout
}

// command is the argv docker run would start for an image of config img given entrypoint and args.
func command(img ocispecs.ImageConfig, entrypoint, args []string) []string {
	ep, cmd := img.Entrypoint, img.Cmd
	if entrypoint != nil {
		ep, cmd = entrypoint, nil
	}
	if len(args) > 0 {
		cmd = args
	}
	return append(slices.Clone(ep), cmd...)
}
