// Package tags renders image tags from their templates, the same way for every trigger. A tag is a Go template
// over {{.Run}}: ID, Date, Registry, and for git-triggered runs Commit, Branch, TaskName and TriggeredBy. A tag
// that names no registry gets the default one in front, as ACR prefixes its login server. Tags come from
// outside (a request, a task), so they render under taskfile/tmpl's bounds (tmpl.TagLimits), with
// text/template's own functions only, and an error quotes at most the start of the tag.
package tags

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// runDateLayout is how {{.Run.Date}} reads: the queued time in UTC, in ACR's style (20190503-043342z).
const runDateLayout = "20060102-150405z"

// data is what a tag template sees.
type data struct {
	Run Run
}

// Run is {{.Run}} in a tag template.
type Run struct {
	ID          string    // the run's ID
	Date        string    // the queued time in UTC, as runDateLayout; Render fills it from Queued
	Registry    string    // the default registry; Render fills it
	Commit      string    // the commit built, for git-triggered runs
	Branch      string    // the branch (or tag name) of the git event
	TaskName    string    // the task the run belongs to
	TriggeredBy string    // what started the run: manual, commit, pull_request, tag, base_image, timer
	Queued      time.Time `json:"-"` // when the run was queued; not a template field
}

// Render renders every tag template for run and qualifies the results with registry. A template that fails,
// or a result that is not a full tag reference, is a proto.Invalid error naming the tag.
func Render(tags []string, run Run, registry string) ([]string, error) {
	run.Date = run.Queued.UTC().Format(runDateLayout)
	run.Registry = registry
	d := data{Run: run}
	out := make([]string, 0, len(tags))
	for _, tag := range tags {
		ref, err := renderTag(tag, d)
		if err != nil {
			return nil, err
		}
		ref = qualify(ref, registry)
		if err := checkReference(tag, ref); err != nil {
			return nil, err
		}
		out = append(out, ref)
	}
	return out, nil
}

// checkReference returns a proto.Invalid error naming the tag template tag when ref, its rendering, is not a
// full tag reference. A URL (http://host/repo:1) is refused: go-containerregistry would take "http:" for a
// registry.
func checkReference(tag, ref string) error {
	if scheme, _, ok := strings.Cut(ref, "://"); ok {
		return proto.Errorf(proto.Invalid,
			"tag %s is a URL (%s://...): a tag is registry/repository:tag, with no scheme", quote(tag), tmpl.Short(scheme, maxQuoted))
	}
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return proto.Errorf(proto.Invalid, "tag %s is not a valid image reference (registry/repository:tag): %s",
			quote(tag), tmpl.Short(err.Error(), maxQuoted))
	}
	return nil
}

// Check renders tags over sample values of every field, so that a template that does not parse or names an
// unknown field is refused when it is saved (a task's tags), not when a run needs it.
func Check(tags []string, registry string) error {
	sample := Run{ID: "k1", Commit: "0123456789abcdef0123456789abcdef01234567", Branch: "main", TaskName: "task",
		TriggeredBy: "commit", Queued: time.Unix(0, 0)}
	_, err := Render(tags, sample, registry)
	return err
}

// maxQuoted is the most bytes of a tag, or of what it rendered to, an error quotes.
const maxQuoted = 120

// quote returns the start of tag, quoted, for an error.
func quote(tag string) string {
	return strconv.Quote(tmpl.Short(tag, maxQuoted))
}

// renderTag executes one tag template over d, under tmpl.TagLimits.
func renderTag(tag string, d data) (string, error) {
	t, err := tmpl.Parse("tag", tag, nil)
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "tag %s is not a valid template: %s", quote(tag), tmpl.Short(err.Error(), 2*maxQuoted))
	}
	out, err := t.Execute(context.Background(), d, tmpl.TagLimits)
	if err != nil {
		var le *tmpl.LimitError
		if errors.As(err, &le) {
			return "", proto.Errorf(proto.ErrorCode(le), "tag %s: %s", quote(tag), le.Msg)
		}
		return "", proto.Errorf(proto.Invalid, "tag %s: %s", quote(tag), tmpl.Short(err.Error(), 2*maxQuoted))
	}
	return out, nil
}

// qualify puts registry in front of ref when ref names none, the way docker tells a registry from a
// repository: the first path component is a registry when it holds a '.' or a ':' or is "localhost".
func qualify(ref, registry string) string {
	if registry == "" {
		return ref
	}
	if first, _, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	return registry + "/" + ref
}
