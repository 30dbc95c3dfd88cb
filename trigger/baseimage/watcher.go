package baseimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// Defaults of the Watcher's zero fields.
const (
	DefaultSettle = 10 * time.Second
	// stallAfter is how long a firing may last before another process takes it over: far longer than queuing
	// a run takes, short enough that a process that died mid-way delays the run only a little.
	stallAfter = 30 * time.Second
	ackWait    = 30 * time.Second
)

// Store is what the Watcher needs of the store. *store.Store satisfies it.
type Store interface {
	UpdateTaskBases(ctx context.Context, task string, fn func(tb *proto.TaskBases) error) (*proto.TaskBases, error)
	WatchTaskBases(ctx context.Context) (<-chan store.TaskBasesUpdate, error)
	UpdateTagState(ctx context.Context, ref string, fn func(ts *proto.TagState) error) (*proto.TagState, error)
	UpdateTask(ctx context.Context, name string, fn func(t *proto.Task) error) (*proto.Task, error)
	Run(ctx context.Context, id string) (*proto.Run, error)
}

// Starter starts a run of the head of a task's branch; *queue.Head is one.
type Starter interface {
	Start(ctx context.Context, task *proto.Task, trigger proto.Trigger, triggeredBy string, now time.Time,
		edit func(r *proto.Run)) (string, error)
}

// Watcher turns reports of tags and digests into runs of the tasks built on them. Several Watchers, in as many
// processes, share the work.
type Watcher struct {
	Store Store
	JS    jetstream.JetStream
	Runs  Starter
	Index *Index // kept current by its own Run, which the caller starts
	// Settle is how long after a task's first pending change its run is queued, so that changes landing
	// together (an index pushed platform by platform, several bases updated at once) start one run. Zero
	// means DefaultSettle; negative means no wait.
	Settle time.Duration
	// ReadBases reads a task's bases from its Dockerfile again after a run of a new commit, as the Dockerfile
	// may have changed. Nil leaves the bases read when the task was saved.
	ReadBases func(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error)
	Logger    *slog.Logger
	Now       func() time.Time

	refreshes chan *proto.Run // runs whose task's bases are to be read again, off the status consumer's path
}

// errNoChange leaves a compare-and-swap without writing.
var errNoChange = errors.New("no change")

// Run consumes image reports and run outcomes and queues the runs they call for, until ctx ends. It starts
// consuming once the Index holds every task, so that no report is judged against a partial view.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	select {
	case <-w.Index.Ready():
	case <-ctx.Done():
		return nil
	}
	images, err := w.JS.CreateOrUpdateConsumer(ctx, proto.StreamImages, jetstream.ConsumerConfig{
		Durable:       proto.ConsumerBaseWatch,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 256,
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", proto.ConsumerBaseWatch, err)
	}
	runs, err := w.JS.CreateOrUpdateConsumer(ctx, proto.StreamStatus, jetstream.ConsumerConfig{
		Durable:       proto.ConsumerBaseRuns,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		FilterSubject: proto.SubjectStatusAll,
		MaxAckPending: 256,
	})
	if err != nil {
		return fmt.Errorf("creating consumer %s: %w", proto.ConsumerBaseRuns, err)
	}
	w.refreshes = make(chan *proto.Run, refreshQueue)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, part := range []func(context.Context) error{
		func(ctx context.Context) error { return consume(ctx, images, w.handleImage) },
		func(ctx context.Context) error { return consume(ctx, runs, w.handleRunStatus) },
		w.fireLoop,
		w.refreshLoop,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- part(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// consume hands each message of c to handle, one at a time, until ctx ends. handle acknowledges.
func consume(ctx context.Context, c jetstream.Consumer, handle func(ctx context.Context, msg jetstream.Msg)) error {
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("consuming %s: %w", c.CachedInfo().Name, err)
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("consuming %s: %w", c.CachedInfo().Name, err)
		}
		handle(ctx, msg)
	}
}

// handleImage applies one ImagePushed: the tag's state is brought up to date, then the rule is applied to
// every task tracking the tag. A failure puts the message back for another try.
func (w *Watcher) handleImage(ctx context.Context, msg jetstream.Msg) {
	ev := new(proto.ImagePushed)
	if err := gproto.Unmarshal(msg.Data(), ev); err != nil {
		w.Logger.Error("dropping an ImagePushed that does not decode", "err", err)
		_ = msg.Term()
		return
	}
	ref, err := basedeps.Normalize(ev.GetReference())
	if err != nil || ev.GetDigest() == "" {
		w.Logger.Warn("dropping an ImagePushed without a valid reference and digest", "reference", ev.GetReference(), "digest", ev.GetDigest())
		_ = msg.Term()
		return
	}
	if err := w.image(ctx, ref, ev); err != nil {
		w.Logger.Warn("applying an image report; it will be tried again", "reference", ref, "digest", ev.GetDigest(), "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	_ = msg.Ack()
}

func (w *Watcher) image(ctx context.Context, ref string, ev *proto.ImagePushed) error {
	dependents := w.Index.Dependents(ref)
	if len(dependents) == 0 {
		return nil // nobody tracks it: nothing to record either
	}
	observed := ev.GetObservedAt()
	if observed == nil {
		observed = timestamppb.New(w.Now())
	}
	_, err := w.Store.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
		if ts.GetCheckedAt() != nil && ts.GetCheckedAt().AsTime().After(observed.AsTime()) {
			return errNoChange // a later report is recorded already
		}
		ts.Digest, ts.CheckedAt, ts.Source = ev.GetDigest(), observed, ev.GetSource()
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return err
	}
	now := w.Now()
	for _, t := range dependents {
		_, err := w.Store.UpdateTaskBases(ctx, t.GetName(), func(tb *proto.TaskBases) error {
			if !observe(tb, ref, ev.GetDigest(), ev.GetSource(), observed.AsTime(), now, w.settle()) {
				return errNoChange
			}
			return nil
		})
		if err != nil && !errors.Is(err, errNoChange) {
			return fmt.Errorf("recording the change for task %s: %w", t.GetName(), err)
		}
	}
	return nil
}

func (w *Watcher) settle() time.Duration {
	switch {
	case w.Settle == 0:
		return DefaultSettle
	case w.Settle < 0:
		return 0
	}
	return w.Settle
}
