package basepoll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// maxErrorText bounds the error recorded on a tag: go-containerregistry's errors may carry a response body.
const maxErrorText = 512

// outcome is what became of one due tag in a pass.
type outcome int

const (
	notDue    outcome = iota // another Poller, or this one earlier, had already claimed it
	held                     // its registry asked this process to wait
	unchanged                // polled, on the digest recorded (or the first one seen)
	changed                  // polled, on a new digest, and an ImagePushed published
	failed                   // polled, and the request or the recording failed
	invalid                  // claimed, but its reference is not a tag: recorded as a failure
	abandoned                // polled, but ctx ended before the answer, and the tag was handed back
)

var (
	errNotDue  = errors.New("not due")
	errNotOurs = errors.New("claimed by another poller since")
)

// poll claims ref, asks its registry for the digest behind it and records the answer. It returns an error
// only when the store failed; everything else is recorded on the tag.
func (p *Poller) poll(ctx context.Context, ref string) (outcome, error) {
	now := p.now()
	tag, perr := name.NewTag(ref, name.StrictValidation)
	reg := ""
	if perr == nil {
		reg = tag.RegistryStr()
		if until, ok := p.heldUntil(reg, now); ok {
			p.setDue(ref, until)
			return held, nil
		}
	}
	claim, ok, err := p.claim(ctx, ref, now)
	if err != nil || !ok {
		return notDue, err
	}
	if perr != nil {
		return invalid, p.recordFailure(ctx, ref, fmt.Errorf("reading %s as a tag: %w", ref, perr), time.Time{})
	}
	if until, ok := p.heldUntil(reg, p.now()); ok { // another poll of this pass was told to slow down
		p.handBack(ctx, ref, claim, until)
		return held, nil
	}

	started := p.now()
	digest, herr := p.head(ctx, tag, started)
	if herr != nil && ctx.Err() != nil {
		p.handBack(ctx, ref, claim, p.now())
		return abandoned, nil
	}
	// The answer is in: record it even when ctx ends meanwhile, lest the next poll repeat the request.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if herr != nil {
		var notBefore time.Time
		var le *limitedError
		if errors.As(herr, &le) {
			notBefore = p.holdRegistry(reg, le.retryAfter, p.now())
		} else {
			p.unhold(reg, p.now())
		}
		return failed, p.recordFailure(fctx, ref, herr, notBefore)
	}
	p.unhold(reg, p.now())
	moved, err := p.record(fctx, ref, digest, started)
	switch {
	case err != nil:
		return failed, p.recordFailure(fctx, ref, err, time.Time{})
	case moved:
		return changed, nil
	}
	return unchanged, nil
}

// claim makes this Poller the one to poll ref now, by moving the tag's next_poll from a time not after now
// to the next poll's time, and returns that time. When the tag is not due it reports false and remembers
// when it is.
func (p *Poller) claim(ctx context.Context, ref string, now time.Time) (time.Time, bool, error) {
	next := p.nextPoll(now)
	var due time.Time
	_, err := p.Store.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
		if np := ts.GetNextPoll(); np != nil && np.AsTime().After(now) {
			due = np.AsTime()
			return errNotDue
		}
		ts.NextPoll = timestamppb.New(next)
		return nil
	})
	switch {
	case errors.Is(err, errNotDue):
		p.setDue(ref, due)
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, err
	}
	p.setDue(ref, next)
	return next, true, nil
}

// limitedError is a poll's error when its registry asked to slow down.
type limitedError struct {
	err        error
	retryAfter time.Duration // 0 when the registry named no time
}

func (e *limitedError) Error() string { return e.err.Error() }
func (e *limitedError) Unwrap() error { return e.err }

// head asks the registry for the digest tag points to, with one HEAD request once the registry's ping and
// token are known. Its error is a *limitedError when the registry answered 429.
func (p *Poller) head(ctx context.Context, tag name.Tag, now time.Time) (string, error) {
	pl, err := p.pullerFor(now)
	if err != nil {
		return "", err
	}
	obs := new(observer)
	hctx, cancel := context.WithTimeout(withObserver(ctx, obs), headTimeout)
	defer cancel()
	desc, err := pl.Head(hctx, tag)
	if err != nil {
		// A 429 seen by another poll sharing this one's ping is known only by its status code.
		var terr *transport.Error
		if limited, d := obs.result(); limited || (errors.As(err, &terr) && terr.StatusCode == http.StatusTooManyRequests) {
			return "", &limitedError{err: err, retryAfter: d}
		}
		return "", err
	}
	return desc.Digest.String(), nil
}

// record writes the digest a poll that started at started found behind ref, after it publishes an
// ImagePushed if that digest differs from the one recorded: a crash between the two publishes the change
// again on the next poll rather than losing it. A report of the tag by another source since the poll started
// is newer and stays. It reports whether it published.
func (p *Poller) record(ctx context.Context, ref, digest string, started time.Time) (bool, error) {
	now := p.now()
	published := false
	_, err := p.Store.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
		ts.Error, ts.Failures = "", 0
		if c := ts.GetCheckedAt(); c != nil && c.AsTime().After(started) {
			return nil
		}
		if prev := ts.GetDigest(); prev != "" && prev != digest && !published {
			if err := p.publish(ctx, ref, digest, now); err != nil {
				return err
			}
			published = true
			p.log.Info("base image tag moved", "ref", ref, "from", prev, "to", digest)
		}
		ts.Digest, ts.CheckedAt, ts.Source = digest, timestamppb.New(now), SourcePoll
		return nil
	})
	return published, err
}

// publish announces that ref now points to digest. The message ID makes a publish repeated after a crash,
// or by a swap tried again, one event.
func (p *Poller) publish(ctx context.Context, ref, digest string, at time.Time) error {
	data, err := gproto.Marshal(&proto.ImagePushed{
		Reference:  ref,
		Digest:     digest,
		Source:     SourcePoll,
		ObservedAt: timestamppb.New(at),
	})
	if err == nil {
		_, err = p.Publisher.Publish(ctx, proto.SubjectImagePushed, data,
			jetstream.WithMsgID(SourcePoll+"/"+ref+"@"+digest))
	}
	if err != nil {
		return fmt.Errorf("publishing that %s moved to %s: %w", ref, digest, err)
	}
	return nil
}

// recordFailure records a failed poll of ref: its error, one more failure in a row, and the next poll after
// the backoff, or at notBefore if that is later.
func (p *Poller) recordFailure(ctx context.Context, ref string, cause error, notBefore time.Time) error {
	now := p.now()
	var next time.Time
	var failures int32
	_, err := p.Store.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
		ts.Failures++
		ts.Error = errorText(cause)
		next = now.Add(p.backoff(int(ts.Failures)))
		if notBefore.After(next) {
			next = notBefore
		}
		ts.NextPoll = timestamppb.New(next)
		failures = ts.Failures
		return nil
	})
	if err != nil {
		return err
	}
	p.setDue(ref, next)
	p.log.Warn("polling a base image tag", "ref", ref, "failures", failures, "next", next, "err", cause)
	return nil
}

// handBack gives back the claim on ref that made it due at claim, making it due at to instead, unless
// another Poller has claimed it since. A failure is only logged: the claim then ends at its own time.
func (p *Poller) handBack(ctx context.Context, ref string, claim, to time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	_, err := p.Store.UpdateTagState(ctx, ref, func(ts *proto.TagState) error {
		if !ts.GetNextPoll().AsTime().Equal(claim) {
			return errNotOurs
		}
		ts.NextPoll = timestamppb.New(to)
		return nil
	})
	switch {
	case errors.Is(err, errNotOurs):
	case err != nil:
		p.log.Warn("handing back a base image tag", "ref", ref, "err", err)
	default:
		p.setDue(ref, to)
	}
}

// errorText is err's text, cut to maxErrorText bytes of valid UTF-8, which a protobuf string must be.
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = s[:maxErrorText-3] + "..."
	}
	return strings.ToValidUTF8(s, "")
}
