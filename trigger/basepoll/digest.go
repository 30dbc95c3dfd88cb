package basepoll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/proto"
)

// Digest returns the digest the tag ref points to now, asked of its registry with one HEAD as a poll asks,
// with the Poller's credentials, transport and cached pings and tokens, but recording nothing on the tag. The
// registry webhook asks it for senders whose notifications name a tag without its digest (Docker Hub). A
// registry that answered a poll or a lookup with 429 is not asked until the wait it named is over; the error
// of such a lookup has a RetryAfter method saying how long that is.
func (p *Poller) Digest(ctx context.Context, ref string) (string, error) {
	if err := p.setup(); err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "reading %s as a tag: %w", ref, err)
	}
	reg := tag.RegistryStr()
	now := p.now()
	if until, ok := p.heldUntil(reg, now); ok {
		return "", &limitedError{err: fmt.Errorf("%s asked to wait until %s", reg, until.Format(time.RFC3339)),
			retryAfter: until.Sub(now)}
	}
	d, err := p.head(ctx, tag, now)
	var le *limitedError
	switch {
	case errors.As(err, &le):
		at := p.now()
		le.retryAfter = p.holdRegistry(reg, le.retryAfter, at).Sub(at)
		return "", err
	case err != nil:
		return "", err
	}
	p.unhold(reg, p.now())
	return d, nil
}

// RetryAfter is how long the registry asked to wait; 0 when it named no time.
func (e *limitedError) RetryAfter() time.Duration { return e.retryAfter }
