package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kilnbuild/kiln/proto"
)

// PushOptions tunes Push.
type PushOptions struct {
	Keychain authn.Keychain // nil: authn.DefaultKeychain (the docker config)
	Retries  int            // attempts after the first; 0 means 4
	Backoff  time.Duration  // first wait, doubling; 0 means 1s
}

// Push pushes what the OCI layout in layoutDir holds under each of refs, and returns one proto.Image per ref
// with the digest the registry stored it under. An index.json that names a single image manifest pushes that
// image; one that names a single index pushes that index; one that names several (platforms, attestations)
// pushes index.json itself as an index. Registries on loopback or private addresses are spoken to over plain
// HTTP, as go-containerregistry does for them.
//
// Each ref's push is tried again on failure with exponential backoff, each retry written to log; an answer of
// the registry that cannot change on retry (a 4xx other than 408 and 429: unauthorized, denied, invalid) is not
// retried. A push that still fails is kind proto.Invalid, so that the run ends failed instead of going back to
// the queue forever, with a message naming the registry. A bad reference or layout is kind proto.Invalid too.
func Push(ctx context.Context, layoutDir string, refs []string, log io.Writer, opt PushOptions) ([]*proto.Image, error) {
	if log == nil {
		log = io.Discard
	}
	if len(refs) == 0 {
		return nil, proto.Errorf(proto.Invalid, "pushing: no image references to push to")
	}
	parsed := make([]name.Reference, len(refs))
	for i, r := range refs {
		ref, err := name.ParseReference(r)
		if err != nil {
			return nil, proto.Errorf(proto.Invalid, "pushing: %v", err)
		}
		parsed[i] = ref
	}
	a, err := readLayout(layoutDir)
	if err != nil {
		return nil, err
	}
	dgst, err := a.Digest()
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "pushing: reading the OCI layout in %s: %v", layoutDir, err)
	}

	kc := opt.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	images := make([]*proto.Image, 0, len(refs))
	for i, ref := range parsed {
		if err := pushWithRetries(ctx, ref, refs[i], a, kc, log, opt); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "pushed %s@%s\n", refs[i], dgst)
		images = append(images, &proto.Image{Reference: refs[i], Digest: dgst.String()})
	}
	return images, nil
}

// artifact is what an OCI layout holds to be pushed: a v1.Image or a v1.ImageIndex.
type artifact interface {
	Digest() (v1.Hash, error)
}

// readLayout returns the image or index to push from the OCI layout in dir.
func readLayout(dir string) (artifact, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "pushing: reading the OCI layout in %s: %v", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "pushing: reading the OCI layout in %s: %v", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "pushing: reading the OCI layout in %s: %v", dir, err)
	}
	if len(m.Manifests) == 0 {
		return nil, proto.Errorf(proto.Invalid, "pushing: the OCI layout in %s holds no image", dir)
	}
	if len(m.Manifests) > 1 {
		return idx, nil
	}
	desc := m.Manifests[0]
	var a artifact
	switch {
	case desc.MediaType.IsImage():
		a, err = idx.Image(desc.Digest)
	case desc.MediaType.IsIndex():
		a, err = idx.ImageIndex(desc.Digest)
	default:
		return nil, proto.Errorf(proto.Invalid, "pushing: the OCI layout in %s holds a %s, not an image", dir, desc.MediaType)
	}
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "pushing: reading the OCI layout in %s: %v", dir, err)
	}
	return a, nil
}

// pushWithRetries pushes a under ref, trying again with doubling waits while the failure may pass.
func pushWithRetries(ctx context.Context, ref name.Reference, refName string, a artifact, kc authn.Keychain, log io.Writer, opt PushOptions) error {
	retries := opt.Retries
	if retries <= 0 {
		retries = 4
	}
	wait := opt.Backoff
	if wait <= 0 {
		wait = time.Second
	}
	host := ref.Context().RegistryStr()
	for attempt := 1; ; attempt++ {
		err := pushOnce(ctx, ref, a, kc)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return proto.Errorf(proto.Unavailable, "pushing %s: stopped: %w", refName, context.Cause(ctx))
		}
		if refused(err) {
			return proto.Errorf(proto.Invalid, "pushing %s: registry %s refused it: %w", refName, host, err)
		}
		if attempt > retries {
			var te *transport.Error
			if errors.As(err, &te) {
				return proto.Errorf(proto.Invalid, "pushing %s: registry %s failed after %d attempts: %w", refName, host, attempt, err)
			}
			return proto.Errorf(proto.Invalid, "pushing %s: registry %s unreachable after %d attempts: %w", refName, host, attempt, err)
		}
		fmt.Fprintf(log, "pushing %s: %v; retrying in %s\n", refName, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return proto.Errorf(proto.Unavailable, "pushing %s: stopped: %w", refName, context.Cause(ctx))
		case <-t.C:
		}
		wait *= 2
	}
}

// pushOnce makes one attempt at pushing a under ref, leaving retries to its caller.
func pushOnce(ctx context.Context, ref name.Reference, a artifact, kc authn.Keychain) error {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	switch a := a.(type) {
	case v1.Image:
		return remote.Write(ref, a, opts...)
	case v1.ImageIndex:
		return remote.WriteIndex(ref, a, opts...)
	}
	return fmt.Errorf("cannot push a %T", a)
}

// refused reports whether err is an answer of the registry that the same request would get again: a 4xx status
// other than the temporary ones (408 timeout, 429 too many requests).
func refused(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode/100 == 4 && !te.Temporary()
}
