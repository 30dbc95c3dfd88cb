package gitremote

import (
	"context"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// tokenUser is the user name sent with a git token, as the workers send it: GitHub and Gitea take any name
// with a token as the password; GitLab takes any name with a personal access token.
const tokenUser = "x-access-token"

// Auth returns the authentication that sends token as the password of HTTP basic authentication, or nil for
// no token.
func Auth(token string) transport.AuthMethod {
	if token == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: tokenUser, Password: token}
}

// List returns the refs the repository at url advertises, as `git ls-remote` does: HEAD, its branches and its
// tags, with the commit of each annotated tag x as one more ref named "x^{}". A non-empty token is sent as the
// password of HTTP basic authentication. A failure is an Error.
func List(ctx context.Context, url, token string) ([]*plumbing.Reference, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: Auth(token), PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, Error(ctx, "listing the refs of "+url, token, err)
	}
	return refs, nil
}
