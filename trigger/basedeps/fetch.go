package basedeps

import (
	"context"
	"errors"
	"fmt"
	"io"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/gitremote"
)

// maxDockerfile bounds the size of a Dockerfile read from a repository.
const maxDockerfile = 1 << 20

// headRef is where the fetched head is kept in the memory repository.
const headRef = plumbing.ReferenceName("refs/kiln/head")

// fetchHead fetches the head of ref in the repository at repoURL, depth 1 and into memory, and returns its
// commit, whose files readFile reads. ref is a branch or tag name (branches first, as git does), a full
// ref, or "" for the remote's HEAD. A non-empty token is the password of HTTP basic authentication.
//
// A server that cannot be reached or fails is proto.Unavailable; a repository that refuses the credentials or
// does not exist, or a ref it does not have, proto.Invalid. The token never appears in an error.
func fetchHead(ctx context.Context, repoURL, ref, token string) (*object.Commit, error) {
	refs, err := gitremote.List(ctx, repoURL, token)
	if err != nil {
		return nil, err
	}
	head, err := gitremote.Pick(refs, repoURL, ref)
	if err != nil {
		return nil, err
	}
	name := head.Name()
	st := memory.NewStorage()
	remote := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{repoURL}})
	err = remote.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec("+" + name.String() + ":" + headRef.String())},
		Depth:    1, Tags: git.NoTags, Auth: gitremote.Auth(token),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, gitremote.Error(ctx, fmt.Sprintf("fetching %s of %s", name, repoURL), token, err)
	}
	c, err := headCommit(st)
	if err != nil {
		return nil, fmt.Errorf("reading the commit of %s fetched from %s: %w", name, repoURL, err)
	}
	return c, nil
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
