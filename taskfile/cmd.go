package taskfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// Cmd is a cmd step: run a container of Image with Args, as docker run IMAGE ARGS... does. Args go to the
// image's entrypoint (or the step's entryPoint) as they are: nothing expands $VAR in them.
type Cmd struct {
	Image string // as written: a reference with no registry is Docker Hub's, as in docker run
	Args  []string
}

// ParseCmd reads "IMAGE [ARGS...]", the text of a cmd step and of kiln run --cmd, splitting it into words as a
// shell does (quotes group, nothing expands). It returns an *Error naming the field cmd.
func ParseCmd(s string) (*Cmd, error) {
	c, err := parseCmd(s)
	if err != nil {
		return nil, &Error{Field: "cmd", Msg: err.Error()}
	}
	return c, nil
}

// parseCmd is ParseCmd with an error that says what is wrong and not where.
func parseCmd(s string) (*Cmd, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("is empty: it is IMAGE [ARGS...], as in cmd: bash echo hello")
	}
	if err := checkImage(words[0]); err != nil {
		return nil, err
	}
	c := &Cmd{Image: words[0], Args: words[1:]}
	if named, err := reference.ParseNormalizedNamed(c.Image); err == nil && reference.FamiliarName(named) == "docker" {
		return nil, fmt.Errorf("%q runs the docker CLI, which needs a Docker daemon, and Kiln has none: steps run "+
			"on BuildKit. Build an image with a build step (build: -t IMAGE -f Dockerfile .), push it with a push "+
			"step, and run one with a cmd step that names it (cmd: IMAGE ARGS...)", tmpl.Short(s, 60))
	}
	return c, nil
}

// Ref returns the image as docker run pulls it: a name with no registry is Docker Hub's, and one with neither
// tag nor digest is :latest, so busybox is docker.io/library/busybox:latest. A name with a registry stays as
// it is but for the :latest, so the run's own registry is named as the file names it. The worker looks the
// step's image up among those the run built first, by the image as written (qualified as tags are).
func (c *Cmd) Ref() string {
	named, err := reference.ParseNormalizedNamed(c.Image)
	if err != nil {
		return c.Image // ParseCmd took it; BuildKit will say what is wrong with it
	}
	return reference.TagNameOnly(named).String()
}

// checkImage returns an error unless ref is an image reference, by tag or by digest.
func checkImage(ref string) error {
	r, err := name.ParseReference(ref)
	if err == nil {
		err = checkRepository(r.Context())
	}
	if err == nil {
		if t, ok := r.(name.Tag); ok {
			err = checkTagName(t)
		}
	}
	if err != nil {
		return fmt.Errorf("%q is not an image reference: %v", ref, err)
	}
	return nil
}

// checkTag returns an error unless ref is an image reference by tag (the tag may be left out, for latest): what
// a build names and a push pushes.
func checkTag(ref string) error {
	t, err := name.NewTag(ref)
	if err == nil {
		err = checkRepository(t.Context())
	}
	if err == nil {
		err = checkTagName(t)
	}
	if err != nil {
		if _, derr := name.NewDigest(ref); derr == nil {
			return fmt.Errorf("%q names a digest: an image is tagged and pushed by tag", ref)
		}
		return fmt.Errorf("%q is not an image tag: %v", ref, err)
	}
	return nil
}

// The grammar of a repository's path components and of tags (the distribution spec's), which go-containerregistry's
// weak validation does not check: it takes "/app" and "-t" for repositories.
var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagName       = regexp.MustCompile(`^\w[\w.-]{0,127}$`)
)

func checkRepository(r name.Repository) error {
	for _, c := range strings.Split(r.RepositoryStr(), "/") {
		if !pathComponent.MatchString(c) {
			return fmt.Errorf("%q is not a repository name: each part between slashes is lowercase letters and "+
				"digits, joined by '.', '_' or '-'", r.RepositoryStr())
		}
	}
	return nil
}

func checkTagName(t name.Tag) error {
	if !tagName.MatchString(t.TagStr()) {
		return fmt.Errorf("%q is not a tag: a tag is letters, digits, '_', '.' or '-', starting with a letter, digit or '_'", t.TagStr())
	}
	return nil
}
