package basedeps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/kilnbuild/kiln/proto"
)

// maxDockerfile bounds the size of a Dockerfile read from a repository.
const maxDockerfile = 1 << 20

// tokenUser is the user name sent with a git token, as the API and the workers send it: GitHub, Gitea and
// GitLab take any name with a token as the password.
const tokenUser = "x-access-token"

// headRef is where the fetched head is kept in the memory repository.
const headRef = plumbing.ReferenceName("refs/kiln/head")

// readAtHead fetches the head of ref in the repository at repoURL, depth 1 and into memory, and returns the
// content of file in its tree and the commit. ref is a branch or tag name (branches first, as git does), a full
// ref, or "" for the remote's HEAD. A non-empty token is the password of HTTP basic authentication.
//
// A server that cannot be reached or fails is proto.Unavailable; a repository that refuses the credentials or
// does not exist, or a ref it does not have, proto.Invalid; a file that is not in the commit, proto.NotFound.
// The commit is returned whenever it was fetched, errors included. The token never appears in an error.
func readAtHead(ctx context.Context, repoURL, ref, token, file string) (data []byte, commit string, err error) {
	st := memory.NewStorage()
	remote := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{repoURL}})
	var auth transport.AuthMethod
	if token != "" {
		auth = &githttp.BasicAuth{Username: tokenUser, Password: token}
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, "", remoteError(ctx, "listing the refs of "+repoURL, token, err)
	}
	name, err := pickRef(refs, repoURL, ref)
	if err != nil {
		return nil, "", err
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + name.String() + ":" + headRef.String())},
		Depth:    1, Tags: git.NoTags, Auth: auth,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, "", remoteError(ctx, fmt.Sprintf("fetching %s of %s", name, repoURL), token, err)
	}
	c, err := headCommit(st)
	if err != nil {
		return nil, "", fmt.Errorf("reading the commit of %s fetched from %s: %w", name, repoURL, err)
	}
	data, err = readFile(c, file)
	return data, c.Hash.String(), err
}

// pickRef returns the full name of the ref that ref names among those the repository at repoURL advertised:
// the branch HEAD points to (or HEAD itself when the server did not say) for "", a branch before a tag for a
// short name.
func pickRef(refs []*plumbing.Reference, repoURL, ref string) (plumbing.ReferenceName, error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if ref == "" {
		head := byName[plumbing.HEAD]
		switch {
		case head == nil:
			return "", proto.Errorf(proto.Invalid, "the repository %s has no HEAD to read: name a branch", repoURL)
		case head.Type() == plumbing.HashReference:
			return plumbing.HEAD, nil
		case byName[head.Target()] == nil:
			return "", proto.Errorf(proto.Invalid, "the repository %s has no branch %s, where its HEAD points", repoURL, head.Target().Short())
		}
		return head.Target(), nil
	}
	candidates := []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	if !strings.HasPrefix(ref, "refs/") {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, name := range candidates {
		if r := byName[name]; r != nil && r.Type() == plumbing.HashReference {
			return name, nil
		}
	}
	return "", proto.Errorf(proto.Invalid, "the repository %s has no branch or tag %q", repoURL, ref)
}

// headCommit returns the commit headRef points to in st, through annotated tags.
func headCommit(st *memory.Storage) (*object.Commit, error) {
	r, err := st.Reference(headRef)
	if err != nil {
		return nil, err
	}
	h := r.Hash()
	for range 10 { // a tag of a tag of ...: git allows it, nobody needs more
		o, err := object.GetObject(st, h)
		if err != nil {
			return nil, err
		}
		switch o := o.(type) {
		case *object.Commit:
			return o, nil
		case *object.Tag:
			h = o.Target
		default:
			return nil, fmt.Errorf("%s is a %s, not a commit", h, o.Type())
		}
	}
	return nil, fmt.Errorf("%s: too many tags of tags", r.Hash())
}

// readFile returns the content of the regular file at path in the tree of commit c.
func readFile(c *object.Commit, path string) ([]byte, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of commit %s: %w", c.Hash, err)
	}
	e, err := tree.FindEntry(path)
	if err != nil {
		return nil, proto.Errorf(proto.NotFound, "there is no %s at commit %s", path, c.Hash)
	}
	if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
		return nil, proto.Errorf(proto.NotFound, "%s at commit %s is not a regular file", path, c.Hash)
	}
	f, err := tree.TreeEntryFile(e)
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s: %w", path, c.Hash, err)
	}
	if f.Size > maxDockerfile {
		return nil, proto.Errorf(proto.Invalid, "%s at commit %s is %d bytes, more than the %d a Dockerfile may have",
			path, c.Hash, f.Size, maxDockerfile)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s: %w", path, c.Hash, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, maxDockerfile))
	if err != nil {
		return nil, fmt.Errorf("reading %s at commit %s: %w", path, c.Hash, err)
	}
	return data, nil
}

// maxReason bounds how much of a git server's own explanation an error repeats.
const maxReason = 200

// remoteError gives a failure of talking to a git server (what says what was being done) its kind: Unavailable
// when the server could not be reached, failed or took too long, as trying later may work; Invalid otherwise
// (credentials refused, no such repository, not a git server). The token is taken out of its message, and the
// cause is dropped when its own message holds the token.
func remoteError(ctx context.Context, what, token string, err error) error {
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
	e := &proto.Error{Code: code, Message: redact(what+": "+oneLine(err.Error())+hint, token), Err: err}
	if token != "" && strings.Contains(err.Error(), token) {
		e.Err = nil
	}
	return e
}

// httpStatusOf returns the HTTP status of a git server's error answer, or 0 when err is not one. go-git wraps
// it in a plumbing.UnexpectedError, which errors.As cannot see through.
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

// oneLine shortens a message that may carry a server's whole answer to its first line, at most maxReason bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimRight(strings.TrimSpace(s), ":")
	if len(s) > maxReason {
		s = s[:maxReason] + "..."
	}
	return s
}

// redact replaces token with "[token]" in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[token]")
}
