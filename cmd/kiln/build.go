package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// buildCmd is `kiln build`: it uploads a context, queues a run and, unless --no-wait, streams its log and
// exits 0 only if the run succeeded.
func buildCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		srv       serverFlags
		tags      stringList
		buildArgs = keyValues{}
	)
	fs := newFlags("build", "build [-t TAG]... [-f DOCKERFILE] [--build-arg K=V]... [--target STAGE] [--platform OS/ARCH] [--no-push] [--no-wait] [--timeout SECONDS] [--network MODE] CONTEXT\n\n"+
		"CONTEXT is a directory, which is uploaded, or a URL the server fetches: a git repository\n"+
		"(https://HOST/OWNER/REPO.git[#REF][:SUBDIR]) or a tar or tar.gz archive (https://HOST/ctx.tar.gz).")
	srv.add(fs)
	fs.Var(&tags, "t", "image `tag`, a template: {{.Run.ID}}, {{.Run.Date}}, {{.Run.Registry}} (repeatable)")
	dockerfile := fs.String("f", "Dockerfile", "Dockerfile `path`, relative to the context")
	fs.Var(buildArgs, "build-arg", "build argument `K=V` (repeatable)")
	target := fs.String("target", "", "`stage` to build")
	platform := fs.String("platform", "", "`os/arch` to build for")
	noPush := fs.Bool("no-push", false, "build without pushing")
	noWait := fs.Bool("no-wait", false, "print the run ID and return without waiting")
	timeout := fs.Int("timeout", 3600, "run timeout in `seconds`")
	var net network
	fs.Var(&net, "network", networkUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("needs exactly one CONTEXT, a directory or a URL, got %d arguments", len(pos))
	}

	push := !*noPush
	req := api.BuildRequest{Dockerfile: *dockerfile, Tags: tags, BuildArgs: buildArgs, Target: *target, Platform: *platform, Push: &push, Timeout: *timeout,
		Network: string(net)}
	c := srv.client()
	run, err := submit(ctx, c, req, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Queued a run with ID: %s\n", run.ID)
	if *noWait {
		return nil
	}
	fmt.Fprintln(stdout, "Waiting for an agent...")
	return follow(ctx, c, run.ID, stdout)
}

// submit submits req with the build context at where: a URL the server fetches itself, or a directory that is
// packed and streamed to it.
func submit(ctx context.Context, c *api.Client, req api.BuildRequest, where string) (*api.Run, error) {
	if isURL(where) {
		req.Context = where
		return c.SubmitRun(ctx, req, nil)
	}
	if fi, err := os.Stat(where); err != nil || !fi.IsDir() {
		return nil, usagef("CONTEXT %q is neither a directory nor an http(s) URL", where)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(api.PackContext(ctx, where, req.Dockerfile, pw)) }()
	run, err := c.SubmitRun(ctx, req, pr)
	pr.Close()
	return run, err
}

// isURL reports whether a CONTEXT argument is a URL rather than a directory.
func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// follow streams a run's log until the run ends, then prints how it ended. A dropped log stream is not the
// end: it keeps asking for the run until it has a terminal status.
func follow(ctx context.Context, c *api.Client, id string, stdout io.Writer) error {
	logErr := c.Log(ctx, id, true, stdout)
	var run *api.Run
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		r, err := c.Run(ctx, id)
		if err != nil {
			return err
		}
		if done(r) {
			run = r
			break
		}
		if logErr != nil { // the stream broke before the end: say so once, then wait on the record
			fmt.Fprintf(stdout, "\n(log stream interrupted: %v; waiting for the run to end)\n", logErr)
			logErr = nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	took := duration(run).Round(10 * time.Millisecond)
	if run.Status == "Succeeded" {
		fmt.Fprintf(stdout, "Run ID: %s was successful after %s\n", id, took)
		return nil
	}
	fmt.Fprintf(stdout, "Run ID: %s failed after %s: %s\n", id, took, reason(run))
	return runFailed{id}
}

// reason says why a run did not succeed, in one line.
func reason(r *api.Run) string {
	if r.Error != "" {
		return r.Error
	}
	return r.Status
}
