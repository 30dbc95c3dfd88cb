package github

import (
	"context"
	"fmt"

	gh "github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// WebhookPath is where Kiln receives GitHub's webhook deliveries, under Config.PublicURL.
const WebhookPath = "/v1/webhooks/github"

// hookEvents are the events a registered webhook sends: pushes (branches and tags) and pull requests.
var hookEvents = []string{"push", "pull_request"}

// Hooks registers and deletes the repository webhooks of tasks. It is safe for concurrent use.
type Hooks struct {
	api *api
}

// NewHooks returns Hooks for the GitHub cfg names.
func NewHooks(cfg Config) *Hooks {
	return &Hooks{api: newAPI(cfg)}
}

// Register creates a webhook on t's repository that sends push and pull_request events, as JSON signed with
// t.WebhookSecret, to Config.PublicURL + WebhookPath, and returns its ID for t.GithubHookId.
//
// It returns 0 and no error, and calls nothing, when there is nothing it can do: t's repository is not on
// this GitHub, or t has no git token or no webhook secret, or Kiln has no public URL. The user then adds the
// webhook on GitHub by hand. A token GitHub refuses, or a repository it does not show the token, is a
// proto.Invalid error; GitHub not answering is proto.Unavailable.
func (h *Hooks) Register(ctx context.Context, t *proto.Task) (int64, error) {
	r, ok, err := h.api.repository(t.GetSource().GetUrl())
	if err != nil {
		return 0, err
	}
	token, secret := t.GetGitToken(), t.GetWebhookSecret()
	if !ok || token == "" || secret == "" || h.api.publicURL == "" {
		return 0, nil
	}
	c, err := h.api.client(token)
	if err != nil {
		return 0, err
	}
	hook := &gh.Hook{
		Config: &gh.HookConfig{
			URL:         gh.String(h.api.publicURL + WebhookPath),
			ContentType: gh.String("json"),
			Secret:      gh.String(secret),
			InsecureSSL: gh.String("0"),
		},
		Events: hookEvents,
		Active: gh.Bool(true),
	}
	created, _, err := c.Repositories.CreateHook(ctx, r.owner, r.name, hook)
	if err != nil {
		return 0, failure(fmt.Sprintf("creating a webhook on %s for task %s", r, t.GetName()), r, token, err)
	}
	if created.GetID() == 0 {
		return 0, proto.Errorf(proto.Internal, "creating a webhook on %s for task %s: GitHub answered without the hook's ID",
			r, t.GetName())
	}
	return created.GetID(), nil
}

// Unregister deletes the webhook t.GithubHookId from t's repository. A task without a hook ID, or whose
// repository is not on this GitHub, needs nothing; a hook GitHub no longer has is already gone, which is fine.
// A hook that cannot be deleted for want of a git token is a proto.Invalid error, so that the caller can tell
// the user to delete it by hand; other errors are as Register's.
func (h *Hooks) Unregister(ctx context.Context, t *proto.Task) error {
	id := t.GetGithubHookId()
	if id == 0 {
		return nil
	}
	r, ok, err := h.api.repository(t.GetSource().GetUrl())
	if err != nil || !ok {
		return err
	}
	token := t.GetGitToken()
	if token == "" {
		return proto.Errorf(proto.Invalid, "deleting webhook %d on %s for task %s: the task has no git token; delete the webhook on GitHub by hand",
			id, r, t.GetName())
	}
	c, err := h.api.client(token)
	if err != nil {
		return err
	}
	if _, err := c.Repositories.DeleteHook(ctx, r.owner, r.name, id); err != nil && !notFound(err) {
		return failure(fmt.Sprintf("deleting webhook %d on %s for task %s", id, r, t.GetName()), r, token, err)
	}
	return nil
}
