package webhook

import (
	"fmt"

	"github.com/kilnbuild/kiln/proto"
)

// gitlabMergeRequest is the part of a merge request hook's object_attributes Kiln reads.
type gitlabMergeRequest struct {
	IID          int64  `json:"iid"`
	Action       string `json:"action"`
	OldRev       string `json:"oldrev"`
	TargetBranch string `json:"target_branch"`
	LastCommit   struct {
		ID string `json:"id"`
	} `json:"last_commit"`
}

// gitlabMergeRequestChange reads a merge request hook: the change it asks for, or why it asks for none.
// Opening, reopening and new commits build the head commit of the merge request's source branch, fetched from
// refs/merge-requests/IID/head of the target project, which holds it even when it comes from a fork. GitLab
// says "update" for any change to a merge request, a title or a label as well as new commits; it sends
// object_attributes.oldrev only when the code changed.
func gitlabMergeRequestChange(p gitlabHook) (change, string, error) {
	mr := p.ObjectAttributes
	switch {
	case mr.Action == "open", mr.Action == "reopen":
	case mr.Action == "update" && mr.OldRev != "":
	case mr.Action == "update":
		return change{}, "the merge request's update brought no new commits: nothing to build", nil
	default:
		return change{}, fmt.Sprintf("merge request action %q starts no runs", mr.Action), nil
	}
	if mr.IID <= 0 || mr.LastCommit.ID == "" || mr.TargetBranch == "" {
		return change{}, "", proto.Errorf(proto.Invalid, "the Merge Request Hook lacks the merge request's "+
			"object_attributes.iid, object_attributes.last_commit.id or object_attributes.target_branch")
	}
	pusher := p.User.Username
	if pusher == "" {
		pusher = p.User.Name
	}
	return change{
		trigger:       proto.Trigger_PULL_REQUEST,
		ref:           fmt.Sprintf("refs/merge-requests/%d/head", mr.IID),
		name:          mr.TargetBranch,
		commit:        mr.LastCommit.ID,
		pusher:        pusher,
		pullRequest:   mr.IID,
		defaultBranch: p.Project.DefaultBranch,
		action:        mr.Action,
	}, "", nil
}
