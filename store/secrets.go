package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// MaxSecretSize bounds a secret's value: secrets are tokens and passwords, not files.
const MaxSecretSize = 64 << 10

// SecretInfo is what may be shown of a secret: its name and when it was last set, never its value.
type SecretInfo struct {
	Name      string
	UpdatedAt time.Time
}

// SetSecret stores value under name, replacing any value it had. The name follows the rule of task names; an
// empty value or one over MaxSecretSize is proto.Invalid.
func (s *Store) SetSecret(ctx context.Context, name string, value []byte) error {
	if err := checkSecretName(name); err != nil {
		return err
	}
	switch {
	case len(value) == 0:
		return proto.Errorf(proto.Invalid, "secret %s: the value is empty", name)
	case len(value) > MaxSecretSize:
		return proto.Errorf(proto.TooLarge, "secret %s: the value is over the %d KiB limit", name, MaxSecretSize>>10)
	}
	if _, err := s.secrets.Put(ctx, name, value); err != nil {
		return wrap(err, "storing secret %s", name)
	}
	return nil
}

// Secret returns the value of the secret name, or a proto.NotFound error naming it.
func (s *Store) Secret(ctx context.Context, name string) ([]byte, error) {
	if checkSecretName(name) != nil {
		return nil, proto.Errorf(proto.NotFound, "no secret named %q", name)
	}
	e, err := s.secrets.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, proto.Errorf(proto.NotFound, "no secret named %s: set it with kiln secret set %s", name, name)
	}
	if err != nil {
		return nil, wrap(err, "reading secret %s", name)
	}
	return e.Value(), nil
}

// DeleteSecret deletes the secret name; one that does not exist is proto.NotFound.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	if _, err := s.Secret(ctx, name); err != nil {
		return err
	}
	if err := s.secrets.Purge(ctx, name); err != nil {
		return wrap(err, "deleting secret %s", name)
	}
	return nil
}

// ListSecrets returns every secret's name and time of setting, sorted by name.
func (s *Store) ListSecrets(ctx context.Context) ([]SecretInfo, error) {
	w, err := s.secrets.WatchAll(ctx, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return nil, wrap(err, "listing secrets")
	}
	defer w.Stop()
	var out []SecretInfo
	for {
		select {
		case <-ctx.Done():
			return nil, wrap(ctx.Err(), "listing secrets")
		case e, ok := <-w.Updates():
			if !ok {
				return nil, proto.Errorf(proto.Unavailable, "listing secrets: the watch ended before the last secret")
			}
			if e == nil {
				slices.SortFunc(out, func(a, b SecretInfo) int { return strings.Compare(a.Name, b.Name) })
				return out, nil
			}
			out = append(out, SecretInfo{Name: e.Key(), UpdatedAt: e.Created()})
		}
	}
}

// checkSecretName applies the rule of task names to a secret's name.
func checkSecretName(name string) error {
	if !validTaskName(name) {
		return proto.Errorf(proto.Invalid, "%q is not a valid secret name: %s", name, taskNameRule)
	}
	return nil
}
