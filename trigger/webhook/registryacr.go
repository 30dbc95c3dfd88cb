package webhook

import (
	"encoding/json"

	"github.com/kilnbuild/kiln/proto"
)

// readACR reads the body of an Azure Container Registry webhook: one bare event, distribution's event
// without the envelope (action push or delete, target.repository, target.tag, target.digest, request.host
// the registry's login server, myregistry.azurecr.io), so that it is read as an envelope's event is. ACR
// sends each event once, in a body of its own.
func readACR(body []byte, registry string) (notification, error) {
	var ev registryEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return notification{}, proto.Errorf(proto.Invalid, "the body is not an ACR webhook event: %w", err)
	}
	key := ev.ID
	if key == "" {
		key = "event"
	}
	p, ignored, err := ev.read(registry)
	return notification{format: formatACR, events: []notice{{key: key, push: p, ignored: ignored, err: err}}}, nil
}
