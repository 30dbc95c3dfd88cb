package gitremote

import (
	"context"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/kilnbuild/kiln/proto"
)

// Resolve asks the repository at url which commit ref points to, as `git ls-remote` does, and returns the
// commit and the full name of the ref. ref is what Pick takes; a tag is peeled to its commit. A non-empty token
// is sent as the password of HTTP basic authentication.
//
// A repository that refuses the credentials or does not exist, a ref it does not have, or an answer that is
// not git's is proto.Invalid; a server that cannot be reached or fails is proto.Unavailable. The token never
// appears in an error.
func Resolve(ctx context.Context, url, ref, token string) (commit, fullRef string, err error) {
	refs, err := List(ctx, url, token)
	if err != nil {
		return "", "", err
	}
	r, err := Pick(refs, url, ref)
	if err != nil {
		return "", "", err
	}
	return r.Hash().String(), r.Name().String(), nil
}

// Pick finds the ref that ref names among refs, those the repository at url advertised (List), and returns it
// as a hash reference under its full name. ref is a branch or tag name ("main", "v1.2": branches first, as git
// does), a full ref ("refs/heads/main"), or "" for the remote's HEAD: the branch it points to, or HEAD itself
// when the server did not say which. The hash is the commit an annotated tag tags when refs hold it peeled
// ("refs/tags/v1.2^{}"), and otherwise the one advertised. A ref that is not there is proto.Invalid.
func Pick(refs []*plumbing.Reference, url, ref string) (*plumbing.Reference, error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if ref == "" {
		head := byName[plumbing.HEAD]
		switch {
		case head == nil:
			return nil, proto.Errorf(proto.Invalid, "the repository %s has no HEAD: name a branch", url)
		case head.Type() == plumbing.HashReference: // the server did not say which branch HEAD is
			return head, nil
		case byName[head.Target()] == nil:
			return nil, proto.Errorf(proto.Invalid, "the repository %s has no branch %s, where its HEAD points", url, head.Target().Short())
		}
		return byName[head.Target()], nil
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
		if peeled := byName[name+"^{}"]; peeled != nil { // an annotated tag: the commit it tags
			return plumbing.NewHashReference(name, peeled.Hash()), nil
		}
		return r, nil
	}
	return nil, proto.Errorf(proto.Invalid, "the repository %s has no branch or tag %q", url, ref)
}
