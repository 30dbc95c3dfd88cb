package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kilnbuild/kiln/proto"
)

// dockerHubRegistry is the registry Docker Hub's repositories are pulled from, as a task's FROM names it
// before normalizing (docker.io/library/busybox, docker.io/user/app).
const dockerHubRegistry = "docker.io"

// dockerHubEvent is the part of a Docker Hub webhook body Kiln reads: the tag pushed and the repository,
// library/busybox or user/app. It has no digest.
type dockerHubEvent struct {
	PushData struct {
		Tag      string      `json:"tag"`
		PushedAt json.Number `json:"pushed_at"`
	} `json:"push_data"`
	Repository struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

// readDockerHub reads the body of a Docker Hub webhook, which is always a push: the tag push_data.tag of
// repository.repo_name on docker.io (or on registry, when set). Docker Hub sends no digest: the push's digest
// is left empty, for the handler to look the tag up. Its ID is made of the time it was pushed at and its
// reference, so that a body sent again is published once.
func readDockerHub(body []byte, registry string) (notification, error) {
	var ev dockerHubEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return notification{}, proto.Errorf(proto.Invalid, "the body is not a Docker Hub webhook event: %w", err)
	}
	host := registry
	if host == "" {
		host = dockerHubRegistry
	}
	nt := notice{key: "push_data"}
	if ev.PushData.Tag == "" {
		nt.err = errors.New("the Docker Hub push names no tag (push_data.tag)")
	} else if nt.push.ref, nt.err = tagReference(host, ev.Repository.RepoName, ev.PushData.Tag); nt.err == nil {
		nt.push.id = fmt.Sprintf("dockerhub:%s:%s", ev.PushData.PushedAt, nt.push.ref)
	}
	return notification{format: formatDockerHub, events: []notice{nt}}, nil
}
