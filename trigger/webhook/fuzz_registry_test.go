package webhook

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// FuzzRegistryNotification reads registry notifications of every format, seeded with every real sample in
// testdata/registry. Whatever the body, reading it does not panic and either fails with a proto.Invalid error
// (a 400) or gives events each of which is exactly one of: skipped with a reason, ignored with a reason, or a
// push of a normalized tag reference whose digest is valid (or empty, for Docker Hub's, to be looked up).
func FuzzRegistryNotification(f *testing.F) {
	samples, err := filepath.Glob(filepath.Join("testdata", "registry", "*.json"))
	if err != nil || len(samples) == 0 {
		f.Fatalf("no samples in testdata/registry: %v", err)
	}
	for _, s := range samples {
		body, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		for _, ct := range []string{"application/json", eventsMediaTypeV2, eventsMediaTypeV1} {
			f.Add(ct, body, "")
		}
		f.Add("application/json", body, "registry.kiln.test:5000")
	}
	f.Add("application/json", []byte(`{}`), "")
	f.Add("application/json", []byte(`{"action":"ping"}`), "")

	f.Fuzz(func(t *testing.T, contentType string, body []byte, registry string) {
		if eventsMediaType(contentType) != nil {
			return // refused before the body is read
		}
		registry, err := registryOverride(registry)
		if err != nil {
			return // refused before the body is read
		}
		n, err := readNotification(contentType, body, registry)
		if err != nil {
			if code := proto.ErrorCode(err); code != proto.Invalid {
				t.Fatalf("readNotification(%q) = error of kind %s (%v), want %s", body, code, err, proto.Invalid)
			}
			if err.Error() == "" {
				t.Fatalf("readNotification(%q) = an error with no message", body)
			}
			return
		}
		if n.format == "" {
			t.Errorf("readNotification(%q) read no format", body)
		}
		for _, ev := range n.events {
			if ev.key == "" {
				t.Errorf("readNotification(%q): an event with no key: %+v", body, ev)
			}
			switch {
			case ev.err != nil:
				if ev.ignored != "" || ev.err.Error() == "" {
					t.Errorf("readNotification(%q): event %s skipped (%v) and ignored (%q)", body, ev.key, ev.err, ev.ignored)
				}
			case ev.ignored != "":
			default:
				checkPush(t, n.format, ev.push)
			}
		}
	})
}

// checkPush checks that p names a tag by its normalized reference, at a valid digest: one that is empty
// only for Docker Hub, whose digest is looked up.
func checkPush(t *testing.T, format string, p imagePush) {
	t.Helper()
	tag, err := name.NewTag(p.ref, name.StrictValidation)
	if err != nil {
		t.Fatalf("push of %q: not a tag reference: %v", p.ref, err)
	}
	if norm, err := basedeps.Normalize(p.ref); err != nil || norm != p.ref || tag.Name() != p.ref {
		t.Errorf("push of %q: normalized as %q (%v), want itself", p.ref, norm, err)
	}
	switch {
	case p.digest == "" && format == formatDockerHub:
	case p.digest == "":
		t.Errorf("%s push of %s has no digest", format, p.ref)
	default:
		if _, err := v1.NewHash(p.digest); err != nil {
			t.Errorf("%s push of %s at digest %q: %v", format, p.ref, p.digest, err)
		}
	}
}
