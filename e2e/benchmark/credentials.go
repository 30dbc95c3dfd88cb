package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// logins is the benchmark's keychain: the user and password of the embedded registry of each kiln serve it
// started, which pushes straight to those registries (remote.Write) need.
var logins = &keychain{basic: map[string]authn.Basic{}}

// keychain answers with the credentials added for a registry host, and anonymously for any other.
type keychain struct {
	mu    sync.Mutex
	basic map[string]authn.Basic
}

// Resolve makes keychain an authn.Keychain.
func (k *keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b, ok := k.basic[r.RegistryStr()]; ok {
		return &b, nil
	}
	return authn.Anonymous, nil
}

// add makes host's credentials those of the file in a kiln serve's data directory ("user:password").
func (k *keychain) add(host, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading the registry's credentials: %w", err)
	}
	user, password, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return fmt.Errorf("%s holds no user:password", file)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.basic[host] = authn.Basic{Username: user, Password: password}
	return nil
}

// writeDockerConfig writes the keychain's credentials as a docker config.json in dir, for buildctl
// (DOCKER_CONFIG=dir) to push with.
func (k *keychain) writeDockerConfig(dir string) error {
	k.mu.Lock()
	auths := map[string]map[string]string{}
	for host, b := range k.basic {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(b.Username + ":" + b.Password))}
	}
	k.mu.Unlock()
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

// secretOf reads a secret kiln serve made in its data directory.
func secretOf(dataDir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, name))
	if err != nil {
		return "", fmt.Errorf("reading what kiln serve made: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// env is the environment of the processes the benchmark runs: its own client config, which kiln serve writes its
// token to instead of the user's, and its own docker config, holding the embedded registries' credentials.
func (b *bench) env() []string {
	return append(os.Environ(), "KILN_CONFIG="+filepath.Join(b.tmp, "client-config.json"),
		"DOCKER_CONFIG="+filepath.Join(b.tmp, "docker"))
}

// fileExists reports whether there is a file at path.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
