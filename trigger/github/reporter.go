package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

// ConsumerName is the durable JetStream consumer on proto.StreamStatus that every Reporter shares: each status
// change is reported once, by whichever Kiln process takes it.
const ConsumerName = "github-status"

// How a Reporter paces itself.
const (
	defaultRetries = 5                // attempts per status when ReporterConfig.Retries is 0
	concurrency    = 4                // status changes reported at once
	ackWait        = time.Minute      // how long JetStream waits for a report before it gives the event to another
	reportTimeout  = 30 * time.Second // bounds one report: its store reads and its requests to GitHub
	shutdownGrace  = 5 * time.Second  // how long reports in flight may go on once Run's ctx is done
	firstBackoff   = time.Second      // the delay before the second attempt; it doubles each attempt after
	maxBackoff     = time.Minute
)

// Store is what a Reporter reads of Kiln's store; *store.Store is one.
type Store interface {
	Run(ctx context.Context, id string) (*proto.Run, error)
	Task(ctx context.Context, name string) (*proto.Task, error)
}

// ReporterConfig says which GitHub a Reporter posts to and how hard it tries.
type ReporterConfig struct {
	Config
	// Retries is how many times a status is attempted before it is given up with an Error log line; 0 means 5.
	Retries int
}

// Reporter posts the commit statuses of git-triggered runs of tasks on GitHub. It follows the
// RunStatusChanged events on proto.StreamStatus with the durable consumer ConsumerName, so that any number
// of Reporters in any number of processes share the work.
type Reporter struct {
	api     *api
	retries int
	js      jetstream.JetStream
	st      Store
	log     *slog.Logger
}

// NewReporter returns a Reporter that reads runs and tasks from st and events from js. A nil logger discards.
func NewReporter(cfg ReporterConfig, js jetstream.JetStream, st Store, logger *slog.Logger) *Reporter {
	if cfg.Retries <= 0 {
		cfg.Retries = defaultRetries
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reporter{api: newAPI(cfg.Config), retries: cfg.Retries, js: js, st: st, log: logger}
}

// Run reports status changes until ctx is done, then returns once the reports in flight have ended: each
// may go on for a few seconds, and one that does not end by then is handed back to the stream. Run creates
// its consumer on proto.StreamStatus, which store.Open makes; the consumer delivers only the events published
// after it was first created.
func (r *Reporter) Run(ctx context.Context) error {
	if r.api.err != nil {
		return r.api.err
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, proto.StreamStatus, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Kiln's GitHub commit status reporters",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubject: proto.SubjectStatusAll,
		MaxDeliver:    -1, // attempts are counted by settle, which logs the one it gives up
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s on %s: %w", ConsumerName, proto.StreamStatus, err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := next(ctx, cons)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if !idle(err) {
				r.log.Warn("fetching a run status change", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r.handle(ctx, msg)
		}()
	}
}

// handle reports one status change and settles its message. The report outlives ctx by shutdownGrace at most.
func (r *Reporter) handle(ctx context.Context, msg jetstream.Msg) {
	ev := new(proto.RunStatusChanged)
	if err := gproto.Unmarshal(msg.Data(), ev); err != nil || ev.GetRunId() == "" {
		r.log.Error("dropping a run status change that cannot be read", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		grace := time.NewTimer(shutdownGrace)
		defer grace.Stop()
		select {
		case <-grace.C:
			cancel()
		case <-rctx.Done():
		}
	})
	defer stop()
	r.settle(ctx, msg, ev, r.report(rctx, ev))
}

// settle acknowledges msg after a report that succeeded or had nothing to do. After a failure it asks for
// the event again later, with a delay that doubles each time, while the failure may pass (proto.Unavailable)
// and attempts remain; otherwise it drops the event with an Error log line. When ctx is done the event is
// handed back at once.
func (r *Reporter) settle(ctx context.Context, msg jetstream.Msg, ev *proto.RunStatusChanged, err error) {
	if err == nil {
		_ = msg.Ack()
		return
	}
	attempt := 1
	if md, merr := msg.Metadata(); merr == nil {
		attempt = int(md.NumDelivered)
	}
	log := r.log.With("run", ev.GetRunId(), "status", ev.GetStatus().String(), "attempt", attempt, "err", err)
	switch {
	case ctx.Err() != nil:
		log.Info("handing back a commit status not posted before shutdown")
		_ = msg.Nak()
	case proto.ErrorCode(err) != proto.Unavailable:
		log.Error("not reporting the run's status to GitHub: retrying would fail the same way")
		_ = msg.Term()
	case attempt >= r.retries:
		log.Error("giving up reporting the run's status to GitHub", "attempts", r.retries)
		_ = msg.Term()
	default:
		delay := backoff(attempt)
		log.Warn("reporting the run's status to GitHub; trying again", "in", delay)
		_ = msg.NakWithDelay(delay)
	}
}

// report posts the commit status of the run ev names, when the run was started by a git event of a task on
// this GitHub that has a token. It reads the run afresh and posts nothing for an event that arrived after
// the run ended, so that a status never goes from final back to pending.
func (r *Reporter) report(ctx context.Context, ev *proto.RunStatusChanged) error {
	run, err := r.st.Run(ctx, ev.GetRunId())
	if proto.ErrorCode(err) == proto.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	name, commit := run.GetTaskName(), run.GetGit().GetCommit()
	if name == "" || commit == "" {
		return nil
	}
	switch final := proto.Terminal(run.GetStatus()); {
	case !proto.Terminal(ev.GetStatus()) && final:
		return nil // a late event: the run's final status is (or will be) posted by its own event
	case proto.Terminal(ev.GetStatus()) && !final:
		return proto.Errorf(proto.Unavailable, "run %s is %s on the bus but still %s in its record",
			run.GetId(), ev.GetStatus(), run.GetStatus())
	}

	task, err := r.st.Task(ctx, name)
	if proto.ErrorCode(err) == proto.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	repo, ok, err := r.api.repository(task.GetSource().GetUrl())
	if err != nil || !ok || task.GetGitToken() == "" {
		return err
	}
	c, err := r.api.client(task.GetGitToken())
	if err != nil {
		return err
	}
	if err := r.post(ctx, c, repo, task, run); err != nil || proto.Terminal(run.GetStatus()) {
		return err
	}

	// The run may have ended, and its final status been posted, while this pending one was on its way. Read
	// it again and, if so, post the final status once more so that it is the last word.
	run, err = r.st.Run(ctx, ev.GetRunId())
	if err != nil || !proto.Terminal(run.GetStatus()) {
		return err
	}
	return r.post(ctx, c, repo, task, run)
}

// post posts run's commit status on its commit in repo.
func (r *Reporter) post(ctx context.Context, c *gh.Client, repo repo, task *proto.Task, run *proto.Run) error {
	status := commitStatus(run, task.GetName(), r.api.publicURL)
	commit := run.GetGit().GetCommit()
	if _, _, err := c.Repositories.CreateStatus(ctx, repo.owner, repo.name, commit, status); err != nil {
		doing := fmt.Sprintf("posting status %s of run %s on %s@%.12s", status.GetState(), run.GetId(), repo, commit)
		return failure(doing, repo, task.GetGitToken(), err)
	}
	r.log.Debug("posted a commit status", "run", run.GetId(), "repository", repo.String(), "commit", commit,
		"state", status.GetState())
	return nil
}

// backoff returns the delay before the attempt after the given one: 1s, 2s, 4s... up to a minute.
func backoff(attempt int) time.Duration {
	d := firstBackoff
	for range attempt - 1 {
		if d >= maxBackoff {
			break
		}
		d *= 2
	}
	return min(d, maxBackoff)
}

// next waits a few seconds at most for a status change.
func next(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	fetchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cons.Next(jetstream.FetchContext(fetchCtx))
}

// idle reports whether a fetch error only says that nothing came.
func idle(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
