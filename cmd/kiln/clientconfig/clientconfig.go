package clientconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the client configuration file of the local user: $KILN_CONFIG, else
// $XDG_CONFIG_HOME/kiln/config.json, else ~/.config/kiln/config.json.
func DefaultPath() (string, error) {
	if p := os.Getenv("KILN_CONFIG"); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "kiln", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the client config: set $KILN_CONFIG: %w", err)
	}
	return filepath.Join(home, ".config", "kiln", "config.json"), nil
}

// Token returns the token the file at path holds for server, or "" when it holds none or does not exist.
func Token(path, server string) (string, error) {
	_, servers, err := read(path)
	if err != nil {
		return "", err
	}
	var entry struct {
		Token string `json:"token"`
	}
	raw, ok := servers[key(server)]
	if !ok {
		return "", nil
	}
	if err := json.Unmarshal(raw, &entry); err != nil {
		return "", fmt.Errorf("reading the client config %s: the entry of %s: %w", path, key(server), err)
	}
	return entry.Token, nil
}

// SetToken writes token as server's in the file at path, keeping the file's other entries.
func SetToken(path, server, token string) error {
	top, servers, err := read(path)
	if err != nil {
		return err
	}
	entry := map[string]json.RawMessage{}
	if raw, ok := servers[key(server)]; ok {
		_ = json.Unmarshal(raw, &entry) // an entry that is not an object is replaced
	}
	if entry["token"], err = json.Marshal(token); err != nil {
		return fmt.Errorf("writing the client config %s: %w", path, err)
	}
	if servers[key(server)], err = json.Marshal(entry); err != nil {
		return fmt.Errorf("writing the client config %s: %w", path, err)
	}
	if top["servers"], err = json.Marshal(servers); err != nil {
		return fmt.Errorf("writing the client config %s: %w", path, err)
	}
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return fmt.Errorf("writing the client config %s: %w", path, err)
	}
	if err := writeFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing the client config %s: %w", path, err)
	}
	return nil
}

// read returns the file's top-level fields and its servers; a file that does not exist holds neither.
func read(path string) (top, servers map[string]json.RawMessage, err error) {
	top, servers = map[string]json.RawMessage{}, map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return top, servers, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the client config: %w", err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, nil, fmt.Errorf("reading the client config %s: %w", path, err)
	}
	if raw, ok := top["servers"]; ok {
		if err := json.Unmarshal(raw, &servers); err != nil {
			return nil, nil, fmt.Errorf("reading the client config %s: \"servers\": %w", path, err)
		}
	}
	return top, servers, nil
}

// writeFile replaces the file at path with b, mode 0600, making its directory with mode 0700 if need be.
func writeFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing left to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path) // CreateTemp made it 0600
}

// key is how server is named in the file: its URL without a trailing slash.
func key(server string) string {
	return strings.TrimRight(server, "/")
}
