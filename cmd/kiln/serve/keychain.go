package serve

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/kilnbuild/kiln/store"
)

// storeLookupTimeout bounds how long a keychain waits for the store to answer for a registry.
const storeLookupTimeout = 5 * time.Second

// registryLogins finds the credentials of a registry host: the embedded registry's own when this process runs
// it, then those the process running an embedded registry stored in the shared store, so that workers on other
// machines push there too. It is the workers' keychain for pushes, falling back to the docker config's
// (authn.DefaultKeychain), and the builder's source of credentials for pulls.
type registryLogins struct {
	local map[string]store.RegistryCredentials // the embedded registry's, under each name of its host
	store *store.Store                         // nil: none but local
}

// lookup returns the credentials for host, if any.
func (l *registryLogins) lookup(ctx context.Context, host string) (store.RegistryCredentials, bool) {
	if c, ok := l.local[host]; ok {
		return c, true
	}
	if l.store == nil {
		return store.RegistryCredentials{}, false
	}
	c, err := l.store.RegistryCredentialsFor(ctx, host)
	return c, err == nil
}

// Resolve makes registryLogins an authn.Keychain.
func (l *registryLogins) Resolve(res authn.Resource) (authn.Authenticator, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeLookupTimeout)
	defer cancel()
	if c, ok := l.lookup(ctx, res.RegistryStr()); ok {
		return &authn.Basic{Username: c.User, Password: c.Password}, nil
	}
	return authn.DefaultKeychain.Resolve(res)
}

// credentials is registryLogins as a builder.RegistryCredentials.
func (l *registryLogins) credentials(ctx context.Context, host string) (user, password string, ok bool) {
	c, ok := l.lookup(ctx, host)
	return c.User, c.Password, ok
}

// registryHosts returns the names under which clients reach a registry that listens on listen (as configured)
// and bound addr: both, and when it listens on loopback or on every address, its loopback names too
// (127.0.0.1, localhost, [::1]) and, on every address, this machine's host name.
func registryHosts(listen, addr string) []string {
	hosts := []string{addr}
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "0" && listen != addr {
		hosts = append(hosts, listen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hosts
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || ip.IsUnspecified()) {
		return hosts
	}
	for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
		hosts = append(hosts, net.JoinHostPort(h, port))
	}
	if name, err := os.Hostname(); err == nil && ip.IsUnspecified() {
		hosts = append(hosts, net.JoinHostPort(name, port))
	}
	return hosts
}
