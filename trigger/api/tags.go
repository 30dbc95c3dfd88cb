package api

import (
	"strings"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/proto"
)

// runDateLayout is how {{.Run.Date}} reads: the queued time in UTC, in ACR's style (20190503-043342z).
const runDateLayout = "20060102-150405z"

// tagData is what a tag template sees.
type tagData struct {
	Run tagRun
}

// tagRun is {{.Run}} in a tag template.
type tagRun struct {
	ID       string // the run's ID
	Date     string // the queued time in UTC, as runDateLayout
	Registry string // the server's default registry
}

// renderTags renders every tag template for run id, queued at queued, and qualifies the results with
// registry. A template that fails, or a result that is not a full tag reference, is a proto.Invalid error
// naming the tag.
func renderTags(tags []string, id string, queued time.Time, registry string) ([]string, error) {
	data := tagData{Run: tagRun{ID: id, Date: queued.UTC().Format(runDateLayout), Registry: registry}}
	out := make([]string, 0, len(tags))
	for _, tag := range tags {
		ref, err := renderTag(tag, data)
		if err != nil {
			return nil, err
		}
		out = append(out, qualify(ref, registry))
		if _, err := name.NewTag(out[len(out)-1], name.StrictValidation); err != nil {
			return nil, proto.Errorf(proto.Invalid, "tag %q is not a valid image reference (registry/repository:tag): %w", tag, err)
		}
	}
	return out, nil
}

// renderTag executes one tag template over data.
func renderTag(tag string, data tagData) (string, error) {
	tmpl, err := template.New("tag").Option("missingkey=error").Parse(tag)
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "tag %q is not a valid template: %w", tag, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
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
