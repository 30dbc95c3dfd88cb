package builder

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// maxHaves bounds the commits a fetch tells the server it has.
const maxHaves = 256

// packFetch asks a remote for packs of objects, one upload-pack request at a time, and stores them in a
// repository cache.
//
// It does what go-git's Remote.Fetch does, but for one thing: go-git never asks for a thin pack (thin-pack is in
// its transport.UnsupportedCapabilities), and without one a server sends a shallow fetch's whole tree even when
// the client has all but a file of it, since git upload-pack only leaves out what the client has by marking the
// trees of its commits as edges, which it does for thin packs alone. A packFetch asks for a thin pack whenever it
// has commits to name, and stores it through go-git's packfile.Parser on the cache's storage, which resolves the
// deltas against objects the cache holds.
type packFetch struct {
	repo *repoCache
	sess transport.UploadPackSession
	adv  *packp.AdvRefs
}

// byHash reports whether the server lets a client ask for any commit by its hash.
func (p *packFetch) byHash() bool {
	return p.adv.Capabilities.Supports(capability.AllowReachableSHA1InWant) ||
		p.adv.Capabilities.Supports(capability.AllowTipSHA1InWant)
}

// fetch gets want (a commit or a tag) and its tree, with depth commits of history, unless depth is 1 and the
// cache holds want already.
func (p *packFetch) fetch(ctx context.Context, want plumbing.Hash, depth int) error {
	if depth == 1 && p.repo.has(want) {
		return nil
	}
	store := p.repo.store
	req := packp.NewUploadPackRequestFromCapabilities(p.adv.Capabilities)
	req.Wants = []plumbing.Hash{want}
	req.Depth = packp.DepthCommits(depth)
	if err := req.Capabilities.Set(capability.Shallow); err != nil {
		return err
	}
	if p.adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	var err error
	if req.Shallows, err = store.Shallow(); err != nil {
		return fmt.Errorf("reading the git cache's shallow commits: %w", err)
	}
	if req.Haves, err = p.haves(); err != nil {
		return err
	}
	thin := len(req.Haves) > 0
	if thin {
		if err := req.Capabilities.Set(capability.ThinPack); err != nil {
			return err
		}
	}

	resp, err := p.sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil // nothing to send
	}
	if err != nil {
		return &remoteError{err}
	}
	defer resp.Close()
	// New shallow commits are written before their objects and unshallowed ones after, so that a fetch cut
	// short never leaves the cache claiming history it does not hold: the server leaves out what it believes
	// the client has.
	if err := p.shallow(resp.Shallows, nil); err != nil {
		return err
	}
	pack := &packCounter{r: io.Reader(resp)}
	if req.Capabilities.Supports(capability.Sideband64k) {
		pack.r = sideband.NewDemuxer(sideband.Sideband64k, resp)
	} else if req.Capabilities.Supports(capability.Sideband) {
		pack.r = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if thin {
		var parser *packfile.Parser
		if parser, err = packfile.NewParserWithStorage(packfile.NewScanner(pack), store); err == nil {
			_, err = parser.Parse()
		}
	} else {
		err = packfile.WritePackfileToObjectStorage(store, pack)
	}
	p.repo.objects += pack.objects
	p.repo.bytes += pack.n
	if errors.Is(err, packfile.ErrEmptyPackfile) {
		err = nil
	}
	if err != nil {
		return &remoteError{fmt.Errorf("receiving the pack: %w", err)}
	}
	return p.shallow(nil, resp.Unshallows)
}

// haves are the commits the cache's references point at, which the cache holds with their whole trees (a
// reference is written only once its fetch has stored everything).
func (p *packFetch) haves() ([]plumbing.Hash, error) {
	refs, err := p.repo.store.IterReferences()
	if err != nil {
		return nil, fmt.Errorf("reading the git cache's references: %w", err)
	}
	defer refs.Close()
	var haves []plumbing.Hash
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference && strings.HasPrefix(ref.Name().String(), localRefs) &&
			!slices.Contains(haves, ref.Hash()) && p.repo.has(ref.Hash()) && len(haves) < maxHaves {
			haves = append(haves, ref.Hash())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the git cache's references: %w", err)
	}
	return haves, nil
}

// shallow adds and removes commits from the cache's list of shallow commits, whose parents it does not hold.
func (p *packFetch) shallow(add, remove []plumbing.Hash) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	store := p.repo.store
	list, err := store.Shallow()
	if err != nil {
		return fmt.Errorf("reading the git cache's shallow commits: %w", err)
	}
	for _, h := range add {
		if !slices.Contains(list, h) {
			list = append(list, h)
		}
	}
	list = slices.DeleteFunc(list, func(h plumbing.Hash) bool { return slices.Contains(remove, h) })
	if err := store.SetShallow(list); err != nil {
		return fmt.Errorf("writing the git cache's shallow commits: %w", err)
	}
	return nil
}

// packCounter reads a pack, counting its bytes and reading its object count from its 12-byte header ("PACK",
// version, count).
type packCounter struct {
	r       io.Reader
	header  []byte
	n       int64
	objects int64
}

func (c *packCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if need := 12 - len(c.header); need > 0 && n > 0 {
		c.header = append(c.header, p[:min(need, n)]...)
		if len(c.header) == 12 {
			c.objects = int64(binary.BigEndian.Uint32(c.header[8:]))
		}
	}
	c.n += int64(n)
	return n, err
}
