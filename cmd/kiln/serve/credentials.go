package serve

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The files in the data directory that hold the credentials Kiln generates on its first start and reuses after:
// the API's bearer token, and the user:password of the embedded NATS server and of the embedded registry.
const (
	apiTokenFile      = "api-token"
	natsCredsFile     = "nats-credentials"
	registryCredsFile = "registry-credentials"
)

// credsUser is the user of the embedded NATS server and registry.
const credsUser = "kiln"

// secretFile returns the secret kept in the file at path, trimmed of spaces. The first time, when there is no
// such file, it writes one holding make() with mode 0600, and made is true. A file readable by others is made
// 0600; an empty one is an error naming it.
func secretFile(path string, make func() string) (secret string, made bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret = make()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return secretFile(path, make) // another process made it first
		}
		if err != nil {
			return "", false, fmt.Errorf("making %s: %w", path, err)
		}
		_, err = f.WriteString(secret + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return "", false, fmt.Errorf("writing %s: %w", path, err)
		}
		return secret, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", false, fmt.Errorf("making %s readable by its owner only: %w", path, err)
		}
	}
	secret = strings.TrimSpace(string(b))
	if secret == "" {
		return "", false, fmt.Errorf("%s is empty: delete it, and Kiln makes a new one at its next start", path)
	}
	return secret, false, nil
}

// userPassword returns the user and password kept in the data directory's file name as "user:password",
// generating a password for credsUser on the first start.
func userPassword(dataDir, name string) (user, password string, err error) {
	path := filepath.Join(dataDir, name)
	s, _, err := secretFile(path, func() string { return credsUser + ":" + rand.Text() })
	if err != nil {
		return "", "", err
	}
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" || password == "" {
		return "", "", fmt.Errorf("%s holds no user:password: delete it, and Kiln makes a new one at its next start", path)
	}
	return user, password, nil
}

// redactURL returns the URLs in s (one, or several separated by commas, as nats.Connect takes them) without
// their passwords, for logs and error messages.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "(a URL that does not parse)"
			}
			continue
		}
		if u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// hidePasswords returns msg with the secrets of the URLs in urls (as redactURL takes them) blanked out: each
// password, or the user of a URL without one, which is then a token. It is for errors that may quote a URL.
func hidePasswords(msg, urls string) string {
	for _, p := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username()
		}
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
	}
	return msg
}
