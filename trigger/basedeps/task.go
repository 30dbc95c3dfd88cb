package basedeps

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/queue"
)

// defaultDockerfile is the Dockerfile of a task that names none.
const defaultDockerfile = "Dockerfile"

// ForTask reads the Dockerfile of the task t at the head of its branch and returns the base images it builds on
// (for a task file, the bases of its build steps' Dockerfiles: taskFileDeps),
// as Dependencies finds them with t's build args and target, and the commit it read them from. It fetches
// t.Source's repository (its ref, or the remote's default branch when none; t.GitToken for a private one) with
// depth 1 into memory, and reads <subdir>/<dockerfile> from the head commit's tree. It has no time limit of
// its own: the caller bounds it with ctx. The API calls it when a task is saved, the base image watcher after a
// task's runs.
//
// A Dockerfile that cannot be built as the task says (it does not parse, a base is not an image reference, the
// target stage is not in it) is a *DockerfileError, of kind proto.Invalid. The other failures keep their own
// kinds: a repository that cannot be reached is proto.Unavailable, one that refuses the token or lacks the
// branch proto.Invalid, a Dockerfile not in the commit proto.NotFound, a base that depends on the platform of
// the build (FROM base-$TARGETARCH) proto.Invalid. The commit is returned whenever it was fetched, errors
// included. The token never appears in an error.
func ForTask(ctx context.Context, t *proto.Task) (deps []*proto.BaseDependency, commit string, err error) {
	src := t.GetSource()
	if src.GetUrl() == "" {
		return nil, "", proto.Errorf(proto.Invalid, "task %s has no repository to read its Dockerfile from", t.GetName())
	}
	dockerfile := t.GetDockerfile()
	if dockerfile == "" {
		dockerfile = defaultDockerfile
	}
	file := path.Join(src.GetSubdir(), dockerfile)
	c, err := fetchHead(ctx, src.GetUrl(), src.GetRef(), t.GetGitToken())
	if err != nil {
		return nil, "", err
	}
	commit = c.Hash.String()
	data, err := readFile(c, file)
	if err != nil {
		return nil, commit, err
	}
	if queue.IsTaskFile(dockerfile) {
		deps, err := taskFileDeps(c, file, src.GetSubdir(), t.GetValues(), data)
		return deps, commit, err
	}
	found, err := dockerfileDeps(data, file, commit, t.GetBuildArgs(), t.GetTarget())
	if err != nil {
		return nil, commit, err
	}
	deps = make([]*proto.BaseDependency, 0, len(found))
	for _, d := range found {
		deps = append(deps, &proto.BaseDependency{Reference: d.Ref, Runtime: d.Runtime, Platform: d.Platform, Stage: d.Stage})
	}
	return deps, commit, nil
}

// dockerfileDeps is Dependencies of the Dockerfile file, read at commit, with its errors as ForTask gives them.
func dockerfileDeps(data []byte, file, commit string, buildArgs map[string]string, target string) ([]Dependency, error) {
	found, err := Dependencies(data, buildArgs, target)
	switch {
	case errors.Is(err, errKnownWhenBuilding):
		return nil, proto.Errorf(proto.Invalid, "%s at commit %s: %w", file, shortHash(commit), err)
	case err != nil:
		return nil, &DockerfileError{Path: file, Commit: commit, Err: err}
	}
	return found, nil
}

// DockerfileError is a task's Dockerfile that cannot be built as the task says: it does not parse, names a
// base that is not an image reference, or lacks the target stage. A build of the same commit would fail too.
type DockerfileError struct {
	Path   string // the Dockerfile's path in the repository
	Commit string // the commit it was read from
	Err    error  // what Dependencies said, of kind proto.Invalid, with the line
}

func (e *DockerfileError) Error() string {
	return fmt.Sprintf("%s at commit %s: %v", e.Path, shortHash(e.Commit), e.Err)
}

func (e *DockerfileError) Unwrap() error { return e.Err }

// shortHash is the first 12 hex digits of a commit, as messages show it.
func shortHash(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
