package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// registryEvent is the part of a distribution notification event Kiln reads. distribution 3
// (notifications/bridge.go) sets target.tag on a manifest pushed by tag, and on a pull by tag and a tag's
// deletion, never on a blob; request.host is the Host header of the request that pushed, which is the name the
// client reached the registry by unless a proxy changed it.
type registryEvent struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// imagePush is an event that counts: a tag pushed to point to a manifest.
type imagePush struct {
	id     string // the event's ID, or one made of what identifies the push; "" when there is neither
	ref    string // the tag's reference, normalized by basedeps.Normalize
	digest string // the manifest's digest; "" when the sender gives none and the tag must be looked up
}

// readEnvelope reads events, the events array of distribution's envelope {"events": [...]}.
func readEnvelope(events json.RawMessage, registry string) (notification, error) {
	if len(events) == 0 || string(events) == "null" {
		return notification{}, proto.Errorf(proto.Invalid, "the body has the media type of distribution's envelope "+
			`{"events": [...]} but no `+"`events`"+` array`)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(events, &list); err != nil {
		return notification{}, proto.Errorf(proto.Invalid, `the body is not a notification envelope {"events": [...]}: %w`, err)
	}
	n := notification{format: formatDistribution, resends: true}
	for i, raw := range list {
		p, ignored, err := readEvent(raw, registry)
		n.events = append(n.events, notice{key: eventKey(p.id, i), push: p, ignored: ignored, err: err})
	}
	return n, nil
}

// readEvent reads one event of an envelope: the tag push it tells of, or why it tells of none, as
// registryEvent.read says. p.id is the event's ID whenever the event decodes.
func readEvent(raw json.RawMessage, registry string) (p imagePush, ignored string, err error) {
	var ev registryEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return imagePush{}, "", fmt.Errorf("not a notification event: %w", err)
	}
	return ev.read(registry)
}

// read returns the tag push ev tells of, or why it tells of none. ignored says why an event that is no tag
// push of a manifest counts for nothing (a pull, a delete, a blob, a push by digest); an error says why a tag
// push names no image. registry, when set, is the host images are named by, in place of the event's
// request.host. p.id is the event's ID.
func (ev registryEvent) read(registry string) (p imagePush, ignored string, err error) {
	p.id = ev.ID
	t := ev.Target
	switch {
	case ev.Action != "push":
		return p, fmt.Sprintf("action %q is not a push", ev.Action), nil
	case !isManifest(t.MediaType):
		return p, fmt.Sprintf("a push of %q, not of a manifest", t.MediaType), nil
	case t.Tag == "":
		return p, "a manifest pushed by digest, with no tag", nil
	}
	host := registry
	if host == "" {
		host = strings.ToLower(ev.Request.Host)
	}
	if p.ref, err = tagReference(host, t.Repository, t.Tag); err != nil {
		return p, "", err
	}
	if p.digest, err = pushedDigest(p.ref, t.Digest); err != nil {
		return p, "", err
	}
	return p, "", nil
}

// pushedDigest checks digest, the digest a sender says ref was pushed at.
func pushedDigest(ref, digest string) (string, error) {
	if _, err := v1.NewHash(digest); err != nil {
		return "", fmt.Errorf("the push of %s has no valid digest: %w", ref, err)
	}
	return digest, nil
}

// isManifest reports whether mediaType is that of a manifest a tag can point to: an OCI or Docker image
// manifest, an OCI index or Docker manifest list, or a Docker schema 1 manifest, which registry 2.x still
// accepts. Layers, configs and other blobs are not.
func isManifest(mediaType string) bool {
	m := types.MediaType(mediaType)
	return m.IsImage() || m.IsIndex() || m.IsSchema1()
}

// tagReference returns the normalized reference of tag in repository on the registry at host
// (index.docker.io/library/alpine:3 for docker.io, library/alpine and 3), checking that it reads back as that
// tag on that registry: a host with neither a dot nor a port, other than localhost, would name a Docker Hub
// repository instead.
func tagReference(host, repository, tag string) (string, error) {
	if host == "" {
		return "", errors.New("the event names no registry host (request.host): add ?registry=HOST to the webhook's URL")
	}
	if repository == "" {
		return "", errors.New("the event names no repository")
	}
	s := host + "/" + repository + ":" + tag
	ref, err := basedeps.Normalize(s)
	if err != nil {
		return "", fmt.Errorf("not an image reference: %w", err) // err names s
	}
	reg, err := name.NewRegistry(host, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("%s is not an image reference: %w", s, err)
	}
	got, err := name.NewTag(ref, name.StrictValidation)
	if err != nil || got.TagStr() != tag {
		return "", fmt.Errorf("%s is not an image reference with tag %q", s, tag)
	}
	if got.RegistryStr() != reg.RegistryStr() {
		return "", fmt.Errorf("%s names an image on %s, not on %s: a registry host needs a dot or a port, "+
			"or set ?registry=HOST on the webhook's URL", s, got.RegistryStr(), host)
	}
	return ref, nil
}
