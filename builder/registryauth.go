package builder

import (
	"context"
	"io"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
)

// RegistryCredentials returns the user name and password for the registry at host (host:port as in an image
// reference), and whether it has any for it.
type RegistryCredentials func(ctx context.Context, host string) (user, password string, ok bool)

// WithRegistryCredentials gives builds (Build and Exec) the credentials creds has for the registries they pull
// from, before those of the docker config: a registry that asks for credentials before a pull, such as Kiln's
// own embedded registry beyond loopback, serves its images to builds without anyone writing its password to a
// docker config. The credentials stay in memory: buildkitd asks for them through the build's session.
func WithRegistryCredentials(creds RegistryCredentials) Option {
	return func(b *Builder) error {
		b.creds = creds
		return nil
	}
}

// authProvider is what a build's session answers buildkitd with when a registry asks for credentials: those of
// the Builder's RegistryCredentials for the host, else the docker config's (~/.docker/config.json or
// $DOCKER_CONFIG), read now.
func (b *Builder) authProvider() session.Attachable {
	fromConfig := authprovider.LoadAuthConfig(config.LoadDefaultConfigFile(io.Discard))
	provider := fromConfig
	if creds := b.creds; creds != nil {
		provider = func(ctx context.Context, host string, scopes []string, expired authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			if user, password, ok := creds(ctx, host); ok {
				return types.AuthConfig{Username: user, Password: password, ServerAddress: host}, nil
			}
			return fromConfig(ctx, host, scopes, expired)
		}
	}
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{AuthConfigProvider: provider})
}
