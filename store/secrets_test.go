package store_test

import (
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestSecrets(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	if err := s.SetSecret(ctx, "token", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSecret(ctx, "token", []byte("s3cret-2")); err != nil {
		t.Fatalf("setting a secret again: %v", err)
	}
	if v, err := s.Secret(ctx, "token"); err != nil || string(v) != "s3cret-2" {
		t.Errorf("Secret(token) = %q, %v; want the value set last", v, err)
	}
	if err := s.SetSecret(ctx, "b-other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListSecrets(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "b-other" || list[1].Name != "token" || list[1].UpdatedAt.IsZero() {
		t.Errorf("ListSecrets() = %+v, %v; want b-other and token with their times", list, err)
	}
	for _, tc := range []struct {
		name, value string
		code        proto.Code
	}{
		{"", "x", proto.Invalid},
		{"has space", "x", proto.Invalid},
		{"empty", "", proto.Invalid},
		{"huge", strings.Repeat("x", 64<<10+1), proto.TooLarge},
	} {
		if err := s.SetSecret(ctx, tc.name, []byte(tc.value)); proto.ErrorCode(err) != tc.code {
			t.Errorf("SetSecret(%q, %d bytes) = %v, want kind %v", tc.name, len(tc.value), err, tc.code)
		}
	}
	if err := s.DeleteSecret(ctx, "token"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx, "token"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("Secret of a deleted secret = %v, want NotFound", err)
	}
	if err := s.DeleteSecret(ctx, "token"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("deleting it again = %v, want NotFound", err)
	}
}
