package builder

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Builder runs builds on one BuildKit daemon. It is safe for concurrent use.
type Builder struct {
	client *client.Client
	addr   string
	blobs  *blobStore          // nil: each build exports every blob into its own OutputDir
	creds  RegistryCredentials // nil: pulls use the docker config's credentials only
}

// reconnect is how the connection to buildkitd is retried while it is down. gRPC's default backoff grows to two
// minutes, which would keep a Builder failing long after buildkitd is back; this caps it at a second.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 20 * time.Second,
}

// New returns a Builder for the buildkitd listening at addr ("unix:///run/buildkit/buildkitd.sock",
// "tcp://host:1234"; "" is BuildKit's default socket). It does not wait for the daemon: a buildkitd that is down
// now may come up later, and each call reports kind proto.Unavailable until it does.
func New(ctx context.Context, addr string, opts ...Option) (*Builder, error) {
	b := &Builder{addr: addr}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	c, err := client.New(ctx, addr, client.WithGRPCDialOption(grpc.WithConnectParams(reconnect)))
	if err != nil {
		return nil, fmt.Errorf("connecting to buildkitd at %s: %w", addr, err)
	}
	b.client = c
	return b, nil
}

// Close closes the connection to buildkitd.
func (b *Builder) Close() error {
	return b.client.Close()
}

// Ping checks that buildkitd answers and has a worker. An unreachable daemon is kind proto.Unavailable.
func (b *Builder) Ping(ctx context.Context) error {
	workers, err := b.client.ListWorkers(ctx)
	if err != nil {
		return proto.Errorf(proto.Unavailable, "asking buildkitd at %s for its workers: %s", b.addr, cause(err))
	}
	if len(workers) == 0 {
		return proto.Errorf(proto.Unavailable, "buildkitd at %s has no workers", b.addr)
	}
	return nil
}

// Request is one docker build.
type Request struct {
	ContextDir string            // the extracted context
	Dockerfile string            // relative to ContextDir; "" means "Dockerfile"
	BuildArgs  map[string]string // passed as --build-arg
	Target     string            // the stage to build; "" is the last one
	Platform   string            // "os/arch[/variant]" or "" for the daemon's own
	OutputDir  string            // an empty directory to export the OCI layout into
	NoCache    bool              // build every step again, as docker build --no-cache
	Pull       bool              // resolve every base image from its registry again, as docker build --pull
	Labels     map[string]string // image labels, as docker build --label
	Network    string            // the RUN steps' network: "" (BuildKit's sandbox), proto.NetworkHost or proto.NetworkNone

	// ContextKey names the content of ContextDir: builds given the same key share BuildKit's copy of their
	// context, and each sends only what changed since the previous one. Two different contents must never be
	// given one key (see GitContextKey). "" gives the build a key of its own, and its context is sent whole.
	ContextKey string
}

// BaseImage is an image a build started from, with the digest BuildKit resolved its reference to.
type BaseImage struct {
	Ref    string // the normalized reference, as in "docker.io/library/alpine:3"
	Digest string // "sha256:..."
}

// Result is what a build produced.
type Result struct {
	Digest     string      // digest of the exported manifest (or index)
	BaseImages []BaseImage // every base the solve resolved, in the order BuildKit reported them
}

// Build runs req through BuildKit's Dockerfile frontend and exports the image as an OCI layout directory in
// req.OutputDir. BuildKit's progress goes to log in its plain form ("#5 [2/3] RUN ..."), errors included.
//
// A build that fails by its own fault (no Dockerfile, a syntax error, a base that cannot be resolved, a failing
// RUN) is kind proto.Invalid, with BuildKit's cause as one line. A buildkitd that cannot be reached or that is
// lost mid-build is kind proto.Unavailable, as is a build stopped because ctx was canceled (the error then also
// matches context.Canceled or context.DeadlineExceeded). Either way the error is also the log's last line
// ("ERROR: ..."). Private bases are pulled with the credentials of the docker config (~/.docker/config.json or
// $DOCKER_CONFIG).
func (b *Builder) Build(ctx context.Context, req Request, log io.Writer) (*Result, error) {
	if log == nil {
		log = io.Discard
	}
	opt, err := solveOpt(req, b.authProvider())
	if err != nil {
		return nil, err
	}
	p, err := newProgress(log)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", req.ContextDir, err)
	}
	if b.blobs != nil {
		b.blobs.mu.RLock()
		opt.Exports[0].OutputDir, opt.Exports[0].OutputStore = "", b.blobs.store
	}
	status := make(chan *client.SolveStatus)
	done := p.consume(ctx, status)
	resp, err := b.client.Solve(ctx, nil, opt, status) // closes status
	<-done
	if b.blobs != nil {
		b.blobs.mu.RUnlock()
	}
	if err != nil {
		err = solveError(ctx, b.addr, err)
		fmt.Fprintf(log, "ERROR: %v\n", err)
		return nil, err
	}
	if b.blobs != nil {
		if err := b.layout(req.OutputDir, resp.ExporterResponse); err != nil {
			return nil, fmt.Errorf("building %s: %w", req.ContextDir, err)
		}
	}
	dgst := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if dgst == "" {
		return nil, fmt.Errorf("building %s: buildkitd exported no image digest", req.ContextDir)
	}
	return &Result{Digest: dgst, BaseImages: p.bases}, nil
}

// layout writes the OCI layout of the image just exported into the blob store, and trims the store.
func (b *Builder) layout(dir string, resp map[string]string) error {
	raw, err := base64.StdEncoding.DecodeString(resp[exptypes.ExporterImageDescriptorKey])
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("reading the exported image's descriptor: %v", err)
	}
	var desc ocispecs.Descriptor
	if err := json.Unmarshal(raw, &desc); err != nil {
		return fmt.Errorf("reading the exported image's descriptor: %w", err)
	}
	if err := b.blobs.layout(dir, desc); err != nil {
		return err
	}
	return b.blobs.trim()
}

// solveOpt turns req into BuildKit's solve options, with auth answering buildkitd's requests for credentials.
func solveOpt(req Request, auth session.Attachable) (client.SolveOpt, error) {
	if req.ContextDir == "" || req.OutputDir == "" {
		return client.SolveOpt{}, fmt.Errorf("building: a request needs both ContextDir and OutputDir")
	}
	dockerfile := req.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if !filepath.IsLocal(dockerfile) {
		return client.SolveOpt{}, proto.Errorf(proto.Invalid, "the Dockerfile path %q is not inside the build context", req.Dockerfile)
	}
	if entries, err := os.ReadDir(req.OutputDir); err == nil && len(entries) > 0 {
		return client.SolveOpt{}, fmt.Errorf("building: the output directory %s is not empty", req.OutputDir)
	}
	contextFS, err := fsutil.NewFS(req.ContextDir)
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("opening the build context: %w", err)
	}
	dockerfileDir, err := dockerfileDir(req.ContextDir, dockerfile)
	if err != nil {
		return client.SolveOpt{}, err
	}
	dockerfileFS, err := fsutil.NewFS(dockerfileDir)
	if err != nil {
		return client.SolveOpt{}, fmt.Errorf("opening the Dockerfile's directory: %w", err)
	}

	attrs := map[string]string{"filename": filepath.Base(dockerfile)}
	for k, v := range req.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	if req.Target != "" {
		attrs["target"] = req.Target
	}
	if req.Platform != "" {
		attrs["platform"] = req.Platform
	}
	if req.NoCache {
		attrs["no-cache"] = "" // every stage
	}
	if req.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	for k, v := range req.Labels {
		attrs["label:"+k] = v
	}
	mode, allowed, err := netMode(req.Network)
	if err != nil {
		return client.SolveOpt{}, err
	}
	if m := dockerfileNetwork(mode); m != "" {
		attrs["force-network-mode"] = m
	}
	return client.SolveOpt{
		SharedKey:           sessionKey(req.ContextKey), // BuildKit's copies of the locals are kept by it
		Frontend:            "dockerfile.v0",
		FrontendAttrs:       attrs,
		AllowedEntitlements: allowed,
		LocalMounts: map[string]fsutil.FS{
			"context":    contextFS,
			"dockerfile": dockerfileFS,
		},
		Exports: []client.ExportEntry{{
			Type:      client.ExporterOCI,
			OutputDir: req.OutputDir,
			Attrs:     map[string]string{"tar": "false"},
		}},
		Session: []session.Attachable{auth},
	}, nil
}

// dockerfileDir returns the directory of dockerfile in contextDir, refusing one that is missing or that a
// symbolic link takes outside the context.
func dockerfileDir(contextDir, dockerfile string) (string, error) {
	rel := filepath.Dir(dockerfile)
	if rel == "." {
		return contextDir, nil
	}
	root, err := filepath.EvalSymlinks(contextDir)
	if err != nil {
		return "", fmt.Errorf("opening the build context: %w", err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "reading the Dockerfile %s: the build context has no directory %s", dockerfile, rel)
	}
	if inside, err := filepath.Rel(root, dir); err != nil || !filepath.IsLocal(inside) {
		return "", proto.Errorf(proto.Invalid, "reading the Dockerfile %s: %s is outside the build context", dockerfile, rel)
	}
	return dir, nil
}
