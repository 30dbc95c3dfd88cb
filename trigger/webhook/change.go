package webhook

import (
	"fmt"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/kilnbuild/kiln/proto"
)

// zeroSHA is the commit a ref moves to when it is deleted.
const zeroSHA = "0000000000000000000000000000000000000000"

// maxListedCommits is how many commits GitHub and GitLab list in a push at most: a push that lists this many
// may have changed files the payload does not name.
const maxListedCommits = 20

// change is what a delivery asks Kiln to build, whichever host sent it.
type change struct {
	trigger       proto.Trigger // COMMIT, TAG or PULL_REQUEST
	ref           string        // the ref to fetch: refs/heads/main, refs/tags/v1, refs/pull/7/head
	name          string        // the branch or tag pushed; for a pull request, the branch it targets
	commit        string        // the commit to build
	pusher        string        // who pushed or opened it
	pullRequest   int64         // the pull request's number, or a GitLab merge request's IID
	defaultBranch string        // the repository's default branch, "" when the delivery does not say
	// before and after are the commits a push moved its ref from and to, as the body gives them; action is what
	// happened to a pull request ("opened", "synchronize", GitLab's "update"). With the ref and the commit they
	// name the change whichever delivery carries it (changeKey).
	before, after, action string
	// files are the paths the push changed, added, modified or removed, when filesKnown; a push whose
	// payload may not list them all (a pull request, a tag, a new branch, a long push) builds whatever its
	// path filters.
	files      []string
	filesKnown bool
}

// pushChange returns the change of a push of ref from before to after, or why it builds nothing. A deleted ref
// builds nothing; a ref that is neither a branch nor a tag (refs/notes/..., refs/pull/...) neither.
func pushChange(ref, after string) (change, string) {
	if after == "" || after == zeroSHA {
		return change{}, fmt.Sprintf("%s was deleted: nothing to build", ref)
	}
	if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return change{trigger: proto.Trigger_COMMIT, ref: ref, name: name, commit: after, after: after}, ""
	}
	if name, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return change{trigger: proto.Trigger_TAG, ref: ref, name: name, commit: after, after: after}, ""
	}
	return change{}, fmt.Sprintf("%s is neither a branch nor a tag", ref)
}

// setFiles records the files a push's listed commits changed. listed is how many commits the payload lists
// and total how many the push had, when the sender says (0 when not). The files are known only when the
// payload lists every commit: not when it lists none (a new branch or a force push to an older commit), not
// when it lists as many as senders list at most, and not when the sender says there were more.
func (c *change) setFiles(listed, total int, files []string) {
	c.files = files
	c.filesKnown = listed > 0 && listed < maxListedCommits && total <= listed
}

// branchKey names the line of work the change belongs to, for superseding older queued runs: the branch or
// tag name, or pr/N for a GitHub pull request, as workers name it from a run's ref. Workers name a GitLab merge
// request's line by its whole ref, refs/merge-requests/N/head, and so does this.
func (c change) branchKey() string {
	if c.trigger == proto.Trigger_PULL_REQUEST {
		if !strings.HasPrefix(c.ref, "refs/pull/") {
			return c.ref
		}
		return fmt.Sprintf("pr/%d", c.pullRequest)
	}
	return c.name
}

// tagBranch is {{.Run.Branch}} for the change's runs: the branch or tag name, and pr-N for a pull request,
// so that a template like app:{{.Run.Branch}} never gives a pull request's untrusted build the tag of its base
// branch's images.
func (c change) tagBranch() string {
	if c.trigger == proto.Trigger_PULL_REQUEST {
		return fmt.Sprintf("pr-%d", c.pullRequest)
	}
	return c.name
}

// triggeredBy is {{.Run.TriggeredBy}} for the change's runs.
func (c change) triggeredBy() string {
	switch c.trigger {
	case proto.Trigger_TAG:
		return "tag"
	case proto.Trigger_PULL_REQUEST:
		return "pull_request"
	}
	return "commit"
}

// skipReason returns why task starts no run for c, or "" when it does.
func skipReason(task *proto.Task, c change) string {
	switch c.trigger {
	case proto.Trigger_COMMIT:
		if !task.GetCommitTrigger() {
			return "its commit trigger is off"
		}
		if why := branchMismatch(task, c); why != "" {
			return why
		}
		return pathFilterMiss(task, c)
	case proto.Trigger_TAG:
		if !task.GetTagTrigger() {
			return "its tag trigger is off"
		}
		return ""
	case proto.Trigger_PULL_REQUEST:
		if !task.GetPullRequestTrigger() {
			return "its pull request trigger is off"
		}
		return branchMismatch(task, c)
	}
	return fmt.Sprintf("%s is not a git trigger", c.trigger)
}

// branchMismatch returns why c, a push to a branch or a pull request against one, is not on task's branch, or
// "" when it is. A task's branch is its source ref ("main" or "refs/heads/main"), or the repository's default
// branch when the ref is empty.
func branchMismatch(task *proto.Task, c change) string {
	branch := strings.TrimPrefix(task.GetSource().GetRef(), "refs/heads/")
	if branch == "" {
		if c.defaultBranch == "" {
			return "it builds the repository's default branch, which the delivery does not name"
		}
		branch = c.defaultBranch
	}
	if branch != c.name {
		return fmt.Sprintf("it builds branch %s, not %s", branch, c.name)
	}
	return ""
}

// pathFilterMiss returns why c touches none of task's path filters, or "" when it touches one, the task has
// none, or c's files are not all known. Filters are globs relative to the repository's root, ** included,
// as .dockerignore reads them; a path matches when it or a directory above it does. A filter that does not
// compile cannot rule a push out: it builds.
func pathFilterMiss(task *proto.Task, c change) string {
	filters := task.GetPathFilters()
	if len(filters) == 0 || !c.filesKnown {
		return ""
	}
	pm, err := patternmatcher.New(filters)
	if err != nil {
		return ""
	}
	for _, f := range c.files {
		if ok, err := pm.MatchesOrParentMatches(f); ok || err != nil {
			return ""
		}
	}
	return fmt.Sprintf("the push changed no file its path filters %s match", strings.Join(filters, ", "))
}
