package builder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/proto"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// layoutImage returns the descriptor, in the index.json of the OCI layout in dir, of the image ref names: a
// digest, a name the descriptor's annotations give it (org.opencontainers.image.ref.name, or containerd's
// io.containerd.image.name) or the tag of such a name; "" for the layout's only image.
func layoutImage(dir, ref string) (ocispecs.Descriptor, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ocispecs.ImageIndexFile))
	if err != nil {
		return ocispecs.Descriptor{}, proto.Errorf(proto.Invalid, "reading the OCI layout %s: %v", dir, err)
	}
	var index ocispecs.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		return ocispecs.Descriptor{}, proto.Errorf(proto.Invalid, "reading the OCI layout %s: %v", dir, err)
	}
	if ref == "" {
		if len(index.Manifests) != 1 {
			return ocispecs.Descriptor{}, proto.Errorf(proto.Invalid, "the OCI layout %s holds %d images: say which to run",
				dir, len(index.Manifests))
		}
		return index.Manifests[0], nil
	}
	if d, err := digest.Parse(ref); err == nil {
		for _, m := range index.Manifests {
			if m.Digest == d {
				return m, nil
			}
		}
		return ocispecs.Descriptor{}, proto.Errorf(proto.Invalid, "the OCI layout %s has no image %s", dir, ref)
	}
	for _, m := range index.Manifests {
		for _, key := range []string{ocispecs.AnnotationRefName, "io.containerd.image.name"} {
			if name := m.Annotations[key]; name != "" && (name == ref || tagOf(name) == ref) {
				return m, nil
			}
		}
	}
	return ocispecs.Descriptor{}, proto.Errorf(proto.Invalid, "the OCI layout %s has no image named %s", dir, ref)
}

// tagOf is the tag of an image name ("latest" for "example.com:5000/app:latest"), or "" when it has none.
func tagOf(name string) string {
	name, _, _ = strings.Cut(name, "@")
	i := strings.LastIndexAny(name, ":/")
	if i < 0 || name[i] != ':' {
		return ""
	}
	return name[i+1:]
}
