package store_test

import (
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

func TestRegistryCredentials(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	hosts := map[string]store.RegistryCredentials{
		"127.0.0.1:5000":     {User: "kiln", Password: "first"},
		"[::1]:5000":         {User: "kiln", Password: "second"},
		"kiln.internal:5000": {User: "kiln", Password: "third"},
	}
	for host, creds := range hosts {
		if err := s.SetRegistryCredentials(ctx, host, creds); err != nil {
			t.Fatalf("SetRegistryCredentials(%s) = %v", host, err)
		}
	}
	for host, want := range hosts {
		if got, err := s.RegistryCredentialsFor(ctx, host); err != nil || got != want {
			t.Errorf("RegistryCredentialsFor(%s) = %+v, %v; want %+v", host, got, err, want)
		}
	}

	again := store.RegistryCredentials{User: "kiln", Password: "changed"}
	if err := s.SetRegistryCredentials(ctx, "127.0.0.1:5000", again); err != nil {
		t.Fatalf("SetRegistryCredentials(127.0.0.1:5000) again = %v", err)
	}
	if got, err := s.RegistryCredentialsFor(ctx, "127.0.0.1:5000"); err != nil || got != again {
		t.Errorf("RegistryCredentialsFor(127.0.0.1:5000) = %+v, %v; want %+v", got, err, again)
	}

	if _, err := s.RegistryCredentialsFor(ctx, "localhost:5000"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("RegistryCredentialsFor(localhost:5000) = %v, want kind %v", err, proto.NotFound)
	}
	for _, tc := range []struct {
		name  string
		host  string
		creds store.RegistryCredentials
	}{
		{"no host", "", store.RegistryCredentials{User: "kiln", Password: "x"}},
		{"no user", "h:1", store.RegistryCredentials{Password: "x"}},
		{"no password", "h:1", store.RegistryCredentials{User: "kiln"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.SetRegistryCredentials(ctx, tc.host, tc.creds); proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("SetRegistryCredentials(%q, %+v) = %v, want kind %v", tc.host, tc.creds, err, proto.Invalid)
			}
		})
	}

	if list, err := s.ListSecrets(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListSecrets() = %+v, %v; want no secrets: registry credentials are not task secrets", list, err)
	}
}
