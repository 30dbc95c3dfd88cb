package serve

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSecretFileIsMadeOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	first, made, err := secretFile(path, func() string { return "one" })
	if err != nil || first != "one" || !made {
		t.Fatalf("secretFile(new) = %q, %v, %v; want one, made", first, made, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of %s = %v (%v), want 0600", path, fi.Mode().Perm(), err)
	}
	again, made, err := secretFile(path, func() string { return "two" })
	if err != nil || again != "one" || made {
		t.Errorf("secretFile(existing) = %q, %v, %v; want the first secret, not made", again, made, err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secretFile(path, func() string { return "two" }); err != nil {
		t.Fatalf("secretFile(readable by others) = %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of %s after secretFile = %v (%v), want 0600", path, fi.Mode().Perm(), err)
	}
}

func TestSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noColon := filepath.Join(dir, "no-colon")
	if err := os.WriteFile(noColon, []byte("password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secretFile(empty, func() string { return "x" }); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("secretFile(an empty file) = %v, want an error naming it", err)
	}
	if _, _, err := userPassword(dir, "no-colon"); err == nil || !strings.Contains(err.Error(), noColon) || strings.Contains(err.Error(), "password\n") {
		t.Errorf("userPassword(a file without user:) = %v, want an error naming it", err)
	}
	if _, _, err := secretFile(filepath.Join(dir, "missing", "secret"), func() string { return "x" }); err == nil {
		t.Errorf("secretFile(in a missing directory) succeeded, want an error")
	}
}

func TestUserPassword(t *testing.T) {
	dir := t.TempDir()
	user, password, err := userPassword(dir, "creds")
	if err != nil || user != credsUser || len(password) < 20 {
		t.Fatalf("userPassword(new) = %q, %q, %v; want %s and a long random password", user, password, err, credsUser)
	}
	u2, p2, err := userPassword(dir, "creds")
	if err != nil || u2 != user || p2 != password {
		t.Errorf("userPassword(again) = %q, %q, %v; want the same user and password", u2, p2, err)
	}
	if _, p3, _ := userPassword(t.TempDir(), "creds"); p3 == password {
		t.Errorf("userPassword in another data directory = the same password, want a new one")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "user and password", in: "nats://kiln:s3cret@127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{name: "token", in: "nats://t0ken@host:4222", want: "nats://host:4222"},
		{name: "none", in: "nats://host:4222", want: "nats://host:4222"},
		{name: "several", in: "nats://a:p1@h1:4222,nats://a:p2@h2:4222", want: "nats://h1:4222,nats://h2:4222"},
		{name: "host and port", in: "127.0.0.1:4222", want: "127.0.0.1:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactURL(tt.in); got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := hidePasswords("dial nats://kiln:s3cret@h:1 failed", "nats://kiln:s3cret@h:1"); strings.Contains(got, "s3cret") {
		t.Errorf("hidePasswords(...) = %q, want no password", got)
	}
}

func TestRegistryHosts(t *testing.T) {
	tests := []struct {
		name, listen, addr string
		want               []string
	}{
		{name: "loopback", listen: "127.0.0.1:0", addr: "127.0.0.1:5000",
			want: []string{"127.0.0.1:5000", "localhost:5000", "[::1]:5000"}},
		{name: "a name", listen: "kiln.internal:5000", addr: "10.0.0.5:5000",
			want: []string{"10.0.0.5:5000", "kiln.internal:5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := registryHosts(tt.listen, tt.addr)
			for _, h := range tt.want {
				if !slices.Contains(got, h) {
					t.Errorf("registryHosts(%s, %s) = %v, want %s among them", tt.listen, tt.addr, got, h)
				}
			}
		})
	}
}
