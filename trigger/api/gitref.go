package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/kilnbuild/kiln/proto"
)

// ParseGitContext parses a git build context as docker and az acr write it: an http or https URL of a
// repository ("https://host/owner/repo.git"), then optionally "#ref" naming a branch, tag or full ref, then
// optionally ":subdir" naming the context's directory inside the repository. "#:subdir" keeps the remote's
// default branch. A URL with credentials is refused (a token belongs in a task's gitToken), and so is a query.
// Any error is proto.Invalid and names what is wrong.
func ParseGitContext(s string) (*proto.GitContext, error) {
	raw, frag, _ := strings.Cut(strings.TrimSpace(s), "#")
	u, err := checkContextURL(raw, "git context")
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, proto.Errorf(proto.Invalid, "git context %s: a repository URL has no query string", u.Redacted())
	}
	if strings.Trim(u.Path, "/") == "" {
		return nil, proto.Errorf(proto.Invalid, "git context %s names no repository: it needs a path such as /owner/repo.git", u.Redacted())
	}
	ref, subdir, _ := strings.Cut(frag, ":")
	if ref != "" {
		if err := checkRef(ref); err != nil {
			return nil, err
		}
	}
	if subdir != "" {
		clean := path.Clean(subdir)
		if path.IsAbs(clean) || escapes(clean) {
			return nil, proto.Errorf(proto.Invalid,
				"git context %s: subdirectory %q must be a relative path inside the repository", u.Redacted(), subdir)
		}
		if subdir = clean; subdir == "." {
			subdir = ""
		}
	}
	return &proto.GitContext{Url: u.String(), Ref: ref, Subdir: subdir}, nil
}

// checkContextURL parses raw, the URL of a build context (what says which in errors), and returns it when it
// is an absolute http or https URL with a host and no credentials.
func checkContextURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		// The parser's message would repeat the URL, credentials and all.
		return nil, proto.Errorf(proto.Invalid, "%s is not a valid http or https URL", what)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, proto.Errorf(proto.Invalid, "%s %s: only http and https URLs are supported", what, u.Redacted())
	}
	if u.User != nil {
		return nil, proto.Errorf(proto.Invalid,
			"%s %s: credentials in the URL are refused, as runs and tasks show their URL; a task's token goes in gitToken",
			what, u.Redacted())
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, proto.Errorf(proto.Invalid, "%s %s names no host", what, u.Redacted())
	}
	return u, nil
}

// checkRef returns a proto.Invalid error when ref cannot name a git ref: a branch or tag name ("main",
// "release/1.2") or a full ref ("refs/heads/main"), by git-check-ref-format's rules.
func checkRef(ref string) error {
	full := ref
	if !strings.HasPrefix(ref, "refs/") {
		full = "refs/heads/" + ref
	}
	if strings.HasPrefix(ref, "-") || plumbing.ReferenceName(full).Validate() != nil {
		return proto.Errorf(proto.Invalid, "git context: %q is not a valid branch, tag or ref name", ref)
	}
	return nil
}

// isGitContextURL reports whether the context URL s names a git repository rather than an archive: it
// has a "#ref:subdir" part or its path ends in .git.
func isGitContextURL(s string) bool {
	raw, _, hasFrag := strings.Cut(s, "#")
	if hasFrag {
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), ".git")
}

// formatGitContext writes g back as ParseGitContext reads it: url[#ref][:subdir].
func formatGitContext(g *proto.GitContext) string {
	s := g.GetUrl()
	if g.GetRef() != "" || g.GetSubdir() != "" {
		s += "#" + g.GetRef()
	}
	if g.GetSubdir() != "" {
		s += ":" + g.GetSubdir()
	}
	return s
}

// tokenUser is the user name sent with a git token. GitHub and Gitea take any name with a token as the
// password; GitLab takes any name with a personal access token.
const tokenUser = "x-access-token"

// ResolveRef asks the repository at repoURL which commit ref points to, as `git ls-remote` does, and returns the
// commit and the full name of the ref. ref is a branch or tag name ("main", "v1.2": branches first, as git
// does), a full ref ("refs/heads/main"), or "" for the remote's HEAD (its default branch). A tag is peeled
// to its commit. A non-empty token is sent as the password of HTTP basic authentication.
//
// A repository that refuses the credentials or does not exist, a ref it does not have, or an answer that is
// not git's is proto.Invalid; a server that cannot be reached or fails is proto.Unavailable. The token never
// appears in an error.
func ResolveRef(ctx context.Context, repoURL, ref, token string) (commit, fullRef string, err error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{repoURL}})
	opts := &git.ListOptions{PeelingOption: git.AppendPeeled}
	if token != "" {
		opts.Auth = &githttp.BasicAuth{Username: tokenUser, Password: token}
	}
	refs, err := remote.ListContext(ctx, opts)
	if err != nil {
		return "", "", lsRemoteError(ctx, repoURL, token, err)
	}
	return pickRef(refs, repoURL, ref)
}

// pickRef finds ref among the refs the repository at repoURL advertised, as ResolveRef describes.
func pickRef(refs []*plumbing.Reference, repoURL, ref string) (commit, fullRef string, err error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if ref == "" {
		head := byName[plumbing.HEAD]
		if head == nil {
			return "", "", proto.Errorf(proto.Invalid, "the repository %s has no HEAD to build: name a branch", repoURL)
		}
		if head.Type() == plumbing.HashReference { // the server did not say which branch HEAD is
			return head.Hash().String(), string(plumbing.HEAD), nil
		}
		target := byName[head.Target()]
		if target == nil {
			return "", "", proto.Errorf(proto.Invalid, "the repository %s has no branch %s, where its HEAD points", repoURL, head.Target().Short())
		}
		return target.Hash().String(), string(target.Name()), nil
	}
	candidates := []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	if !strings.HasPrefix(ref, "refs/") {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, name := range candidates {
		r := byName[name]
		if r == nil || r.Type() != plumbing.HashReference {
			continue
		}
		if peeled := byName[name+"^{}"]; peeled != nil { // an annotated tag: build the commit it tags
			return peeled.Hash().String(), string(name), nil
		}
		return r.Hash().String(), string(name), nil
	}
	return "", "", proto.Errorf(proto.Invalid, "the repository %s has no branch or tag %q", repoURL, ref)
}

// maxReason bounds how much of a git server's own explanation an error repeats.
const maxReason = 200

// lsRemoteError turns the failure of listing the refs of repoURL into an error with a kind, its message
// cleared of token.
func lsRemoteError(ctx context.Context, repoURL, token string, err error) error {
	code := proto.Invalid
	hint := ""
	var netErr net.Error
	switch status := httpStatusOf(err); {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		hint = " (a private repository needs a git token that may read it)"
	case errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, transport.ErrEmptyRemoteRepository):
	case ctx.Err() != nil, status >= 500, status == 429, status == 408,
		errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		code = proto.Unavailable
	case status == 0:
		hint = " (is it a git repository?)"
	}
	msg := fmt.Sprintf("listing the refs of %s: %s%s", repoURL, oneLine(err.Error()), hint)
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	return &proto.Error{Code: code, Message: msg, Err: err}
}

// httpStatusOf returns the HTTP status of a git server's error answer, or 0 when err is not one. go-git
// wraps it in a plumbing.UnexpectedError, which errors.As cannot see through.
func httpStatusOf(err error) int {
	var ue *plumbing.UnexpectedError
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var he *githttp.Err
	if errors.As(err, &he) {
		return he.StatusCode()
	}
	return 0
}

// oneLine shortens a message that may carry a server's whole answer to its first line, at most maxReason
// bytes of it.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimRight(strings.TrimSpace(s), ":")
	if len(s) > maxReason {
		s = s[:maxReason] + "..."
	}
	return s
}
