package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/kilnbuild/kiln/proto"
)

// The headers GitLab sends with a hook.
const (
	gitlabEventHeader    = "X-Gitlab-Event"
	gitlabTokenHeader    = "X-Gitlab-Token"
	gitlabDeliveryHeader = "X-Gitlab-Event-UUID"
	// gitlabIdempotencyHeader names a delivery across its retries and resends (GitLab 17.4 and later), where
	// X-Gitlab-Event-UUID is new on each.
	gitlabIdempotencyHeader = "Idempotency-Key"
)

// gitlabHook is the part of a GitLab push, tag push or merge request hook Kiln reads. Every GitLab hook about
// a project has its project; a merge request hook's project is the target project, whose repository holds
// the merge request's head.
type gitlabHook struct {
	Ref          string `json:"ref"`
	Before       string `json:"before"`
	After        string `json:"after"`
	CheckoutSHA  string `json:"checkout_sha"`
	UserUsername string `json:"user_username"`
	UserName     string `json:"user_name"`
	Project      struct {
		GitHTTPURL    string `json:"git_http_url"`
		WebURL        string `json:"web_url"`
		GitSSHURL     string `json:"git_ssh_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
	Commits []struct {
		Added    []string `json:"added"`
		Modified []string `json:"modified"`
		Removed  []string `json:"removed"`
	} `json:"commits"`
	TotalCommitsCount int `json:"total_commits_count"`
	// User and ObjectAttributes are a merge request hook's.
	User struct {
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	ObjectAttributes gitlabMergeRequest `json:"object_attributes"`
}

// serveGitLab handles POST /v1/webhooks/gitlab: a GitLab push, tag push or merge request hook. The token is a header, so
// it is checked against every task's secret before a byte of the body is read; the body is then read within
// the memory budget, parsed once, and the tasks that build its project chosen among those the token is the
// secret of.
func (h *Handler) serveGitLab(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := work(r)
	defer cancel()
	event := r.Header.Get(gitlabEventHeader)
	if event == "" {
		writeError(w, proto.Errorf(proto.Invalid, "the delivery has no %s header", gitlabEventHeader))
		return
	}
	var read func(gitlabHook) (change, string, error)
	switch event {
	case "Push Hook", "Tag Push Hook", "Push Event": // "Push Event": the test button of older GitLab versions
		read = gitlabChange
	case "Merge Request Hook":
		read = gitlabMergeRequestChange
	default: // issues, pipelines, comments...
		writeJSON(w, http.StatusAccepted, answer{Ignored: fmt.Sprintf("%s events start no runs", event)})
		return
	}
	token := r.Header.Get(gitlabTokenHeader)
	if token == "" {
		h.refuse(ctx, w, r, "gitlab", event, errNoToken)
		return
	}
	all, err := h.st.ListTasks(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "a webhook delivery failed", "source", "gitlab", "event", event, "err", err)
		writeError(w, fmt.Errorf("listing tasks: %w", err))
		return
	}
	proven := gitlabProven(secretsOf(all), token)
	if len(proven) == 0 {
		h.refuse(ctx, w, r, "gitlab", event, errBadToken)
		return
	}
	body, release, err := h.readDelivery(r.Context(), r, io.Discard)
	defer release()
	if err != nil {
		writeError(w, err)
		return
	}
	bodyRead(w)
	p, err := decodeGitLab(event, body)
	if err != nil {
		writeError(w, err)
		return
	}
	repo := newRepository(p.Project.GitHTTPURL, p.Project.WebURL, p.Project.GitSSHURL)
	if len(repo.urls) == 0 {
		writeJSON(w, http.StatusAccepted, answer{Ignored: fmt.Sprintf("the %s names no project", event)})
		return
	}
	candidates := tasksFor(all, repo)
	if len(candidates) == 0 {
		writeJSON(w, http.StatusAccepted, answer{Ignored: "no task builds " + repo.name})
		return
	}
	tasks := provenTasks(candidates, proven)
	if len(tasks) == 0 {
		h.refuse(ctx, w, r, "gitlab", event, proto.Errorf(proto.Unauthorized,
			"the delivery's %s is not the webhook secret of a task that builds %s", gitlabTokenHeader, repo.name))
		return
	}
	c, ignored, err := read(p)
	switch {
	case err != nil:
		writeError(w, err)
		return
	case ignored != "":
		writeJSON(w, http.StatusAccepted, answer{Ignored: ignored})
		return
	}
	h.start(ctx, w, delivery{source: "gitlab", id: gitlabDeliveryID(r.Header), event: event, repo: repo, tasks: tasks}, c)
}

// gitlabDeliveryID returns the ID that names a GitLab delivery across its attempts: its Idempotency-Key, which
// a retry and a "Resend Request" repeat, else (before GitLab 17.4) its X-Gitlab-Event-UUID (GitLab 14.8 and
// later), else "". Either way the change the body describes is marked too, so a resend under a new UUID
// starts nothing new.
func gitlabDeliveryID(header http.Header) string {
	if id := header.Get(gitlabIdempotencyHeader); id != "" {
		return id
	}
	return header.Get(gitlabDeliveryHeader)
}

// decodeGitLab decodes the body of a push or tag push hook.
func decodeGitLab(event string, body []byte) (gitlabHook, error) {
	var p gitlabHook
	if err := json.Unmarshal(body, &p); err != nil {
		return gitlabHook{}, proto.Errorf(proto.Invalid, "the %s body is not the JSON of a GitLab hook: %w", event, err)
	}
	return p, nil
}

// gitlabChange reads a push or tag push hook: the change it asks for, or why it asks for none. A tag's
// checkout_sha is the commit it tags, where "after" may be an annotated tag's own object.
func gitlabChange(p gitlabHook) (change, string, error) {
	c, ignored := pushChange(p.Ref, p.After)
	if ignored != "" {
		return change{}, ignored, nil
	}
	c.before = p.Before
	if c.trigger == proto.Trigger_TAG && p.CheckoutSHA != "" {
		c.commit = p.CheckoutSHA
	}
	c.pusher = p.UserUsername
	if c.pusher == "" {
		c.pusher = p.UserName
	}
	c.defaultBranch = p.Project.DefaultBranch
	var files []string
	for _, commit := range p.Commits {
		files = append(files, commit.Added...)
		files = append(files, commit.Modified...)
		files = append(files, commit.Removed...)
	}
	c.setFiles(len(p.Commits), p.TotalCommitsCount, files)
	return c, "", nil
}
