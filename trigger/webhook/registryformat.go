package webhook

import (
	"encoding/json"
	"mime"

	"github.com/kilnbuild/kiln/proto"
)

// The formats of registry notifications Kiln reads, as answers and logs name them.
const (
	formatDistribution = "Docker distribution"
	formatACR          = "ACR"
	formatHarbor       = "Harbor"
	formatDockerHub    = "Docker Hub"
)

// notice is one event of a registry notification, read from whichever format it came in: a tag push, or
// why it is none. Every format's reader turns its body into notices, and one rule (serveRegistry's) decides
// what becomes of them.
type notice struct {
	key     string    // names the event in an answer: its ID, or where it is in the body (events[2])
	push    imagePush // the tag push it tells of; push.digest is "" when the sender gives none (Docker Hub)
	ignored string    // why the event counts for nothing: a pull, a delete, a blob, a push by digest
	err     error     // why a tag push names no image
}

// notification is a registry notification's body, read.
type notification struct {
	format string
	events []notice
	// resends is true for a sender that sends a body again until it gets a 2xx, holding back every event
	// after it (distribution): an event in it that cannot be read is skipped, lest it block the others for
	// good. The other senders send one push per body, so a body none of whose pushes can be read is refused.
	resends bool
}

// readNotification reads body, a registry notification, as the format its Content-Type or else its shape
// says: distribution's envelope {"events": [...]} (which its events media types always are), ACR's bare
// event (action and target at the top), Harbor's Default format (event_data) or Docker Hub's (push_data).
// registry, when set, is the host images are named by, in place of the one the body names. A body that is
// none of these is a proto.Invalid error naming what it lacks.
func readNotification(contentType string, body []byte, registry string) (notification, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return notification{}, proto.Errorf(proto.Invalid, "the body is not a registry notification, a JSON object: %w", err)
	}
	has := func(key string) bool {
		v, ok := top[key]
		return ok && string(v) != "null"
	}
	mediaType, _, _ := mime.ParseMediaType(contentType) // eventsMediaType has checked it
	switch {
	case has("events") || mediaType == eventsMediaTypeV1 || mediaType == eventsMediaTypeV2:
		return readEnvelope(top["events"], registry)
	case has("event_data"):
		return readHarbor(body, registry)
	case has("push_data"):
		return readDockerHub(body, registry)
	case has("target") || has("action"):
		return readACR(body, registry)
	}
	return notification{}, proto.Errorf(proto.Invalid, "the body is no registry notification Kiln reads: "+
		"it has no `events` array (Docker distribution), no `action` or `target` (ACR), no `event_data` (Harbor) "+
		"and no `push_data` (Docker Hub)")
}
