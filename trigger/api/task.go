package api

import (
	"crypto/rand"
	"path"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/tags"
)

// Task is a task as the API shows it, and the body of POST /v1/tasks that creates one. A task is a saved build
// of a git repository's branch with the triggers that start it, like an ACR task. In a create, a nil or zero
// field means its default; the fields marked "answers only" are ignored. An answer never holds a secret.
type Task struct {
	Name string `json:"name"`
	// Context is the repository: "https://host/owner/repo.git#branch:subdir", as ParseGitContext reads it.
	// No branch means the repository's default branch.
	Context string `json:"context"`
	// Dockerfile is the Dockerfile's path inside the context; "" means "Dockerfile".
	Dockerfile string `json:"dockerfile,omitempty"`
	// Tags are image tag templates over {{.Run}}: ID, Date, Registry, Commit, Branch, TaskName, TriggeredBy.
	Tags      []string          `json:"tags,omitempty"`
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	Target    string            `json:"target,omitempty"`
	Platform  string            `json:"platform,omitempty"`
	// Timeout is the most seconds a run may take, 1 to 86400; 0 means 3600.
	Timeout int `json:"timeout,omitempty"`
	// Push says whether runs push their tags; nil means true. Pull request runs also need PushPullRequests.
	Push *bool `json:"push,omitempty"`
	// CommitTrigger starts a run on a push to the branch; nil means true.
	CommitTrigger *bool `json:"commitTrigger,omitempty"`
	// PullRequestTrigger starts a run when a pull request to the branch opens or changes; nil means false.
	PullRequestTrigger *bool `json:"pullRequestTrigger,omitempty"`
	// TagTrigger starts a run when a tag is pushed; nil means false.
	TagTrigger *bool `json:"tagTrigger,omitempty"`
	// PathFilters are globs: a push that changes no file matching one starts no run. None means any file.
	PathFilters []string `json:"pathFilters,omitempty"`
	// LatestOnly builds only the newest queued run of each branch; nil means true.
	LatestOnly *bool `json:"latestOnly,omitempty"`
	// PushPullRequests lets pull request runs push; nil means false, as their code is not trusted.
	PushPullRequests *bool `json:"pushPullRequests,omitempty"`
	// GitToken reads a private repository and registers its webhook. Write only.
	GitToken string `json:"gitToken,omitempty"`
	// WebhookSecret signs the repository's webhook deliveries; Kiln makes a random one when none is given.
	// Write only.
	WebhookSecret string `json:"webhookSecret,omitempty"`
	// BaseImageTrigger starts a run when a tracked base image of the Dockerfile moves to a new digest; nil
	// means true.
	BaseImageTrigger *bool `json:"baseImageTrigger,omitempty"`
	// BaseImageTriggerType says which bases are tracked: "runtime" (or ""), the base of the stage built, or
	// "all", the build-time ones too.
	BaseImageTriggerType string `json:"baseImageTriggerType,omitempty"`
	// Timers start the task on schedules (see Timer). After the create they change through
	// /v1/tasks/{name}/timers, not a task's PATCH.
	Timers []Timer `json:"timers,omitempty"`
	// Network is the network of its runs' RUN steps, as BuildRequest.Network.
	Network string `json:"network,omitempty"`

	// Bases are the base images of the Dockerfile at the head of the branch, read when the task was saved.
	Bases            []TaskBase `json:"bases,omitempty"`        // answers only
	BasesError       string     `json:"basesError,omitempty"`   // answers only: why Bases could not be read
	HasGitToken      bool       `json:"hasGitToken"`            // answers only
	HasWebhookSecret bool       `json:"hasWebhookSecret"`       // answers only
	GitHubHookID     int64      `json:"githubHookId,omitempty"` // answers only: the webhook Kiln registered
	CreatedAt        *time.Time `json:"createdAt,omitempty"`    // answers only
	UpdatedAt        *time.Time `json:"updatedAt,omitempty"`    // answers only
}

// TaskPatch is the body of PATCH /v1/tasks/{name}: each field that is set (non-nil) replaces the task's, and
// the others stay as they are. Setting GitToken or WebhookSecret to "" removes the token or is refused,
// respectively. The name cannot change.
type TaskPatch struct {
	Context            *string            `json:"context,omitempty"`
	Dockerfile         *string            `json:"dockerfile,omitempty"`
	Tags               *[]string          `json:"tags,omitempty"`
	BuildArgs          *map[string]string `json:"buildArgs,omitempty"`
	Target             *string            `json:"target,omitempty"`
	Platform           *string            `json:"platform,omitempty"`
	Timeout            *int               `json:"timeout,omitempty"`
	Push               *bool              `json:"push,omitempty"`
	CommitTrigger      *bool              `json:"commitTrigger,omitempty"`
	PullRequestTrigger *bool              `json:"pullRequestTrigger,omitempty"`
	TagTrigger         *bool              `json:"tagTrigger,omitempty"`
	PathFilters        *[]string          `json:"pathFilters,omitempty"`
	LatestOnly         *bool              `json:"latestOnly,omitempty"`
	PushPullRequests   *bool              `json:"pushPullRequests,omitempty"`
	GitToken           *string            `json:"gitToken,omitempty"`
	WebhookSecret      *string            `json:"webhookSecret,omitempty"`
	// BaseImageTrigger and BaseImageTriggerType are as in Task.
	BaseImageTrigger     *bool   `json:"baseImageTrigger,omitempty"`
	BaseImageTriggerType *string `json:"baseImageTriggerType,omitempty"`
	Network              *string `json:"network,omitempty"`
}

// TaskBase is a base image of a task's Dockerfile, as Task.Bases shows it.
type TaskBase struct {
	// Reference is the image, normalized: index.docker.io/library/alpine:3.20.
	Reference string `json:"reference"`
	// Runtime is true for the base of the stage built, false for a base only used while building.
	Runtime  bool   `json:"runtime"`
	Stage    string `json:"stage,omitempty"`    // the stage that names it: its name, or its index
	Platform string `json:"platform,omitempty"` // FROM --platform, if any
}

// The values of Task.BaseImageTriggerType.
const (
	triggerRuntime = "runtime"
	triggerAll     = "all"
)

// movesHook reports whether p changes what a task's webhook depends on: its repository, the token that
// registers it, its secret or the events it sends.
func (p TaskPatch) movesHook() bool {
	return p.Context != nil || p.GitToken != nil || p.WebhookSecret != nil ||
		p.CommitTrigger != nil || p.PullRequestTrigger != nil || p.TagTrigger != nil
}

// taskList is the answer of GET /v1/tasks.
type taskList struct {
	Tasks []*Task `json:"tasks"`
}

// TaskFromProto returns the API's view of the task t, without its secrets.
func TaskFromProto(t *proto.Task) *Task {
	out := &Task{
		Name:                 t.GetName(),
		Context:              formatGitContext(t.GetSource()),
		Dockerfile:           t.GetDockerfile(),
		Tags:                 t.GetTags(),
		BuildArgs:            t.GetBuildArgs(),
		Target:               t.GetTarget(),
		Platform:             t.GetPlatform(),
		Timeout:              int(t.GetTimeoutSeconds()),
		Push:                 boolPtr(t.GetPush()),
		CommitTrigger:        boolPtr(t.GetCommitTrigger()),
		PullRequestTrigger:   boolPtr(t.GetPullRequestTrigger()),
		TagTrigger:           boolPtr(t.GetTagTrigger()),
		PathFilters:          t.GetPathFilters(),
		LatestOnly:           boolPtr(t.GetLatestOnly()),
		PushPullRequests:     boolPtr(t.GetPushPullRequests()),
		HasGitToken:          t.GetGitToken() != "",
		HasWebhookSecret:     t.GetWebhookSecret() != "",
		GitHubHookID:         t.GetGithubHookId(),
		CreatedAt:            timeOf(t.GetCreatedAt()),
		UpdatedAt:            timeOf(t.GetUpdatedAt()),
		BaseImageTrigger:     boolPtr(!t.GetBaseImageTriggerOff()),
		BaseImageTriggerType: triggerType(t),
		BasesError:           t.GetBasesError(),
		Timers:               timersFromProto(t.GetTimers()),
		Network:              t.GetNetwork(),
	}
	for _, b := range t.GetBases() {
		out.Bases = append(out.Bases, TaskBase{Reference: b.GetReference(), Runtime: b.GetRuntime(),
			Stage: b.GetStage(), Platform: b.GetPlatform()})
	}
	return out
}

// triggerType is the BaseImageTriggerType of t.
func triggerType(t *proto.Task) string {
	if t.GetBaseImageTriggerAll() {
		return triggerAll
	}
	return triggerRuntime
}

func boolPtr(b bool) *bool { return &b }

// or returns *b, or def when b is nil.
func or(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// taskOf checks req and returns the task it creates, defaults filled in, stamped with now. Tag templates are
// checked against registry; a host network is refused unless allowHost.
func taskOf(req Task, registry string, allowHost bool, now time.Time) (*proto.Task, error) {
	if err := store.CheckTaskName(req.Name); err != nil {
		return nil, err
	}
	t := &proto.Task{
		Name:                req.Name,
		Target:              req.Target,
		Platform:            req.Platform,
		Push:                or(req.Push, true),
		CommitTrigger:       or(req.CommitTrigger, true),
		PullRequestTrigger:  or(req.PullRequestTrigger, false),
		TagTrigger:          or(req.TagTrigger, false),
		LatestOnly:          or(req.LatestOnly, true),
		PushPullRequests:    or(req.PushPullRequests, false),
		BaseImageTriggerOff: !or(req.BaseImageTrigger, true),
		GitToken:            req.GitToken,
		WebhookSecret:       req.WebhookSecret,
		CreatedAt:           timestamppb.New(now),
		UpdatedAt:           timestamppb.New(now),
	}
	if req.Context == "" {
		return nil, proto.Errorf(proto.Invalid, "a task needs a context: the URL of its git repository, https://host/owner/repo.git#branch:subdir")
	}
	if t.WebhookSecret == "" {
		t.WebhookSecret = rand.Text()
	}
	// The other fields are checked as a patch would set them, so that create and update agree.
	patch := TaskPatch{Context: &req.Context, Dockerfile: &req.Dockerfile, Tags: &req.Tags, BuildArgs: &req.BuildArgs,
		Timeout: &req.Timeout, PathFilters: &req.PathFilters, BaseImageTriggerType: &req.BaseImageTriggerType,
		Network: &req.Network}
	apply, err := patchOf(patch, registry, allowHost)
	if err != nil {
		return nil, err
	}
	apply(t)
	if t.Timers, err = timersOf(req.Timers); err != nil {
		return nil, err
	}
	return t, nil
}

// patchOf checks p and returns the function that applies it to a task. It does not touch UpdatedAt. A host
// network is refused unless allowHost.
func patchOf(p TaskPatch, registry string, allowHost bool) (func(t *proto.Task), error) {
	var steps []func(t *proto.Task)
	set := func(step func(t *proto.Task)) { steps = append(steps, step) }
	if p.Context != nil {
		src, err := ParseGitContext(*p.Context)
		if err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.Source = src })
	}
	if p.Dockerfile != nil {
		df, err := cleanDockerfile(*p.Dockerfile)
		if err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.Dockerfile = df })
	}
	if p.Tags != nil {
		if err := tags.Check(*p.Tags, registry); err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.Tags = *p.Tags })
	}
	if p.BuildArgs != nil {
		if err := checkBuildArgs(*p.BuildArgs); err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.BuildArgs = *p.BuildArgs })
	}
	if p.Timeout != nil {
		timeout, err := checkTimeout(*p.Timeout)
		if err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.TimeoutSeconds = timeout })
	}
	if p.PathFilters != nil {
		if err := checkPathFilters(*p.PathFilters); err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.PathFilters = *p.PathFilters })
	}
	if p.BaseImageTriggerType != nil {
		all, err := checkTriggerType(*p.BaseImageTriggerType)
		if err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.BaseImageTriggerAll = all })
	}
	if p.Network != nil {
		network, err := proto.ParseNetwork("network", *p.Network, allowHost)
		if err != nil {
			return nil, err
		}
		set(func(t *proto.Task) { t.Network = network })
	}
	if p.WebhookSecret != nil && *p.WebhookSecret == "" {
		return nil, proto.Errorf(proto.Invalid, "webhookSecret cannot be empty: a webhook must be signed")
	}
	for _, f := range []struct {
		from *string
		to   func(t *proto.Task) *string
	}{
		{p.Target, func(t *proto.Task) *string { return &t.Target }},
		{p.Platform, func(t *proto.Task) *string { return &t.Platform }},
		{p.GitToken, func(t *proto.Task) *string { return &t.GitToken }},
		{p.WebhookSecret, func(t *proto.Task) *string { return &t.WebhookSecret }},
	} {
		if f.from != nil {
			set(func(t *proto.Task) { *f.to(t) = *f.from })
		}
	}
	for _, f := range []struct {
		from *bool
		to   func(t *proto.Task) *bool
	}{
		{p.Push, func(t *proto.Task) *bool { return &t.Push }},
		{p.CommitTrigger, func(t *proto.Task) *bool { return &t.CommitTrigger }},
		{p.PullRequestTrigger, func(t *proto.Task) *bool { return &t.PullRequestTrigger }},
		{p.TagTrigger, func(t *proto.Task) *bool { return &t.TagTrigger }},
		{p.LatestOnly, func(t *proto.Task) *bool { return &t.LatestOnly }},
		{p.PushPullRequests, func(t *proto.Task) *bool { return &t.PushPullRequests }},
	} {
		if f.from != nil {
			set(func(t *proto.Task) { *f.to(t) = *f.from })
		}
	}
	if p.BaseImageTrigger != nil {
		set(func(t *proto.Task) { t.BaseImageTriggerOff = !*p.BaseImageTrigger })
	}
	return func(t *proto.Task) {
		for _, step := range steps {
			step(t)
		}
	}, nil
}

// checkPathFilters refuses a path filter that is empty or not a valid glob.
func checkPathFilters(globs []string) error {
	for _, g := range globs {
		if _, err := path.Match(g, ""); g == "" || err != nil {
			return proto.Errorf(proto.Invalid, "path filter %q is not a valid glob", g)
		}
	}
	return nil
}

// checkTriggerType reports whether the base image trigger type s tracks all bases: "all" does, "runtime" or ""
// does not, and anything else is proto.Invalid.
func checkTriggerType(s string) (all bool, err error) {
	switch s {
	case "", triggerRuntime:
		return false, nil
	case triggerAll:
		return true, nil
	}
	return false, proto.Errorf(proto.Invalid, "baseImageTriggerType %q is not %q or %q", s, triggerRuntime, triggerAll)
}
