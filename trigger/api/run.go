package api

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// Run is a run as the API shows it: the JSON answer of GET /v1/runs/{id} and of every call that changes a run.
type Run struct {
	ID string `json:"id"`
	// Status is one of Queued, Running, Succeeded, Failed, Canceled, Error and Timeout.
	Status string `json:"status"`
	// Trigger is what started the run: manual, commit, pull_request, tag, base_image or timer.
	Trigger    string     `json:"trigger"`
	QueuedAt   *time.Time `json:"queuedAt,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Images     []Image    `json:"images,omitempty"`
	// Bases are the base images the build used, with the digests BuildKit resolved them to.
	Bases   []Image `json:"bases,omitempty"`
	Error   string  `json:"error,omitempty"`
	Attempt int     `json:"attempt,omitempty"`
	// CancelRequested is set while a cancel of a Running run waits for its worker to stop the build.
	CancelRequested bool `json:"cancelRequested,omitempty"`
	// TaskName names the task the run belongs to, if any.
	TaskName string `json:"taskName,omitempty"`
	// Git says which git event started the run, for runs of tasks.
	Git *GitTrigger `json:"git,omitempty"`
	// SupersededBy names the newer run of the same task and branch that made this one unnecessary.
	SupersededBy string `json:"supersededBy,omitempty"`
	// BaseImage lists the base image changes that started the run, for base_image runs.
	BaseImage []BaseChange `json:"baseImage,omitempty"`
	// Timer is the timer occurrence that started the run, for timer runs.
	Timer *TimerTrigger `json:"timer,omitempty"`
	// Steps are the steps of a multi-step run, in the task file's order.
	Steps []Step `json:"steps,omitempty"`
	// Request is what was asked for, with the tags as rendered and qualified at submission.
	Request BuildRequest `json:"request"`
}

// Image is one reference a run pushed and the digest the registry stored it under.
type Image struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// BaseChange is a base image whose tag moved: from the digest the task was on ("" when it had never built on
// it) to the new one, as learned from a run's push, a registry notification or a poll.
type BaseChange struct {
	Reference string `json:"reference"`
	OldDigest string `json:"oldDigest,omitempty"`
	NewDigest string `json:"newDigest"`
	Source    string `json:"source"`
}

// GitTrigger is the git event that started a run.
type GitTrigger struct {
	Repository string `json:"repository"`
	// Ref is the full ref: refs/heads/main, refs/tags/v1, refs/pull/7/head.
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// DeliveryID is the webhook delivery that started the run.
	DeliveryID string `json:"deliveryId,omitempty"`
	Pusher     string `json:"pusher,omitempty"`
	// PullRequest is the pull request's number, for pull_request runs.
	PullRequest int64 `json:"pullRequest,omitempty"`
}

// BuildRequest is what a submission asks for: the "request" part of POST /v1/runs, or its whole JSON body when
// Context is set. Its zero values mean the defaults: Dockerfile "Dockerfile", Push true, Timeout 3600 seconds.
type BuildRequest struct {
	// Context, when set, is the URL of the build context, and the submission uploads none: a git repository
	// ("https://host/owner/repo.git#ref:subdir", a URL ending in .git or with a '#'), whose ref is resolved
	// to a commit when the run is queued; or any other http(s) URL, a tar or tar.gz archive that the worker
	// downloads. In a run, it is the context as queued, the git ref in full.
	Context string `json:"context,omitempty"`
	// Commit is, in answers, the commit a git context was resolved to when the run was queued.
	Commit string `json:"commit,omitempty"`
	// Dockerfile is the Dockerfile's path inside the build context.
	Dockerfile string `json:"dockerfile,omitempty"`
	// Tags are image references, each a Go template over {{.Run.ID}}, {{.Run.Date}} and {{.Run.Registry}}.
	// A tag that names no registry gets the server's default one.
	Tags      []string          `json:"tags,omitempty"`
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	Target    string            `json:"target,omitempty"`
	Platform  string            `json:"platform,omitempty"`
	// Push says whether to push the tags once built; nil means true.
	Push *bool `json:"push,omitempty"`
	// Timeout is the most seconds the build may take, 1 to 86400; 0 means 3600.
	Timeout int `json:"timeout,omitempty"`
	// A multi-step run instead of a docker build (kiln run): TaskFile is an ACR task file's text, or
	// TaskFilePath names one inside a context URL; Cmd is one command, "IMAGE [ARGS]". Values fill the file's
	// {{.Values}}. A multi-step request sets none of Dockerfile, Tags, BuildArgs, Target and Platform: its
	// steps say what to build.
	TaskFile     string            `json:"taskFile,omitempty"`
	TaskFilePath string            `json:"taskFilePath,omitempty"`
	Cmd          string            `json:"cmd,omitempty"`
	Values       map[string]string `json:"values,omitempty"`
	// Network is the network of the RUN steps and cmd steps: "default" (or ""), a namespace of each step's own
	// that reaches the world but nothing of the machine that builds; "host", the machine's own network, which
	// the server must allow (kiln serve --allow-host-network); or "none", loopback only.
	Network string `json:"network,omitempty"`
}

// statusNames holds the name of every status the API shows, indexed by proto.Status.
var statusNames = map[proto.Status]string{
	proto.Status_QUEUED:    "Queued",
	proto.Status_RUNNING:   "Running",
	proto.Status_SUCCEEDED: "Succeeded",
	proto.Status_FAILED:    "Failed",
	proto.Status_CANCELED:  "Canceled",
	proto.Status_ERROR:     "Error",
	proto.Status_TIMEOUT:   "Timeout",
}

// StatusName returns the name the API gives status s, such as "Succeeded", or "Unspecified" for a status it
// does not know.
func StatusName(s proto.Status) string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "Unspecified"
}

// ParseStatus returns the status a name stands for, ignoring case: "succeeded" and "Succeeded" are both
// proto.Status_SUCCEEDED. An unknown name is a proto.Invalid error that lists the known ones.
func ParseStatus(name string) (proto.Status, error) {
	for s, n := range statusNames {
		if strings.EqualFold(n, name) {
			return s, nil
		}
	}
	return 0, proto.Errorf(proto.Invalid,
		"unknown status %q: want queued, running, succeeded, failed, canceled, error or timeout", name)
}

// triggerName returns the API's name of a trigger, such as "manual" or "pull_request".
func triggerName(t proto.Trigger) string {
	if t == proto.Trigger_TRIGGER_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(t.String())
}

// RunFromProto returns the API's view of the record r.
func RunFromProto(r *proto.Run) *Run {
	spec := r.GetSpec()
	push := spec.GetPush()
	out := &Run{
		ID:              r.GetId(),
		Status:          StatusName(r.GetStatus()),
		Trigger:         triggerName(r.GetTrigger()),
		QueuedAt:        timeOf(r.GetQueuedAt()),
		StartedAt:       timeOf(r.GetStartedAt()),
		FinishedAt:      timeOf(r.GetFinishedAt()),
		Error:           r.GetError(),
		Attempt:         int(r.GetAttempt()),
		CancelRequested: r.GetCancelRequested(),
		TaskName:        r.GetTaskName(),
		SupersededBy:    r.GetSupersededBy(),
		Request: BuildRequest{
			Context:      spec.GetContextUrl(),
			Dockerfile:   spec.GetDockerfile(),
			Tags:         spec.GetTags(),
			BuildArgs:    spec.GetBuildArgs(),
			Target:       spec.GetTarget(),
			Platform:     spec.GetPlatform(),
			Push:         &push,
			Timeout:      int(spec.GetTimeoutSeconds()),
			TaskFile:     spec.GetTaskFile(),
			TaskFilePath: spec.GetTaskFilePath(),
			Cmd:          spec.GetCmd(),
			Values:       spec.GetValues(),
			Network:      spec.GetNetwork(),
		},
		Timer: timerOf(r),
		Steps: stepsOf(r),
	}
	if spec.GetGit() != nil {
		out.Request.Context = formatGitContext(spec.GetGit())
		out.Request.Commit = spec.GetGit().GetCommit()
	}
	if g := r.GetGit(); g != nil {
		out.Git = &GitTrigger{Repository: g.GetRepository(), Ref: g.GetRef(), Commit: g.GetCommit(),
			DeliveryID: g.GetDeliveryId(), Pusher: g.GetPusher(), PullRequest: g.GetPullRequest()}
	}
	for _, im := range r.GetImages() {
		out.Images = append(out.Images, Image{Reference: im.GetReference(), Digest: im.GetDigest()})
	}
	for _, b := range r.GetBases() {
		out.Bases = append(out.Bases, Image{Reference: b.GetReference(), Digest: b.GetDigest()})
	}
	for _, c := range r.GetBaseImage().GetChanges() {
		out.BaseImage = append(out.BaseImage, BaseChange{Reference: c.GetReference(), OldDigest: c.GetOldDigest(),
			NewDigest: c.GetNewDigest(), Source: c.GetSource()})
	}
	return out
}

// timeOf returns ts as a UTC time, or nil when it is unset.
func timeOf(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime().UTC()
	return &t
}
