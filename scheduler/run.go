package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// errNothingToDo says a delivered run needs no work: it has ended already, or another attempt owns it.
var errNothingToDo = errors.New("nothing to do")

// handle takes one delivered RunRequested through to an acknowledged message: the run ends with a terminal
// status, or goes back to the queue with a Nak.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	var ev proto.RunRequested
	if err := gproto.Unmarshal(msg.Data(), &ev); err != nil || ev.GetRunId() == "" {
		w.Logger.Error("dropping a malformed run request", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	id := ev.GetRunId()
	// Run pinged buildkitd before it fetched the message, but a fetch can wait a few seconds: an attempt is
	// claimed only while buildkitd answers, so that one it cannot reach uses none of the run's attempts.
	pingCtx, cancelPing := context.WithTimeout(ctx, 3*time.Second)
	err := w.Builder.Ping(pingCtx)
	cancelPing()
	if err != nil {
		w.Logger.Warn("buildkitd does not answer; the run stays on the queue", "run", id, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	run, err := w.claim(ctx, id)
	switch {
	case errors.Is(err, errNothingToDo):
		_ = msg.Ack()
		return
	case proto.ErrorCode(err) == proto.NotFound:
		w.Logger.Error("dropping a request for a run with no record", "run", id)
		_ = msg.Term()
		return
	case err != nil:
		w.Logger.Warn("claiming a run; it stays on the queue", "run", id, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if proto.Terminal(run.GetStatus()) { // canceled, or given up on, while claiming
		w.close(ctx, run)
		_ = msg.Ack()
		return
	}

	started := time.Now()
	w.announce(ctx, run)
	w.Logger.Info("run started", "run", id, "attempt", run.GetAttempt())
	lw := w.Store.LogWriter(id)
	log := newRunLog(lw)
	buildCtx, made, runErr := w.attempt(ctx, msg, run, log)
	out := outcomeOf(buildCtx, runErr, time.Duration(run.GetSpec().GetTimeoutSeconds())*time.Second).
		within(int(run.GetAttempt()), w.MaxAttempts)
	out.message = log.secrets.maskString(out.message)

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	switch {
	case out.handBack:
		fmt.Fprintf(log, "\nAttempt %d handed back: %s; it does not count, and the run goes back to the queue.\n", run.GetAttempt(), out.message)
	case out.requeue:
		fmt.Fprintf(log, "\nAttempt %d of %d stopped: %s; the run goes back to the queue.\n", run.GetAttempt(), w.MaxAttempts, out.message)
	case out.message != "":
		fmt.Fprintf(log, "\nRun %s %s: %s\n", id, ended[out.status], out.message)
	}
	log.Flush()
	if err := lw.Close(fctx); err != nil {
		w.Logger.Warn("writing the run's log", "run", id, "err", err)
	}
	if out.requeue {
		w.requeue(fctx, msg, run, out.handBack)
		w.Logger.Info("run handed back", "run", id, "reason", out.message)
		return
	}
	final, err := w.Store.UpdateRun(fctx, id, func(r *proto.Run) error {
		if r.GetStatus() != proto.Status_RUNNING || r.GetAttempt() != run.GetAttempt() {
			return errNothingToDo // another attempt owns the run now
		}
		r.Status = out.status
		r.Error = out.message
		r.Images = log.secrets.images(made.images)
		r.Bases = log.secrets.images(made.bases)
		if made.steps != nil {
			r.Steps = log.secrets.steps(made.steps)
		}
		recordCommit(r, made.commit)
		r.FinishedAt = timestamppb.Now()
		return nil
	})
	switch {
	case errors.Is(err, errNothingToDo):
		_ = msg.Ack()
		return
	case err != nil:
		w.Logger.Error("recording how a run ended; it will be delivered again", "run", id, "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	w.close(fctx, final)
	_ = msg.Ack()
	w.Logger.Info("run ended", "run", id, "status", final.GetStatus().String(), "took", time.Since(started).Round(time.Millisecond))
}

// claim moves a queued run to Running under this worker, and counts the attempt. A run found Running was left
// by a worker that died, which used up an attempt as much as one that went back to the queue: a run with all
// MaxAttempts used ends Error instead. A run of a task and branch that has a newer run queued behind it ends
// Canceled, superseded by that run, without being built.
func (w *Worker) claim(ctx context.Context, id string) (*proto.Run, error) {
	return w.Store.UpdateRun(ctx, id, func(r *proto.Run) error {
		if proto.Terminal(r.GetStatus()) {
			return errNothingToDo
		}
		newer, err := w.newerRun(ctx, r)
		if err != nil {
			return err
		}
		switch {
		case newer != "" && r.GetStatus() == proto.Status_QUEUED:
			r.Status = proto.Status_CANCELED
			r.SupersededBy = newer
			r.Error = fmt.Sprintf("superseded by run %s, a newer push to %s", newer, branchKey(r.GetGit().GetRef()))
			r.FinishedAt = timestamppb.Now()
			return nil
		case r.GetCancelRequested():
			r.Status = proto.Status_CANCELED
			r.Error = "canceled by request"
			r.FinishedAt = timestamppb.Now()
			return nil
		case int(r.GetAttempt()) >= w.MaxAttempts:
			reason := fmt.Sprintf("the worker running it (%s) was lost", r.GetWorker())
			if r.GetStatus() != proto.Status_RUNNING { // left Queued by a worker that allowed more attempts
				reason = "no attempts are left"
			}
			r.Status = proto.Status_ERROR
			r.Error = gaveUp(int(r.GetAttempt()), w.MaxAttempts, reason)
			r.FinishedAt = timestamppb.Now()
			return nil
		}
		r.Status = proto.Status_RUNNING
		r.Attempt++
		r.Worker = w.Name
		r.StartedAt = timestamppb.Now()
		return nil
	})
}

// newerRun returns the ID of the newest run of r's task and branch when it is later than r: the triggers record
// it for tasks that build only the latest push. It returns "" when there is none or r is it.
func (w *Worker) newerRun(ctx context.Context, r *proto.Run) (string, error) {
	if r.GetTaskName() == "" || r.GetGit().GetRef() == "" {
		return "", nil
	}
	id := r.GetId()
	latest, err := w.Store.Latest(ctx, r.GetTaskName(), branchKey(r.GetGit().GetRef()))
	if err != nil || latest == "" {
		return "", err
	}
	// IDs count up: only a later run supersedes, whatever order concurrent deliveries recorded them in.
	n, ok1 := store.ParseRunID(id)
	m, ok2 := store.ParseRunID(latest)
	if !ok1 || !ok2 || m <= n {
		return "", nil
	}
	return latest, nil
}

// branchKey names the line of work a git ref belongs to, for superseding: the branch or tag name, or pr/N for a
// pull request.
func branchKey(ref string) string {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		return strings.TrimPrefix(ref, "refs/tags/")
	case strings.HasPrefix(ref, "refs/pull/"):
		n, _, _ := strings.Cut(strings.TrimPrefix(ref, "refs/pull/"), "/")
		return "pr/" + n
	}
	return ref
}

// attempt builds and pushes the run once. It returns the context the build ran under, whose cause tells a
// cancel, a timeout and a shutdown apart, with the pushed images and the error the attempt ended with.
func (w *Worker) attempt(ctx context.Context, msg jetstream.Msg, run *proto.Run, log *runLog) (context.Context, built, error) {
	id, spec := run.GetId(), run.GetSpec()
	buildCtx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	unhook := context.AfterFunc(ctx, func() { stop(errShutdown) })
	defer unhook()
	if spec.GetTimeoutSeconds() > 0 {
		var cancel context.CancelFunc
		buildCtx, cancel = context.WithTimeoutCause(buildCtx, time.Duration(spec.GetTimeoutSeconds())*time.Second, errTimeout)
		defer cancel()
	}
	w.track(id, stop)
	defer w.untrack(id)
	defer w.heartbeat(buildCtx, msg, id, stop)()

	if run.GetAttempt() > 1 {
		fmt.Fprintf(log, "\nAttempt %d, on worker %s: the previous attempt did not finish.\n", run.GetAttempt(), w.Name)
	}
	b, err := w.build(buildCtx, run, log)
	return buildCtx, b, err
}

// built is what an attempt made: the images it pushed and the bases it built on, with the digests BuildKit
// resolved them to during the solve.
type built struct {
	images, bases []*proto.Image
	commit        string              // the commit a git context was checked out at; "" for other contexts
	steps         []*proto.StepResult // a multi-step run's steps
}

// build fetches the context, solves and pushes, writing to log, to whose secrets it adds each it reads.
func (w *Worker) build(ctx context.Context, run *proto.Run, log *runLog) (built, error) {
	var out built
	spec := run.GetSpec()
	network, err := proto.ParseNetwork("the run's network", spec.GetNetwork(), w.AllowHostNetwork)
	if err != nil {
		return out, err
	}
	dir, err := os.MkdirTemp(w.WorkDir, run.GetId()+"-")
	if err != nil {
		return out, fmt.Errorf("making the run's work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	contextDir, layoutDir := filepath.Join(dir, "context"), filepath.Join(dir, "oci")
	for _, d := range []string{contextDir, layoutDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return out, fmt.Errorf("making the run's work directory: %w", err)
		}
	}
	t0 := time.Now()
	var contextKey string
	if out.commit, contextKey, err = w.fetchContext(ctx, run, contextDir, log); err != nil {
		return out, err
	}
	if multiStep(spec) {
		commit := out.commit
		out, err = w.runSteps(ctx, run, commit, contextDir, dir, network, log)
		out.commit = commit
		return out, err
	}
	t1 := time.Now()
	res, err := w.Builder.Build(ctx, builder.Request{
		ContextDir: contextDir,
		Dockerfile: spec.GetDockerfile(),
		BuildArgs:  spec.GetBuildArgs(),
		Target:     spec.GetTarget(),
		Platform:   spec.GetPlatform(),
		OutputDir:  layoutDir,
		ContextKey: contextKey,
		Network:    network,
	}, log)
	if err != nil {
		return out, err
	}
	for _, b := range res.BaseImages {
		out.bases = append(out.bases, &proto.Image{Reference: b.Ref, Digest: b.Digest})
	}
	t2 := time.Now()
	defer func() {
		w.Logger.Debug("run phases", "run", run.GetId(), "fetch", t1.Sub(t0), "build", t2.Sub(t1), "push", time.Since(t2))
	}()
	if !spec.GetPush() || len(spec.GetTags()) == 0 {
		fmt.Fprintf(log, "\nBuilt %s; nothing pushed (no tags, or push off).\n", res.Digest)
		return out, nil
	}
	out.images, err = builder.Push(ctx, layoutDir, spec.GetTags(), log, w.PushOptions)
	w.announcePushed(ctx, run, out.images, log.secrets)
	return out, err
}

// fetchContext puts the run's build context into dir: one commit of a git repository, a tarball downloaded
// from a URL, or the archive uploaded with the run. It returns the commit checked out, for a git context, and
// the key that names the context's content for BuildKit (see builder.Request.ContextKey): the repository,
// commit and subdirectory of a git context, the digest of an uploaded archive (so that uploading the same
// directory again sends BuildKit nothing again), and "" for a download, which then gets a key of its own.
func (w *Worker) fetchContext(ctx context.Context, run *proto.Run, dir string, log *runLog) (commit, key string, err error) {
	spec := run.GetSpec()
	switch {
	case spec.GetGit() != nil:
		g := spec.GetGit()
		commit, err := w.fetchGit(ctx, run, dir, log)
		return commit, builder.GitContextKey(g.GetUrl(), commit, g.GetSubdir()), err
	case spec.GetContextUrl() != "":
		return "", "", builder.DownloadContext(ctx, spec.GetContextUrl(), dir, w.MaxContextSize, log)
	}
	rc, err := w.Store.OpenContext(ctx, spec.GetContextObject())
	if err != nil {
		if proto.ErrorCode(err) == proto.NotFound {
			return "", "", proto.Errorf(proto.NotFound, "the run's build context is no longer in the store: %w", err)
		}
		return "", "", proto.Errorf(proto.Unavailable, "fetching the build context: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	archive := io.TeeReader(rc, h)
	if err := builder.Extract(ctx, archive, dir, w.MaxContextSize); err != nil {
		return "", "", fmt.Errorf("unpacking the build context: %w", err)
	}
	// Extract stops at the tar's end: what follows (padding, gzip's trailer) is part of the archive too. The
	// API bounded the stored archive to MaxContextSize when it took it.
	if _, err := io.Copy(io.Discard, archive); err != nil {
		return "", "", proto.Errorf(proto.Unavailable, "fetching the build context: %w", err)
	}
	return "", builder.UploadContextKey("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}

// fetchGit checks out the run's commit, with its task's token when the repository is private. The token is
// one of the run's secrets from then on.
func (w *Worker) fetchGit(ctx context.Context, run *proto.Run, dir string, log *runLog) (string, error) {
	g := run.GetSpec().GetGit()
	req := builder.GitRequest{URL: g.GetUrl(), Ref: g.GetRef(), Commit: g.GetCommit(), Subdir: g.GetSubdir()}
	if name := run.GetSpec().GetTaskName(); name != "" {
		task, err := w.Store.Task(ctx, name)
		switch {
		case proto.ErrorCode(err) == proto.NotFound:
			return "", proto.Errorf(proto.NotFound, "the run's task %s no longer exists", name)
		case err != nil:
			return "", proto.Errorf(proto.Unavailable, "reading task %s: %w", name, err)
		}
		req.Token = task.GetGitToken()
		log.secrets.add(req.Token)
	}
	if w.Git == nil {
		return "", proto.Errorf(proto.Internal, "this worker has no git fetcher")
	}
	return w.Git.Fetch(ctx, req, dir, log)
}

// heartbeat tells JetStream the run is in progress, a few times per AckWait, and watches the record for a
// cancel that the core NATS announcement may have missed. The returned func stops it.
func (w *Worker) heartbeat(ctx context.Context, msg jetstream.Msg, id string, stop context.CancelCauseFunc) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(w.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_ = msg.InProgress()
			if r, err := w.Store.Run(ctx, id); err == nil && r.GetCancelRequested() {
				stop(errCanceled)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// recordCommit fills in the commit of a run queued for whatever its branch pointed to (a base image trigger's
// run), once the worker knows which commit it checked out.
func recordCommit(r *proto.Run, commit string) {
	if commit == "" || r.GetSpec().GetGit() == nil || r.GetSpec().GetGit().GetCommit() != "" {
		return
	}
	r.Spec.Git.Commit = commit
	if r.GetGit() != nil && r.GetGit().GetCommit() == "" {
		r.Git.Commit = commit
	}
}

// requeue puts a run this worker could not finish back on the queue, Queued, for any worker to take. A run
// handed back gets its attempt back: the next claim counts the same number again. (Running, attempt) still
// names one holder: the number goes back only from its holder, which writes to the record no more, and a lost
// worker's number was passed by the claim that followed it and is never Running again.
func (w *Worker) requeue(ctx context.Context, msg jetstream.Msg, run *proto.Run, handBack bool) {
	_, err := w.Store.UpdateRun(ctx, run.GetId(), func(r *proto.Run) error {
		if r.GetStatus() != proto.Status_RUNNING || r.GetAttempt() != run.GetAttempt() {
			return errNothingToDo
		}
		r.Status = proto.Status_QUEUED
		r.Worker = ""
		if handBack && r.GetAttempt() > 0 {
			r.Attempt--
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToDo) {
		w.Logger.Warn("putting a run back on the queue", "run", run.GetId(), "err", err)
	}
	_ = msg.NakWithDelay(time.Second)
}

// announce publishes the run's new status for the reporters (GitHub commit statuses). It is best effort: a
// report that cannot be sent never holds a build up.
func (w *Worker) announce(ctx context.Context, run *proto.Run) {
	data, err := gproto.Marshal(&proto.RunStatusChanged{RunId: run.GetId(), Status: run.GetStatus()})
	if err == nil {
		_, err = w.JS.Publish(ctx, proto.StatusSubject(run.GetId()), data)
	}
	if err != nil {
		w.Logger.Warn("announcing a run's status", "run", run.GetId(), "status", run.GetStatus().String(), "err", err)
	}
}

// close finishes a terminal run's log, drops its context archive and announces how it ended.
func (w *Worker) close(ctx context.Context, run *proto.Run) {
	defer w.announce(ctx, run)
	if err := w.Store.FinishLog(ctx, run.GetId()); err != nil {
		w.Logger.Warn("closing the run's log", "run", run.GetId(), "err", err)
	}
	if name := run.GetSpec().GetContextObject(); name != "" {
		if err := w.Store.DeleteContext(ctx, name); err != nil {
			w.Logger.Warn("deleting the run's context", "run", run.GetId(), "err", err)
		}
	}
}
