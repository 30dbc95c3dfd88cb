package api

import (
	"context"
	"net/http"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/basedeps"
)

// baseStateStore is what GET /v1/tasks/{name}/deps needs of the store besides the task. *store.Store
// satisfies it.
type baseStateStore interface {
	TaskBases(ctx context.Context, task string) (*proto.TaskBases, error)
	TagState(ctx context.Context, ref string) (*proto.TagState, error)
}

// TaskDeps is the answer of GET /v1/tasks/{name}/deps: the base images of a task's Dockerfile, as read when
// the task was saved, and what Kiln knows of each.
type TaskDeps struct {
	Task string `json:"task"`
	// BaseImageTrigger and BaseImageTriggerType are the task's, as in Task.
	BaseImageTrigger     bool   `json:"baseImageTrigger"`
	BaseImageTriggerType string `json:"baseImageTriggerType"`
	// BasesCommit is the commit the Dockerfile was read from, at BasesReadAt; BasesError says why the bases
	// could not be read, "" when they were.
	BasesCommit string     `json:"basesCommit,omitempty"`
	BasesReadAt *time.Time `json:"basesReadAt,omitempty"`
	BasesError  string     `json:"basesError,omitempty"`
	Bases       []BaseDep  `json:"bases"`
}

// BaseDep is one base image of a task, in the order the Dockerfile names them.
type BaseDep struct {
	Reference string `json:"reference"` // normalized: index.docker.io/library/alpine:3.20
	Kind      string `json:"kind"`      // "runtime" (the base of the stage built) or "build-time"
	Stage     string `json:"stage,omitempty"`
	Platform  string `json:"platform,omitempty"`
	// Tracked says whether a new digest of the base starts a run: the reference is a tag, not a digest, and
	// the task's trigger is on for bases of its kind.
	Tracked bool `json:"tracked"`

	// BuiltDigest is the digest of the base the task's last run built on, BuiltAt when and BuiltRun which.
	BuiltDigest string     `json:"builtDigest,omitempty"`
	BuiltAt     *time.Time `json:"builtAt,omitempty"`
	BuiltRun    string     `json:"builtRun,omitempty"`
	// TriggeredDigest is the digest the base image trigger last started a run for.
	TriggeredDigest string     `json:"triggeredDigest,omitempty"`
	TriggeredAt     *time.Time `json:"triggeredAt,omitempty"`
	TriggeredRun    string     `json:"triggeredRun,omitempty"`

	// RegistryDigest is the digest the tag last pointed to, as Kiln learned at CheckedAt from Source ("push",
	// "notification" or "poll"); PollError is the last poll's error, "" after a good one.
	RegistryDigest string     `json:"registryDigest,omitempty"`
	CheckedAt      *time.Time `json:"checkedAt,omitempty"`
	Source         string     `json:"source,omitempty"`
	PollError      string     `json:"pollError,omitempty"`
}

// The values of BaseDep.Kind.
const (
	kindRuntime   = "runtime"
	kindBuildTime = "build-time"
)

// taskDeps is GET /v1/tasks/{name}/deps.
func (s *Server) taskDeps(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	ctx := r.Context()
	t, err := s.st.Task(ctx, name)
	if err != nil {
		return storeError(err, "reading task %s", name)
	}
	state, err := s.st.TaskBases(ctx, name)
	if err != nil {
		return storeError(err, "reading the base image state of task %s", name)
	}
	out := &TaskDeps{
		Task:                 name,
		BaseImageTrigger:     !t.GetBaseImageTriggerOff(),
		BaseImageTriggerType: triggerType(t),
		BasesCommit:          t.GetBasesCommit(),
		BasesReadAt:          timeOf(t.GetBasesReadAt()),
		BasesError:           t.GetBasesError(),
		Bases:                make([]BaseDep, 0, len(t.GetBases())),
	}
	for _, b := range t.GetBases() {
		d := BaseDep{Reference: b.GetReference(), Kind: kindBuildTime, Stage: b.GetStage(), Platform: b.GetPlatform()}
		if b.GetRuntime() {
			d.Kind = kindRuntime
		}
		tag := basedeps.Tracked(d.Reference)
		d.Tracked = tag && !t.GetBaseImageTriggerOff() && (b.GetRuntime() || t.GetBaseImageTriggerAll())
		if bs := state.GetBases()[d.Reference]; bs != nil {
			d.BuiltDigest, d.BuiltAt, d.BuiltRun = bs.GetBuiltDigest(), timeOf(bs.GetBuiltAt()), bs.GetBuiltRun()
			d.TriggeredDigest, d.TriggeredAt, d.TriggeredRun =
				bs.GetTriggeredDigest(), timeOf(bs.GetTriggeredAt()), bs.GetTriggeredRun()
		}
		if tag {
			ts, err := s.st.TagState(ctx, d.Reference)
			if err != nil {
				return storeError(err, "reading the state of tag %s", d.Reference)
			}
			d.RegistryDigest, d.CheckedAt, d.Source, d.PollError =
				ts.GetDigest(), timeOf(ts.GetCheckedAt()), ts.GetSource(), ts.GetError()
		}
		out.Bases = append(out.Bases, d)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
