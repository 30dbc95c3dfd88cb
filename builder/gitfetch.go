package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/kilnbuild/kiln/proto"
)

// deepenSteps are the depths the fallback fetches a ref at, one after the other, looking for a commit that the
// server would not send by its hash. Past the last one the commit is given up on.
var deepenSteps = []int{1, 50, 1000}

// largeObject is the size above which a blob is streamed from the pack instead of read into memory.
const largeObject = 32 << 20

// repoCache is one repository's cache opened for one Fetch: a bare repository on disk, and the remote it mirrors.
type repoCache struct {
	store *filesystem.Storage
	url   string
	auth  transport.AuthMethod
	// created is set when this Fetch made the cache: the repository was never fetched here before.
	created bool
	// objects and bytes count what the fetches brought, from the packs' headers and sizes.
	objects, bytes int64
}

// openRepoCache opens the bare repository at path, creating it if needed, to mirror url.
func openRepoCache(path, url, token string) (*repoCache, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("opening the git cache: %w", err)
	}
	fs := osfs.New(path, osfs.WithBoundOS())
	store := filesystem.NewStorageWithOptions(fs, cache.NewObjectLRUDefault(),
		filesystem.Options{KeepDescriptors: true, LargeObjectThreshold: largeObject})
	r := &repoCache{store: store, url: url}
	if _, err := os.Stat(filepath.Join(path, "HEAD")); errors.Is(err, os.ErrNotExist) {
		if err := initRepoCache(store, url); err != nil {
			store.Close()
			return nil, fmt.Errorf("creating the git cache %s: %w", path, err)
		}
		r.created = true
	}
	if token != "" {
		r.auth = &githttp.BasicAuth{Username: "x-access-token", Password: token}
	}
	return r, nil
}

// initRepoCache makes store an empty bare repository whose origin is url, so that the git CLI can read it too.
func initRepoCache(store *filesystem.Storage, url string) error {
	repo, err := git.Init(store, nil)
	if errors.Is(err, git.ErrRepositoryAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
	if errors.Is(err, git.ErrRemoteExists) {
		return nil
	}
	return err
}

// Close closes the pack files the cache kept open.
func (r *repoCache) Close() error { return r.store.Close() }

// fetch makes sure the cache holds commit (or, when commit is zero, what ref points to on the remote) with its
// whole tree, and returns the commit. It always asks the remote for its refs, so that a token that no longer
// gives access to the repository fails even when everything is cached.
func (r *repoCache) fetch(ctx context.Context, ref string, commit plumbing.Hash, log io.Writer) (plumbing.Hash, error) {
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "%v", err)
	}
	sess, err := githttp.DefaultClient.NewUploadPackSession(ep, r.auth)
	if err != nil {
		return plumbing.ZeroHash, &remoteError{err}
	}
	defer sess.Close()
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return plumbing.ZeroHash, &remoteError{err}
	}
	p := &packFetch{repo: r, sess: sess, adv: adv}
	if !commit.IsZero() {
		return r.fetchCommit(ctx, p, ref, commit, log)
	}
	head, err := remoteRef(adv, ref)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := p.fetch(ctx, head, 1); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.settle(localRef(ref), head, refOrHEAD(ref))
}

// fetchCommit makes sure the cache holds commit. It fetches it by its hash, depth 1, which the server must allow
// (GitHub does; git http-backend needs uploadpack.allowAnySHA1InWant or allowReachableSHA1InWant). When it does
// not, or the fetch fails, it fetches ref instead, deepened step by step until the commit turns up, so that a
// branch that moved on since the push still builds the commit pushed and never a later one.
func (r *repoCache) fetchCommit(ctx context.Context, p *packFetch, ref string, commit plumbing.Hash, log io.Writer) (plumbing.Hash, error) {
	local := localRef(ref)
	switch {
	case r.has(commit):
	case p.byHash():
		err := p.fetch(ctx, commit, 1)
		if err == nil && !r.has(commit) {
			err = fmt.Errorf("the server did not send commit %s", commit)
		}
		if err == nil {
			break
		}
		if final(ctx, err) {
			return plumbing.ZeroHash, err
		}
		fmt.Fprintf(log, "Fetching commit %s by its hash did not work (%s); looking for it in the history of %s\n",
			short(commit), oneLine(err.Error()), refOrHEAD(ref))
		return r.deepen(ctx, p, ref, commit)
	default:
		fmt.Fprintf(log, "The server does not let a commit be fetched by its hash; looking for %s in the history of %s\n",
			short(commit), refOrHEAD(ref))
		return r.deepen(ctx, p, ref, commit)
	}
	return r.settle(local, commit, commit.String())
}

// deepen fetches ref deeper and deeper until the cache holds commit.
func (r *repoCache) deepen(ctx context.Context, p *packFetch, ref string, commit plumbing.Hash) (plumbing.Hash, error) {
	head, err := remoteRef(p.adv, ref)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, depth := range deepenSteps {
		if err := p.fetch(ctx, head, depth); err != nil {
			return plumbing.ZeroHash, err
		}
		if r.has(commit) {
			return r.settle(localRef(ref), commit, commit.String())
		}
		if r.complete(head) {
			return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "commit %s is not in the history of %s", commit, refOrHEAD(ref))
		}
	}
	return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "commit %s is not among the last %d commits of %s",
		commit, deepenSteps[len(deepenSteps)-1], refOrHEAD(ref))
}

// settle points the cache's reference local at h, which the cache now holds, so that the next fetch names it
// as a commit it has, and returns the commit h is or points to; name says where h came from.
func (r *repoCache) settle(local plumbing.ReferenceName, h plumbing.Hash, name string) (plumbing.Hash, error) {
	if err := r.store.SetReference(plumbing.NewHashReference(local, h)); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing %s in the git cache: %w", local, err)
	}
	return r.peel(h, name)
}

// remoteRef returns what ref ("" for HEAD) points to among the remote's refs, trying the names git tries for
// it: ref itself, then refs/ref, refs/tags/ref, refs/heads/ref...
func remoteRef(adv *packp.AdvRefs, ref string) (plumbing.Hash, error) {
	refs, err := adv.AllReferences()
	if err != nil {
		return plumbing.ZeroHash, &remoteError{err}
	}
	for _, rule := range plumbing.RefRevParseRules {
		got, err := storer.ResolveReference(refs, plumbing.ReferenceName(fmt.Sprintf(rule, refOrHEAD(ref))))
		if err == nil {
			return got.Hash(), nil
		}
	}
	return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "couldn't find remote ref %q", refOrHEAD(ref))
}

// has reports whether the cache holds the object h.
func (r *repoCache) has(h plumbing.Hash) bool {
	return r.store.HasEncodedObject(h) == nil
}

// peel returns the commit that h is or, through annotated tags, points to; name says where h came from.
func (r *repoCache) peel(h plumbing.Hash, name string) (plumbing.Hash, error) {
	for range 10 {
		obj, err := object.GetObject(r.store, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading %s from the git cache: %w", h, err)
		}
		switch o := obj.(type) {
		case *object.Commit:
			return o.Hash, nil
		case *object.Tag:
			h = o.Target
		default:
			return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "%s is a %s, not a commit", name, obj.Type())
		}
	}
	return plumbing.ZeroHash, proto.Errorf(proto.Invalid, "%s is a chain of tags too long to follow", name)
}

// complete reports whether the cache holds the whole history of head, down to its root commits, so that a
// commit not found in it is not on that branch at all.
func (r *repoCache) complete(head plumbing.Hash) bool {
	h, err := r.peel(head, head.String())
	if err != nil {
		return false
	}
	seen := map[plumbing.Hash]bool{h: true}
	queue := []plumbing.Hash{h}
	for len(queue) > 0 {
		c, err := object.GetCommit(r.store, queue[0])
		if err != nil {
			return false // a parent cut off by a shallow fetch
		}
		queue = queue[1:]
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return true
}

// localRef is the reference of the cache that keeps what ref was last fetched as: named by a hash of ref, so
// that refs like "main" and "main/x" never clash in the cache's reference files. Each is a commit the next fetch
// tells the server it has, which is what makes it send only new objects.
func localRef(ref string) plumbing.ReferenceName {
	sum := sha256.Sum256([]byte(refOrHEAD(ref)))
	return plumbing.ReferenceName(localRefs + hex.EncodeToString(sum[:8]))
}

// localRefs is where the cache keeps its references.
const localRefs = "refs/kiln/"

// refOrHEAD is ref, or HEAD for "".
func refOrHEAD(ref string) string {
	if ref == "" {
		return "HEAD"
	}
	return ref
}

// short is the abbreviated form of a commit hash.
func short(h plumbing.Hash) string { return h.String()[:7] }
