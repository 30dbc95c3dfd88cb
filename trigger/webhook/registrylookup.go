package webhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// defaultLookupRetry is the Retry-After of a lookup that failed when the registry named no time to wait.
const defaultLookupRetry = 30 * time.Second

// TagLookup finds the digest a tag points to now; basepoll.Poller is one, asking the tag's registry with
// one HEAD. The registry webhook asks it for the tags of senders that give no digest (Docker Hub).
type TagLookup interface {
	// Digest returns the digest ref, a normalized tag reference, points to now.
	Digest(ctx context.Context, ref string) (string, error)
}

// lookup asks the configured TagLookup for the digest of ref.
func (h *RegistryHandler) lookup(ctx context.Context, ref string) (string, error) {
	if h.cfg.Lookup == nil {
		return "", errors.New("this Kiln looks no tags up (RegistryConfig.Lookup is not set)")
	}
	d, err := h.cfg.Lookup.Digest(ctx, ref)
	if err != nil {
		return "", err
	}
	if _, err := pushedDigest(ref, d); err != nil {
		return "", fmt.Errorf("the registry answered: %w", err)
	}
	return d, nil
}

// retryAfterSeconds is the Retry-After, in whole seconds, of an answer that failed with err: the wait a
// registry asked for, when err has a RetryAfter method (basepoll's answer to a 429) that names one, else
// defaultLookupRetry.
func retryAfterSeconds(err error) int {
	d := defaultLookupRetry
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		d = ra.RetryAfter()
	}
	return int(math.Ceil(d.Seconds()))
}

// skippedText lists the events skipped and why, in the order of their keys, for an error.
func skippedText(skipped map[string]string) string {
	var b strings.Builder
	for i, key := range slices.Sorted(maps.Keys(skipped)) {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(key + ": " + skipped[key])
	}
	return b.String()
}

// registryToken returns the token a notification carries: the Authorization header, as distribution, ACR
// and Harbor send it, or else the token query parameter, for senders that can set no header (Docker Hub).
func registryToken(header, query string) string {
	if header == "" && query != "" {
		return "Bearer " + query
	}
	return header
}
