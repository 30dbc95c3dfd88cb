// Package tags renders image tags from their templates, the same way for every trigger. A tag is a Go template
// over {{.Run}}: ID, Date, Registry, and for git-triggered runs Commit, Branch, TaskName and TriggeredBy. A tag
// that names no registry gets the default one in front, as ACR prefixes its login server.
package tags

import (
	"strings"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/proto"
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
			"tag %q is a URL (%s://...): a tag is registry/repository:tag, with no scheme", tag, scheme)
	}
	if _, err := name.NewTag(ref, name.StrictValidation); err != nil {
		return proto.Errorf(proto.Invalid, "tag %q is not a valid image reference (registry/repository:tag): %w", tag, err)
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

// renderTag executes one tag template over d.
func renderTag(tag string, d data) (string, error) {
	tmpl, err := template.New("tag").Option("missingkey=error").Parse(tag)
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "tag %q is not a valid template: %w", tag, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, d); err != nil {
		return "", proto.Errorf(proto.Invalid, "tag %q: %w", tag, err)
	}
	return b.String(), nil
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
