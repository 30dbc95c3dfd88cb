package store

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// MarkDelivery records a webhook delivery, named by its source ("github", "gitlab") and the sender's delivery
// ID, and reports whether this is the first time Kiln sees it. Of any number of concurrent calls with the same
// source and ID, in any number of processes, exactly one gets first = true. A mark lasts 30 days, as long as
// GitHub lets a delivery be redelivered by hand. An empty source or ID is proto.Invalid.
func (s *Store) MarkDelivery(ctx context.Context, source, id string) (first bool, err error) {
	first, _, err = s.MarkDeliveryBy(ctx, source, id, time.Now().UTC().Format(time.RFC3339))
	return first, err
}

// MarkDeliveryBy is MarkDelivery that keeps by with the mark (a delivery ID, say) and, when the mark was there
// already, returns what its first maker kept: one write to the store, and a read only when it is not first.
func (s *Store) MarkDeliveryBy(ctx context.Context, source, id, by string) (first bool, firstBy string, err error) {
	key, err := deliveryKey(source, id)
	if err != nil {
		return false, "", err
	}
	_, err = s.deliveries.Create(ctx, key, []byte(by))
	switch {
	case err == nil:
		return true, "", nil
	case errors.Is(err, jetstream.ErrKeyExists):
		e, err := s.deliveries.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, "", nil // unmarked again since: what made it is not known, and it did not act
		}
		if err != nil {
			return false, "", wrap(err, "reading the mark of %s delivery %q", source, id)
		}
		return false, string(e.Value()), nil
	default:
		return false, "", wrap(err, "marking %s delivery %q", source, id)
	}
}

// UnmarkDelivery forgets a delivery that MarkDelivery recorded, so that the next MarkDelivery of it is first
// again. A webhook handler calls it when it could not act on a delivery, so that a redelivery is acted on.
// Forgetting a delivery that was never marked is not an error.
func (s *Store) UnmarkDelivery(ctx context.Context, source, id string) error {
	key, err := deliveryKey(source, id)
	if err != nil {
		return err
	}
	if err := s.deliveries.Delete(ctx, key); err != nil {
		return wrap(err, "unmarking %s delivery %q", source, id)
	}
	return nil
}

// deliveryKey returns the key in kiln_deliveries of a delivery.
func deliveryKey(source, id string) (string, error) {
	if source == "" || id == "" {
		return "", proto.Errorf(proto.Invalid, "a delivery needs a source and an ID, got %q and %q", source, id)
	}
	return kvKey(source, id), nil
}

// kvKey joins parts into one KV key that any string can be part of. A KV key may hold only
// [-/_=.a-zA-Z0-9], and '.' separates subject tokens, so each part is encoded as unpadded base64url (whose
// alphabet is [-_a-zA-Z0-9]) and the parts are joined with '.': distinct lists of non-empty parts give
// distinct keys.
func kvKey(parts ...string) string {
	enc := make([]string, len(parts))
	for i, p := range parts {
		enc[i] = base64.RawURLEncoding.EncodeToString([]byte(p))
	}
	return strings.Join(enc, ".")
}
