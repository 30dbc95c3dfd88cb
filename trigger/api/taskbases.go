package api

import (
	"context"
	"errors"
	"maps"
	"time"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// basesTimeout bounds reading a task's Dockerfile from its repository when the task is saved. A repository
// that does not answer in time leaves the task saved with basesError saying so.
const basesTimeout = 20 * time.Second

// readBases reads the base images of the Dockerfile of t, a task about to be saved, at the head of its branch
// (Config.ReadBases) and records them in t, stamped with now. A Dockerfile that cannot be built as the task
// says (a basedeps.DockerfileError) is refused: the error is returned, and t must not be saved. Any other
// failure, a repository that cannot be reached say, is recorded in t.BasesError, and t is saved all the same.
func (s *Server) readBases(ctx context.Context, t *proto.Task, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, basesTimeout)
	defer cancel()
	deps, commit, err := s.cfg.ReadBases(ctx, t)
	var bad *basedeps.DockerfileError
	if errors.As(err, &bad) {
		return proto.Errorf(proto.Invalid, "reading the base images of task %s (the task was not saved): %w", t.Name, err)
	}
	t.Bases, t.BasesCommit, t.BasesReadAt, t.BasesError = deps, commit, timestamppb.New(now), ""
	if err != nil {
		t.Bases, t.BasesError = nil, err.Error()
	}
	return nil
}

// readsBases reports whether p changes what the base images of a task are read from: its repository, branch,
// Dockerfile, build args, target, or the token that reads it. Sending one of them again, even unchanged, reads
// the bases again.
func (p TaskPatch) readsBases() bool {
	return p.Context != nil || p.Dockerfile != nil || p.BuildArgs != nil || p.Target != nil || p.GitToken != nil
}

// keepBases copies the base images read from the task from into t, when t is still read from the same place;
// otherwise (the task was changed meanwhile) it clears them and says why.
func keepBases(t, from *proto.Task) {
	if sameBasesInput(t, from) {
		t.Bases, t.BasesCommit, t.BasesReadAt, t.BasesError = from.Bases, from.BasesCommit, from.BasesReadAt, from.BasesError
		return
	}
	t.Bases, t.BasesCommit, t.BasesReadAt = nil, "", nil
	t.BasesError = "the task changed while its Dockerfile was being read: save it again to read its base images"
}

// sameBasesInput reports whether the base images of tasks a and b are read from the same Dockerfile with the
// same build args, target and token.
func sameBasesInput(a, b *proto.Task) bool {
	return gproto.Equal(a.GetSource(), b.GetSource()) && a.GetDockerfile() == b.GetDockerfile() &&
		maps.Equal(a.GetBuildArgs(), b.GetBuildArgs()) && a.GetTarget() == b.GetTarget() &&
		a.GetGitToken() == b.GetGitToken()
}
