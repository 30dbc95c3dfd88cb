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
)

// gitlabPush is the part of a GitLab push or tag push hook Kiln reads. Every GitLab hook about a project has
// its project.
type gitlabPush struct {
	Ref          string `json:"ref"`
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
}

// serveGitLab handles POST /v1/webhooks/gitlab: a GitLab push or tag push hook. The token is a header, so
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
	if event != "Push Hook" && event != "Tag Push Hook" { // merge requests, issues, pipelines...
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
	c, ignored := gitlabChange(p)
	if ignored != "" {
		writeJSON(w, http.StatusAccepted, answer{Ignored: ignored})
		return
	}
	// GitLab names a delivery only in recent versions; without the header redeliveries are not caught.
	id := r.Header.Get(gitlabDeliveryHeader)
	h.start(ctx, w, delivery{source: "gitlab", id: id, event: event, repo: repo, tasks: tasks}, c)
}

// decodeGitLab decodes the body of a push or tag push hook.
func decodeGitLab(event string, body []byte) (gitlabPush, error) {
	var p gitlabPush
	if err := json.Unmarshal(body, &p); err != nil {
		return gitlabPush{}, proto.Errorf(proto.Invalid, "the %s body is not the JSON of a GitLab hook: %w", event, err)
	}
	return p, nil
}

// gitlabChange reads a push or tag push hook: the change it asks for, or why it asks for none. A tag's
// checkout_sha is the commit it tags, where "after" may be an annotated tag's own object.
func gitlabChange(p gitlabPush) (change, string) {
	c, ignored := pushChange(p.Ref, p.After)
	if ignored != "" {
		return change{}, ignored
	}
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
	return c, ""
}
