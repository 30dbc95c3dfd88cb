package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// githubEnvelope is the part of a GitHub or Gitea payload read before the signature is checked: the
// repository, whose tasks hold the secrets to check it with. Every event about a repository has it.
type githubEnvelope struct {
	Repository struct {
		CloneURL string `json:"clone_url"`
		HTMLURL  string `json:"html_url"`
		SSHURL   string `json:"ssh_url"`
		GitURL   string `json:"git_url"`
	} `json:"repository"`
	// TotalCommits is how many commits a Gitea or Forgejo push had, when it lists fewer; GitHub does not say.
	TotalCommits int `json:"total_commits"`
}

// serveGitHub handles POST /v1/webhooks/github: a delivery from GitHub, Gitea or Forgejo.
func (h *Handler) serveGitHub(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	event := github.WebHookType(r)
	if event == "" {
		writeError(w, proto.Errorf(proto.Invalid, "the delivery has no %s header", github.EventTypeHeader))
		return
	}
	body, err := readBody(w, r, h.cfg.MaxBody)
	if err != nil {
		writeError(w, err)
		return
	}
	payload, mediaType, err := githubPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeError(w, err)
		return
	}
	var env githubEnvelope
	if err := json.Unmarshal(payload, &env); err != nil {
		writeError(w, proto.Errorf(proto.Invalid, "the %s payload is not the JSON of a webhook event: %w", event, err))
		return
	}
	repo := newRepository(env.Repository.CloneURL, env.Repository.HTMLURL, env.Repository.SSHURL, env.Repository.GitURL)
	if len(repo.urls) == 0 {
		if event == "ping" { // an organization's hook says hello: no repository, no task, nothing to prove
			writeJSON(w, http.StatusOK, answer{Message: "pong"})
			return
		}
		writeJSON(w, http.StatusAccepted, answer{Ignored: fmt.Sprintf("the %s delivery names no repository", event)})
		return
	}
	candidates, err := h.tasksFor(ctx, repo)
	if err != nil {
		h.log.ErrorContext(ctx, "a webhook delivery failed", "source", "github", "event", event, "err", err)
		writeError(w, err)
		return
	}
	if len(candidates) == 0 {
		status := http.StatusAccepted
		if event == "ping" { // the hook works; what it will deliver starts nothing yet
			status = http.StatusOK
		}
		writeJSON(w, status, answer{Ignored: "no task builds " + repo.name})
		return
	}
	signature := r.Header.Get(github.SHA256SignatureHeader)
	tasks, err := prove(repo, candidates, github.SHA256SignatureHeader, signature, func(secret string) bool {
		return githubSignatureOK(mediaType, body, signature, secret)
	})
	if err != nil {
		h.log.WarnContext(ctx, "a webhook delivery was refused", "source", "github", "event", event,
			"delivery", github.DeliveryID(r), "repository", repo.name, "remote", r.RemoteAddr, "err", err)
		writeError(w, err)
		return
	}
	if event == "ping" {
		writeJSON(w, http.StatusOK, answer{Message: "pong: Kiln accepts this hook's deliveries of " + repo.name})
		return
	}
	c, ignored, err := githubChange(event, payload, env.TotalCommits)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case ignored != "":
		writeJSON(w, http.StatusAccepted, answer{Ignored: ignored})
		return
	}
	h.start(ctx, w, delivery{source: "github", id: github.DeliveryID(r), event: event, repo: repo, tasks: tasks}, c)
}

// githubChange reads a GitHub, Gitea or Forgejo event: the change it asks for, or why it asks for none. Only
// push and pull_request events start runs; no other is decoded.
func githubChange(event string, payload []byte, totalCommits int) (c change, ignored string, err error) {
	if event != "push" && event != "pull_request" {
		return change{}, fmt.Sprintf("%s events start no runs", event), nil
	}
	ev, err := github.ParseWebHook(event, payload)
	if err != nil {
		return change{}, "", proto.Errorf(proto.Invalid, "decoding the %s event: %w", event, err)
	}
	switch e := ev.(type) {
	case *github.PushEvent:
		return githubPush(e, totalCommits)
	case *github.PullRequestEvent:
		return githubPullRequest(e)
	}
	return change{}, fmt.Sprintf("%s events start no runs", event), nil
}

// githubPush reads a push: a branch or tag that moved to a commit. Gitea sends no "deleted"; its deletions, like
// GitHub's, move the ref to the zero commit.
func githubPush(e *github.PushEvent, totalCommits int) (change, string, error) {
	if e.GetDeleted() {
		return change{}, fmt.Sprintf("%s was deleted: nothing to build", e.GetRef()), nil
	}
	c, ignored := pushChange(e.GetRef(), e.GetAfter())
	if ignored != "" {
		return change{}, ignored, nil
	}
	if id := e.GetHeadCommit().GetID(); c.trigger == proto.Trigger_TAG && id != "" {
		c.commit = id // an annotated tag's "after" is the tag object; head_commit is the commit it tags
	}
	c.before = e.GetBefore()
	c.pusher = e.GetPusher().GetName()
	if c.pusher == "" {
		c.pusher = e.GetSender().GetLogin()
	}
	c.defaultBranch = e.GetRepo().GetDefaultBranch()
	if c.defaultBranch == "" {
		c.defaultBranch = e.GetRepo().GetMasterBranch()
	}
	var files []string
	for _, commit := range e.Commits {
		files = append(files, commit.Added...)
		files = append(files, commit.Modified...)
		files = append(files, commit.Removed...)
	}
	c.setFiles(len(e.Commits), totalCommits, files)
	return c, "", nil
}

// githubPullRequest reads a pull request event. Opening, reopening and new commits build the pull request's
// head commit, fetched from refs/pull/N/head of the base repository, which holds it even when it comes from
// a fork. Gitea and Forgejo say "synchronized" where GitHub says "synchronize".
func githubPullRequest(e *github.PullRequestEvent) (change, string, error) {
	action := e.GetAction()
	switch action {
	case "opened", "reopened", "synchronize", "synchronized":
	default:
		return change{}, fmt.Sprintf("pull request action %q starts no runs", action), nil
	}
	pr := e.GetPullRequest()
	n := int64(e.GetNumber())
	if n == 0 {
		n = int64(pr.GetNumber())
	}
	head, base := pr.GetHead().GetSHA(), pr.GetBase().GetRef()
	if n <= 0 || head == "" || base == "" {
		return change{}, "", proto.Errorf(proto.Invalid,
			"the pull_request event lacks the pull request's number, head commit or base branch")
	}
	return change{
		trigger:       proto.Trigger_PULL_REQUEST,
		ref:           fmt.Sprintf("refs/pull/%d/head", n),
		name:          base,
		commit:        head,
		pusher:        e.GetSender().GetLogin(),
		pullRequest:   n,
		defaultBranch: e.GetRepo().GetDefaultBranch(),
		action:        action,
	}, "", nil
}
