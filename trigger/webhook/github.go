package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// githubEnvelope is the part of a GitHub, Gitea or Forgejo payload every event about a repository has.
type githubEnvelope struct {
	Repository struct {
		CloneURL string `json:"clone_url"`
		HTMLURL  string `json:"html_url"`
		SSHURL   string `json:"ssh_url"`
		GitURL   string `json:"git_url"`
	} `json:"repository"`
}

// githubPushPayload is a push as GitHub, Gitea and Forgejo send it. TotalCommits is how many commits a
// Gitea or Forgejo push had, when it lists fewer; GitHub does not say.
type githubPushPayload struct {
	github.PushEvent
	TotalCommits int `json:"total_commits"`
}

// githubEvent is a delivery's payload, decoded once: the repository it is about and, for the events that
// start runs, the event.
type githubEvent struct {
	repo repository
	push *githubPushPayload       // a push event
	pr   *github.PullRequestEvent // a pull_request event
}

// decodeGitHub decodes the payload of a delivery of event. Only push and pull_request events are decoded
// whole; of any other, only the repository is read.
func decodeGitHub(event string, payload []byte) (githubEvent, error) {
	var e githubEvent
	var env githubEnvelope
	var err error
	switch event {
	case "push":
		e.push = new(githubPushPayload)
		err = json.Unmarshal(payload, e.push)
	case "pull_request":
		e.pr = new(github.PullRequestEvent)
		err = json.Unmarshal(payload, e.pr)
	default:
		err = json.Unmarshal(payload, &env)
	}
	if err != nil {
		return githubEvent{}, proto.Errorf(proto.Invalid, "the %s payload is not the JSON of a webhook event: %w", event, err)
	}
	r := env.Repository
	switch {
	case e.push != nil && e.push.Repo != nil:
		p := e.push.Repo
		e.repo = newRepository(p.GetCloneURL(), p.GetHTMLURL(), p.GetSSHURL(), p.GetGitURL())
	case e.pr != nil && e.pr.Repo != nil:
		p := e.pr.Repo
		e.repo = newRepository(p.GetCloneURL(), p.GetHTMLURL(), p.GetSSHURL(), p.GetGitURL())
	default:
		e.repo = newRepository(r.CloneURL, r.HTMLURL, r.SSHURL, r.GitURL)
	}
	return e, nil
}

// serveGitHub handles POST /v1/webhooks/github: a delivery from GitHub, Gitea or Forgejo. Nothing of the body
// is believed before its signature is proven: the signatures come from the headers, the secrets from every
// task, and the body is hashed under each secret as it streams in, within the memory budget. Only then is
// it parsed, once, and the tasks that build its repository chosen among those whose secret signed it.
func (h *Handler) serveGitHub(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := work(r)
	defer cancel()
	event := github.WebHookType(r)
	if event == "" {
		writeError(w, proto.Errorf(proto.Invalid, "the delivery has no %s header", github.EventTypeHeader))
		return
	}
	mediaType, err := payloadMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, err)
		return
	}
	sigs, err := readSignatures(r.Header)
	if err != nil {
		h.refuse(ctx, w, r, "github", event, err)
		return
	}
	all, err := h.st.ListTasks(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "a webhook delivery failed", "source", "github", "event", event, "err", err)
		writeError(w, fmt.Errorf("listing tasks: %w", err))
		return
	}
	secrets := secretsOf(all)
	if len(secrets) == 0 {
		h.refuse(ctx, w, r, "github", event, errBadSignature)
		return
	}
	v := newVerifier(secrets, mediaType)
	body, release, err := h.readDelivery(r.Context(), r, v)
	defer release()
	if err != nil {
		writeError(w, err)
		return
	}
	bodyRead(w)
	proven := v.proven(sigs)
	if len(proven) == 0 {
		h.refuse(ctx, w, r, "github", event, errBadSignature)
		return
	}
	payload := body
	if mediaType == mediaForm {
		if payload, err = formValue(body); err != nil {
			writeError(w, err)
			return
		}
	}
	e, err := decodeGitHub(event, payload)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(e.repo.urls) == 0 {
		if event == "ping" { // an organization's hook says hello: no repository, no task
			writeJSON(w, http.StatusOK, answer{Message: "pong"})
			return
		}
		writeJSON(w, http.StatusAccepted, answer{Ignored: fmt.Sprintf("the %s delivery names no repository", event)})
		return
	}
	candidates := tasksFor(all, e.repo)
	if len(candidates) == 0 {
		status := http.StatusAccepted
		if event == "ping" { // the hook works; what it will deliver starts nothing yet
			status = http.StatusOK
		}
		writeJSON(w, status, answer{Ignored: "no task builds " + e.repo.name})
		return
	}
	tasks := provenTasks(candidates, proven)
	if len(tasks) == 0 {
		h.refuse(ctx, w, r, "github", event, proto.Errorf(proto.Unauthorized,
			"the delivery's signature is not that of the webhook secret of a task that builds %s", e.repo.name))
		return
	}
	if event == "ping" {
		writeJSON(w, http.StatusOK, answer{Message: "pong: Kiln accepts this hook's deliveries of " + e.repo.name})
		return
	}
	c, ignored, err := githubChange(event, e)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case ignored != "":
		writeJSON(w, http.StatusAccepted, answer{Ignored: ignored})
		return
	}
	h.start(ctx, w, delivery{source: "github", id: github.DeliveryID(r), event: event, repo: e.repo, tasks: tasks}, c)
}

// githubChange reads a GitHub, Gitea or Forgejo event: the change it asks for, or why it asks for none. Only
// push and pull_request events start runs.
func githubChange(event string, e githubEvent) (c change, ignored string, err error) {
	switch {
	case e.push != nil:
		return githubPush(&e.push.PushEvent, e.push.TotalCommits)
	case e.pr != nil:
		return githubPullRequest(e.pr)
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
