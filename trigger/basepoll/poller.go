package basepoll

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// The defaults of a Poller's fields.
const (
	DefaultInterval    = 5 * time.Minute
	DefaultJitter      = 0.1
	DefaultConcurrency = 4
	DefaultBackoff     = 30 * time.Second
	DefaultTick        = 10 * time.Second
)

// SourcePoll is the source a Poller gives the ImagePushed events it publishes and the tag states it writes.
const SourcePoll = "poll"

// How a Poller bounds its own work.
const (
	headTimeout   = 30 * time.Second // one HEAD, with the ping and token exchange it may need first
	finishTimeout = 10 * time.Second // recording a poll's result, which goes on after Run's ctx is done
	pullerMaxAge  = time.Hour        // how long pings, tokens and keychain credentials are reused
	maxJitter     = 0.5              // so that a tag is never due again at once
)

// Store is what a Poller reads and writes of Kiln's store; *store.Store is one. UpdateTagState is a
// compare-and-swap shared by all processes: fn may be called more than once, and an error from fn is returned
// with nothing written.
type Store interface {
	UpdateTagState(ctx context.Context, ref string, fn func(ts *proto.TagState) error) (*proto.TagState, error)
}

// Publisher publishes on JetStream; jetstream.JetStream is one.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Tags says which tags to poll.
type Tags interface {
	// Refs returns the normalized references (index.docker.io/library/alpine:3) of the tags tracked now, each
	// once however many tasks build on it. A reference that is not a tag is recorded as a failed poll.
	Refs() []string
}

// Poller polls the tags Tags names for a new digest. Set its fields before its first use and do not change
// them after, nor copy the Poller; one Poller may run in each process, all on the same store. Its zero
// durations and counts mean the defaults above.
type Poller struct {
	Store     Store
	Publisher Publisher
	Tags      Tags

	// Interval is how often each tag is asked for, by whichever Poller claims it.
	Interval time.Duration
	// Jitter moves each next poll by up to this fraction of Interval, earlier or later, so that tags first
	// seen together spread out; 0 means DefaultJitter, a negative value none, and more than 0.5 is 0.5.
	Jitter float64
	// Concurrency is how many tags one Poller asks for at once.
	Concurrency int
	// Backoff is the wait after a first failure; it doubles with each failure in a row, up to Interval.
	Backoff time.Duration
	// Tick is the longest Run waits between passes, which bounds how soon it polls a tag newly tracked.
	Tick time.Duration

	// Transport carries the requests; nil means remote.DefaultTransport. Registries on loopback and private
	// addresses are spoken to in plain HTTP, as go-containerregistry's name package decides.
	Transport http.RoundTripper
	// Remote holds more go-containerregistry options, such as remote.WithAuthFromKeychain. A Poller sets the
	// transport and turns retries off after these: give the transport as Transport.
	Remote []remote.Option

	// Logger receives what a Poller does; nil discards.
	Logger *slog.Logger
	// Now tells the time; nil means time.Now.
	Now func() time.Time

	once     sync.Once
	setupErr error
	log      *slog.Logger
	opts     []remote.Option

	mu       sync.Mutex
	due      map[string]time.Time // the next_poll last seen of each tag tracked
	holds    map[string]*hold     // registries that answered 429, by name
	puller   *remote.Puller
	pullerAt time.Time
}

// Pass is what one pass of a Poller did.
type Pass struct {
	Due     int // tags this Poller found due and tried to claim
	Polled  int // tags it claimed and asked the registry for, with one HEAD each
	Changed int // tags found on a new digest, with an ImagePushed published for each
	Failed  int // tags whose poll failed; the failure is recorded on the tag
	Held    int // due tags left alone because their registry asked this process to wait
}

// Run polls until ctx is done, then returns nil once the polls in flight have ended: a request in flight is
// abandoned and its tag handed back, a result already received is recorded. It passes over the tags each
// time one is due, and at least every Tick. A failed pass is logged and tried again a Tick later; Run returns
// an error only for a Poller it cannot set up: one missing its Store, Publisher or Tags, or with Remote
// options go-containerregistry refuses.
func (p *Poller) Run(ctx context.Context) error {
	if err := p.setup(); err != nil {
		return err
	}
	p.log.Info("polling base image tags", "interval", p.interval(), "concurrency", p.concurrency())
	for {
		pass, err := p.PollOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := p.tick()
		if err != nil {
			p.log.Warn("polling base image tags; trying again", "in", wait, "err", err)
		} else {
			wait = p.untilNext()
			if pass.Due > 0 {
				p.log.Debug("polled base image tags", "due", pass.Due, "polled", pass.Polled,
					"changed", pass.Changed, "failed", pass.Failed, "held", pass.Held, "next", wait)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// PollOnce passes once over the tags Tags names and polls those due that it can claim, Concurrency at a
// time, and returns when all are done. It is what Run does on each tick, for a caller that counts requests.
// It stops claiming at the first error of the store, which it returns, or when ctx is done.
func (p *Poller) PollOnce(ctx context.Context) (Pass, error) {
	if err := p.setup(); err != nil {
		return Pass{}, err
	}
	now := p.now()
	var due []string
	for _, ref := range p.current() {
		if p.isDue(ref, now) {
			due = append(due, ref)
		}
	}

	var (
		mu       sync.Mutex
		pass     = Pass{Due: len(due)}
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan string)
	for range min(p.concurrency(), len(due)) {
		wg.Go(func() {
			for ref := range jobs {
				o, err := p.poll(ctx, ref)
				mu.Lock()
				pass.add(o)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, ref := range due {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case jobs <- ref:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return pass, firstErr
}

// add counts the outcome of one tag's poll.
func (s *Pass) add(o outcome) {
	switch o {
	case held:
		s.Held++
	case unchanged, abandoned:
		s.Polled++
	case changed:
		s.Polled++
		s.Changed++
	case failed:
		s.Polled++
		s.Failed++
	case invalid:
		s.Failed++
	}
}

// setup checks the fields once and prepares what they imply.
func (p *Poller) setup() error {
	p.once.Do(func() {
		p.log = p.Logger
		if p.log == nil {
			p.log = slog.New(slog.DiscardHandler)
		}
		if p.Store == nil || p.Publisher == nil || p.Tags == nil {
			p.setupErr = errors.New("starting the base image poller: it needs a Store, a Publisher and Tags")
			return
		}
		base := p.Transport
		if base == nil {
			base = remote.DefaultTransport
		}
		p.opts = append(slices.Clone(p.Remote),
			remote.WithTransport(limitWatch{inner: base}),
			// One poll is one request: a failure waits for the tag's backoff, and a 429 for the registry's.
			remote.WithRetryStatusCodes(),
			remote.WithRetryPredicate(func(error) bool { return false }),
		)
		if _, err := remote.NewPuller(p.opts...); err != nil {
			p.setupErr = err
			return
		}
		p.due = make(map[string]time.Time)
		p.holds = make(map[string]*hold)
	})
	return p.setupErr
}

// pullerFor returns the go-containerregistry Puller to ask with. A Puller remembers each repository's ping
// and token, so that a cycle costs one request per tag rather than three; it is replaced every pullerMaxAge
// so that changed credentials are read again.
func (p *Poller) pullerFor(now time.Time) (*remote.Puller, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.puller == nil || now.Sub(p.pullerAt) >= pullerMaxAge || now.Before(p.pullerAt) {
		pl, err := remote.NewPuller(p.opts...)
		if err != nil {
			return nil, err
		}
		p.puller, p.pullerAt = pl, now
	}
	return p.puller, nil
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Poller) interval() time.Duration { return orDefault(p.Interval, DefaultInterval) }
func (p *Poller) tick() time.Duration     { return orDefault(p.Tick, DefaultTick) }
func (p *Poller) concurrency() int        { return orDefault(p.Concurrency, DefaultConcurrency) }

func (p *Poller) jitter() float64 {
	switch {
	case p.Jitter == 0:
		return DefaultJitter
	case p.Jitter < 0:
		return 0
	}
	return min(p.Jitter, maxJitter)
}

func (p *Poller) firstBackoff() time.Duration {
	return min(orDefault(p.Backoff, DefaultBackoff), p.interval())
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
