package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kilnbuild/kiln/proto"
)

// harborPush is the type of the Harbor event that tells of artifacts pushed.
const harborPush = "PUSH_ARTIFACT"

// harborEvent is the part of a Harbor webhook body in its Default payload format that Kiln reads. Each
// resource is an artifact the event is about: its digest, the tag it was pushed by ("" when by digest), and
// its resource_url, host/namespace/name:tag, whose host is Harbor's external hostname.
type harborEvent struct {
	Type      string      `json:"type"`
	OccurAt   json.Number `json:"occur_at"`
	EventData struct {
		Resources []struct {
			Digest      string `json:"digest"`
			Tag         string `json:"tag"`
			ResourceURL string `json:"resource_url"`
		} `json:"resources"`
		Repository struct {
			RepoFullName string `json:"repo_full_name"`
		} `json:"repository"`
	} `json:"event_data"`
}

// readHarbor reads the body of a Harbor webhook in its Default payload format: a PUSH_ARTIFACT event's
// resources are the tags pushed, each at its digest, named by the host of its resource_url and the
// repository's repo_full_name; the events of other types (pulls, deletions, scans, quotas) count for
// nothing. Harbor gives no event ID: a push's ID is made of the time it occurred at, its reference and
// digest, so that a body sent again is published once.
func readHarbor(body []byte, registry string) (notification, error) {
	var ev harborEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return notification{}, proto.Errorf(proto.Invalid, "the body is not a Harbor webhook event: %w", err)
	}
	n := notification{format: formatHarbor}
	resources := ev.EventData.Resources
	if ev.Type != harborPush {
		n.events = append(n.events, notice{key: "event_data", ignored: fmt.Sprintf("Harbor event type %q is not %s", ev.Type, harborPush)})
		return n, nil
	}
	if len(resources) == 0 {
		return notification{}, proto.Errorf(proto.Invalid, "the Harbor %s event has no `event_data.resources`", harborPush)
	}
	for i, r := range resources {
		nt := notice{key: fmt.Sprintf("event_data.resources[%d]", i)}
		switch {
		case r.Tag == "":
			nt.ignored = "an artifact pushed by digest, with no tag"
		default:
			nt.push, nt.err = harborResource(ev.EventData.Repository.RepoFullName, r.ResourceURL, r.Tag, r.Digest, registry)
			if nt.err == nil {
				nt.push.id = fmt.Sprintf("harbor:%s:%s@%s", ev.OccurAt, nt.push.ref, nt.push.digest)
			}
		}
		n.events = append(n.events, nt)
	}
	return n, nil
}

// harborResource returns the push of tag at digest in repository, on the host of resourceURL unless
// registry is set.
func harborResource(repository, resourceURL, tag, digest, registry string) (imagePush, error) {
	host := registry
	if host == "" {
		h, _, ok := strings.Cut(resourceURL, "/")
		if !ok {
			return imagePush{}, fmt.Errorf("the resource_url %q names no registry host: add ?registry=HOST to the webhook's URL", resourceURL)
		}
		host = strings.ToLower(h)
	}
	ref, err := tagReference(host, repository, tag)
	if err != nil {
		return imagePush{}, err
	}
	d, err := pushedDigest(ref, digest)
	if err != nil {
		return imagePush{}, err
	}
	return imagePush{ref: ref, digest: d}, nil
}
