package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// Store is what a worker needs of the shared store.
type Store interface {
	Run(ctx context.Context, id string) (*proto.Run, error)
	UpdateRun(ctx context.Context, id string, fn func(r *proto.Run) error) (*proto.Run, error)
	OpenContext(ctx context.Context, name string) (io.ReadCloser, error)
	DeleteContext(ctx context.Context, name string) error
	LogWriter(id string) *store.LogWriter
	FinishLog(ctx context.Context, id string) error
	Task(ctx context.Context, name string) (*proto.Task, error)
	Latest(ctx context.Context, task, branch string) (string, error)
	Secret(ctx context.Context, name string) ([]byte, error)
}

// GitFetcher checks out one commit of a repository; *builder.GitCache is one.
type GitFetcher interface {
	Fetch(ctx context.Context, req builder.GitRequest, dest string, log io.Writer) (string, error)
}

// Builder is what a worker needs of BuildKit.
type Builder interface {
	Ping(ctx context.Context) error
	Build(ctx context.Context, req builder.Request, log io.Writer) (*builder.Result, error)
	Exec(ctx context.Context, req builder.ExecRequest, log io.Writer) (exitCode int, err error)
}

// Subscriber receives core NATS messages; *nats.Conn is one. Workers hear cancels through it.
type Subscriber interface {
	Subscribe(subject string, handler nats.MsgHandler) (*nats.Subscription, error)
}

// Worker takes runs from the shared queue and builds them, Concurrency at a time.
type Worker struct {
	JS      jetstream.JetStream
	Conn    Subscriber
	Store   Store
	Builder Builder
	// Git fetches the contexts of runs that build a commit of a repository.
	Git GitFetcher
	// Name identifies this worker in run records and logs; make it unique per process (host and pid).
	Name string
	// Concurrency is how many runs this worker builds at once; 0 means 1.
	Concurrency int
	// AckWait is how long JetStream waits for word from a worker before it gives the run to another; the worker
	// says it is still busy three times per AckWait. 0 means 30s.
	AckWait time.Duration
	// MaxAttempts is how many attempts a run has: one stopped by a lost worker or by BuildKit going away sends
	// the run back to the queue, until the last, which ends it Error. A worker's own shutdown uses none. 0 means 3.
	MaxAttempts int
	// WorkDir holds the contexts and image layouts of the runs in progress.
	WorkDir string
	// MaxContextSize bounds an extracted context, as the API bounds an upload.
	MaxContextSize int64
	// DefaultRegistry goes in front of the tags of a task file's steps that name no registry, and is its
	// {{.Run.Registry}}.
	DefaultRegistry string
	// AllowHostNetwork lets a run have the host's network (spec network "host"); without it such a run ends
	// Failed, whatever let it onto the queue.
	AllowHostNetwork bool
	// PushOptions sets the retries and credentials of pushes.
	PushOptions builder.PushOptions
	Logger      *slog.Logger

	mu       sync.Mutex
	inflight map[string]context.CancelCauseFunc
	readyErr error
}

// Ready reports whether the worker can take runs: nil when BuildKit answered its latest check, otherwise why not.
func (w *Worker) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inflight == nil && w.readyErr == nil {
		return errors.New("the worker has not started")
	}
	return w.readyErr
}

// Run takes runs from the queue until ctx is done. It returns once every run it took has ended or been handed
// back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	w.setDefaults()
	cons, err := w.JS.CreateOrUpdateConsumer(ctx, proto.StreamRuns, jetstream.ConsumerConfig{
		Durable:       proto.ConsumerWorkers,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.AckWait,
		MaxDeliver:    -1, // attempts are counted in the run record, where a lost worker is told from a busy BuildKit
		FilterSubject: proto.SubjectRunRequested,
		MaxAckPending: 10000,
	})
	if err != nil {
		return fmt.Errorf("creating the workers' consumer on %s: %w", proto.StreamRuns, err)
	}
	sub, err := w.Conn.Subscribe(proto.SubjectCancelAll, func(m *nats.Msg) {
		w.cancel(proto.RunIDFromCancelSubject(m.Subject))
	})
	if err != nil {
		return fmt.Errorf("subscribing to cancels: %w", err)
	}
	defer sub.Unsubscribe()

	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, w.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		if !w.waitForBuildKit(ctx) {
			return nil
		}
		msg, err := w.next(ctx, cons)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if !idle(err) {
				w.Logger.Warn("fetching a run from the queue", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.handle(ctx, msg)
		}()
	}
}

func (w *Worker) setDefaults() {
	if w.Concurrency <= 0 {
		w.Concurrency = 1
	}
	if w.AckWait <= 0 {
		w.AckWait = 30 * time.Second
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 3
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	w.mu.Lock()
	w.inflight = make(map[string]context.CancelCauseFunc)
	w.readyErr = errors.New("checking buildkitd")
	w.mu.Unlock()
}

// next waits up to a few seconds for a run on the queue.
func (w *Worker) next(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	fetchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cons.Next(jetstream.FetchContext(fetchCtx))
}

// waitForBuildKit returns true once BuildKit answers, and false if ctx ends first. Runs stay on the queue,
// Queued, while BuildKit is down: nothing is taken that cannot be built.
func (w *Worker) waitForBuildKit(ctx context.Context) bool {
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := w.Builder.Ping(pingCtx)
		cancel()
		w.mu.Lock()
		was := w.readyErr
		if err != nil {
			w.readyErr = fmt.Errorf("buildkitd does not answer: %w", err)
		} else {
			w.readyErr = nil
		}
		w.mu.Unlock()
		if err == nil {
			if was != nil {
				w.Logger.Info("buildkitd answers; taking runs")
			}
			return true
		}
		if was == nil {
			w.Logger.Warn("buildkitd does not answer; runs wait in the queue", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return false
		}
	}
}

// cancel stops the build of run id if this worker has it.
func (w *Worker) cancel(id string) {
	w.mu.Lock()
	stop := w.inflight[id]
	w.mu.Unlock()
	if stop != nil {
		stop(errCanceled)
	}
}

func (w *Worker) track(id string, stop context.CancelCauseFunc) {
	w.mu.Lock()
	w.inflight[id] = stop
	w.mu.Unlock()
}

func (w *Worker) untrack(id string) {
	w.mu.Lock()
	delete(w.inflight, id)
	w.mu.Unlock()
}

// idle reports whether a fetch error only says the queue had nothing for us.
func idle(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout)
}

// sleep waits for d or until ctx is done, and reports whether it slept the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
