package webhook

import (
	"encoding/json"
	"fmt"
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

// serveGitLab handles POST /v1/webhooks/gitlab: a GitLab push, tag push or merge request hook.
func (h *Handler) serveGitLab(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
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
	body, err := readBody(w, r, h.cfg.MaxBody)
	if err != nil {
		writeError(w, err)
		return
	}
	var p gitlabHook
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, proto.Errorf(proto.Invalid, "the %s body is not the JSON of a GitLab hook: %w", event, err))
		return
	}
	repo := newRepository(p.Project.GitHTTPURL, p.Project.WebURL, p.Project.GitSSHURL)
	if len(repo.urls) == 0 {
		writeJSON(w, http.StatusAccepted, answer{Ignored: fmt.Sprintf("the %s names no project", event)})
		return
	}
	candidates, err := h.tasksFor(ctx, repo)
	if err != nil {
		h.log.ErrorContext(ctx, "a webhook delivery failed", "source", "gitlab", "event", event, "err", err)
		writeError(w, err)
		return
	}
	if len(candidates) == 0 {
		writeJSON(w, http.StatusAccepted, answer{Ignored: "no task builds " + repo.name})
		return
	}
	token := r.Header.Get(gitlabTokenHeader)
	tasks, err := prove(repo, candidates, gitlabTokenHeader, token, func(secret string) bool {
		return gitlabTokenOK(token, secret)
	})
	if err != nil {
		h.log.WarnContext(ctx, "a webhook delivery was refused", "source", "gitlab", "event", event,
			"repository", repo.name, "remote", r.RemoteAddr, "err", err)
		writeError(w, err)
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
