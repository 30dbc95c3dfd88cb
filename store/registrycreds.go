package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
)

// registryCredsPrefix starts the keys in kiln_meta that hold registries' credentials, one key per host. They
// are kept apart from the secrets of task files, which the API lists, so that no listing shows them.
const registryCredsPrefix = "registry_creds."

// RegistryCredentials is the user name and password with which a registry accepts pushes.
type RegistryCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// SetRegistryCredentials stores creds as the credentials of the registry at host (host:port as in an image
// reference), replacing any it had. The process that runs a registry sets them; workers elsewhere read them.
func (s *Store) SetRegistryCredentials(ctx context.Context, host string, creds RegistryCredentials) error {
	if host == "" || creds.User == "" || creds.Password == "" {
		return proto.Errorf(proto.Invalid, "storing registry credentials: a host, a user and a password are needed")
	}
	b, err := json.Marshal(creds)
	if err != nil {
		return proto.Errorf(proto.Internal, "storing the credentials of registry %s: %v", host, err)
	}
	if _, err := s.meta.Put(ctx, registryCredsKey(host), b); err != nil {
		return wrap(err, "storing the credentials of registry %s", host)
	}
	return nil
}

// RegistryCredentialsFor returns the credentials stored for the registry at host, or a proto.NotFound error.
func (s *Store) RegistryCredentialsFor(ctx context.Context, host string) (RegistryCredentials, error) {
	e, err := s.meta.Get(ctx, registryCredsKey(host))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return RegistryCredentials{}, proto.Errorf(proto.NotFound, "no credentials stored for registry %s", host)
	}
	if err != nil {
		return RegistryCredentials{}, wrap(err, "reading the credentials of registry %s", host)
	}
	var creds RegistryCredentials
	if err := json.Unmarshal(e.Value(), &creds); err != nil {
		return RegistryCredentials{}, proto.Errorf(proto.Internal, "reading the credentials of registry %s: %v", host, err)
	}
	return creds, nil
}

// registryCredsKey is host's key: KV keys allow neither ':' nor '[', which hosts have, so the host is encoded.
func registryCredsKey(host string) string {
	return registryCredsPrefix + base64.RawURLEncoding.EncodeToString([]byte(host))
}
