package builder

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/image-spec/specs-go"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

var ocispecsVersioned = specs.Versioned{SchemaVersion: 2}

// blobStore is a content store that every build of one Builder exports into. BuildKit's exporter skips the blobs
// a store already has, so a base layer crosses from buildkitd to the worker once, not at every build: a warm
// build's export then costs next to nothing. Each build's layout links the blobs it needs out of the store, so
// the store can be emptied whenever it grows past its limit without touching a push in progress.
type blobStore struct {
	dir   string
	limit int64

	mu    sync.RWMutex // exports hold it for reading; emptying the store holds it for writing
	store content.Store
}

// Option configures a Builder.
type Option func(*Builder) error

// WithBlobStore makes builds export into a content store at dir, kept across builds and emptied when it holds
// more than limit bytes. dir must be on the same filesystem as the builds' OutputDirs, which get hard links.
func WithBlobStore(dir string, limit int64) Option {
	return func(b *Builder) error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("making the blob store %s: %w", dir, err)
		}
		store, err := contentlocal.NewStore(dir)
		if err != nil {
			return fmt.Errorf("opening the blob store %s: %w", dir, err)
		}
		b.blobs = &blobStore{dir: dir, limit: limit, store: store}
		return nil
	}
}

// layout writes an OCI image layout in dir holding the image desc names: its index.json, and hard links (or
// copies, across filesystems) of every blob the image needs.
func (s *blobStore) layout(dir string, desc ocispecs.Descriptor) error {
	if err := s.link(dir, desc); err != nil {
		return fmt.Errorf("laying out %s: %w", desc.Digest, err)
	}
	index, err := json.Marshal(ocispecs.Index{
		Versioned: ocispecsVersioned,
		MediaType: ocispecs.MediaTypeImageIndex,
		Manifests: []ocispecs.Descriptor{desc},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispecs.ImageIndexFile), index, 0o644); err != nil {
		return fmt.Errorf("writing the layout's index: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ocispecs.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// link puts desc's blob in dir's layout and, for a manifest or an index, the blobs it refers to.
func (s *blobStore) link(dir string, desc ocispecs.Descriptor) error {
	rel := filepath.Join("blobs", desc.Digest.Algorithm().String(), desc.Digest.Encoded())
	src, dst := filepath.Join(s.dir, rel), filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err != nil && !os.IsExist(err) {
		if err := copyFile(src, dst); err != nil {
			return err
		}
	}
	var children []ocispecs.Descriptor
	switch desc.MediaType {
	case ocispecs.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json":
		var m ocispecs.Manifest
		if err := readJSON(dst, &m); err != nil {
			return err
		}
		children = append([]ocispecs.Descriptor{m.Config}, m.Layers...)
	case ocispecs.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		var idx ocispecs.Index
		if err := readJSON(dst, &idx); err != nil {
			return err
		}
		children = idx.Manifests
	}
	for _, c := range children {
		if err := s.link(dir, c); err != nil {
			return err
		}
	}
	return nil
}

// trim empties the store if it holds more than its limit and no export is writing to it.
func (s *blobStore) trim() error {
	var size int64
	_ = filepath.WalkDir(filepath.Join(s.dir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	if size <= s.limit || !s.mu.TryLock() {
		return nil
	}
	defer s.mu.Unlock()
	for _, sub := range []string{"blobs", "ingest"} {
		if err := os.RemoveAll(filepath.Join(s.dir, sub)); err != nil {
			return fmt.Errorf("emptying the blob store: %w", err)
		}
	}
	store, err := contentlocal.NewStore(s.dir)
	if err != nil {
		return fmt.Errorf("reopening the blob store: %w", err)
	}
	s.store = store
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
