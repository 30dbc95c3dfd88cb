package taskfile

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Step is one step of a task file, with the file's defaults applied: exactly one of Build, Cmd and Push is set.
type Step struct {
	ID   string // id, or acb_step_N (N counting from 0 in the file's order) as in ACR
	Line int    // where the step begins in the rendered file

	Build *Build
	Cmd   *Cmd
	Push  []string // the images to push, as written, each once

	When  []string // when, as written: ["-"], step ids, or nothing
	After []int    // the indexes in File.Steps of the steps it waits for: none to start at once

	Env []string // KEY=VALUE: the file's env under the step's own. A build step's is only for --build-arg KEY.
	// WorkingDirectory is where a cmd step runs and a build step's relative context is: the step's
	// workingDirectory, else the file's, else Workspace; a relative one is inside Workspace. It is "" for a
	// push step, and for a cmd step with disableWorkingDirectoryOverride and no workingDirectory of its own,
	// which runs in its image's WORKDIR.
	WorkingDirectory string
	EntryPoint       string // a cmd step's entryPoint: the executable that replaces its image's entrypoint
	User             string // a cmd step's user: a name or UID[:GID], "" for its image's
	Pull             bool   // pull: fetch the image again even if cached; a build step has it as Build.Pull

	Timeout      time.Duration // timeout, else the file's StepTimeout
	StartDelay   time.Duration // startDelay: how long to wait once the step may start
	Retries      int           // retries: how many times to run a failed step again
	RetryDelay   time.Duration // retryDelay: 5 seconds unless given, as in ACR
	IgnoreErrors bool          // ignoreErrors: the step counts as succeeded even when it fails
}

// Kind returns "build", "cmd" or "push".
func (s *Step) Kind() string {
	switch {
	case s.Build != nil:
		return "build"
	case s.Cmd != nil:
		return "cmd"
	}
	return "push"
}

// stepID is the rule of step ids: ACR uses an id as the name of the step's container, so Kiln takes the ids a
// container can be named.
var stepID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// decodeSteps reads the file's steps and resolves what each waits for.
func (l *loader) decodeSteps(n *yaml.Node, f *File, al *aliases) error {
	if n.Kind != yaml.SequenceNode {
		return l.errorf(n, "steps", "must be a list of steps, not %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return l.errorf(n, "steps", "lists no steps")
	}
	whens := make([][]*yaml.Node, len(n.Content))
	idNodes := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		s, when, id, err := l.decodeStep(i, resolveAlias(item), f, al)
		if err != nil {
			return err
		}
		f.Steps = append(f.Steps, s)
		whens[i], idNodes[i] = when, id
	}
	return l.resolveWhen(f.Steps, whens, idNodes)
}

// rawStep is a step as the file writes it, before ACR's defaults, with the nodes errors point at.
type rawStep struct {
	Step
	kind                            *pair // the build, cmd or push entry
	text                            string
	env                             []string
	dir                             string
	ownDir, noOverride              bool
	noCache                         bool // cache: disabled
	timeout, startDelay, retryDelay int
	whenNodes                       []*yaml.Node
	idNode                          *yaml.Node
}

// decodeStep reads step i, returning it with the nodes of its when entries and of its id, if it has them.
func (l *loader) decodeStep(i int, n *yaml.Node, f *File, al *aliases) (Step, []*yaml.Node, *yaml.Node, error) {
	field := "steps[" + strconv.Itoa(i) + "]"
	pairs, err := l.mapping(n, field)
	if err != nil {
		return Step{}, nil, nil, err
	}
	r := &rawStep{Step: Step{Line: n.Line}}
	if r.kind, err = l.stepKind(n, field, pairs); err != nil {
		return Step{}, nil, nil, err
	}
	for _, p := range pairs {
		if err := l.stepField(r, p, join(field, p.key)); err != nil {
			return Step{}, nil, nil, err
		}
	}
	s, err := l.finishStep(r, i, f, al, join(field, r.kind.key))
	return s, r.whenNodes, r.idNode, err
}

// stepKind returns the step's build, cmd or push entry, after checking that every field is one Kiln reads for
// that kind of step.
func (l *loader) stepKind(n *yaml.Node, field string, pairs []pair) (*pair, error) {
	var kind *pair
	for j, p := range pairs {
		if _, ok := stepFields[p.key]; !ok {
			if why, ok := rejectedStep[p.key]; ok {
				return nil, l.errorf(p.k, join(field, p.key), "not supported by Kiln (%s)", why)
			}
			return nil, l.errorf(p.k, join(field, p.key), "unknown field: a step's fields are %s", stepFieldNames)
		}
		if p.key == "build" || p.key == "cmd" || p.key == "push" {
			if kind != nil {
				return nil, l.errorf(p.k, join(field, p.key), "a step is one of build, cmd or push, "+
					"and this one is both %s and %s", kind.key, p.key)
			}
			kind = &pairs[j]
		}
	}
	if kind == nil {
		return nil, l.errorf(n, field, "a step is one of build, cmd or push, and this one has none of them")
	}
	for _, p := range pairs {
		if kinds := stepFields[p.key]; kinds != "" && !strings.Contains(" "+kinds+" ", " "+kind.key+" ") {
			return nil, l.errorf(p.k, join(field, p.key), "applies to %s steps, and this is a %s step",
				strings.ReplaceAll(kinds, " ", " and "), kind.key)
		}
	}
	return kind, nil
}

// stepField reads one field of a step into r, checking its value.
func (l *loader) stepField(r *rawStep, p pair, name string) error {
	var err error
	switch p.key {
	case "id":
		r.idNode = p.v
		if r.ID, err = l.scalar(p.v, name); err == nil && !stepID.MatchString(r.ID) {
			err = l.errorf(p.v, name, "%q is not a step id: an id is letters, digits, '_', '.' or '-', "+
				"starting with a letter or digit, as a container's name", r.ID)
		}
	case "build", "cmd":
		r.text, err = l.scalar(p.v, name)
	case "push":
		r.Push, err = l.push(p.v, name)
	case "when":
		r.When, r.whenNodes, err = l.list(p.v, name)
	case "env":
		r.env, err = l.env(p.v, name)
	case "workingDirectory":
		r.dir, err = l.scalar(p.v, name)
		r.ownDir = true
	case "entryPoint":
		r.EntryPoint, err = l.scalar(p.v, name)
	case "user":
		r.User, err = l.scalar(p.v, name)
	case "pull":
		r.Pull, err = l.boolean(p.v, name)
	case "disableWorkingDirectoryOverride":
		r.noOverride, err = l.boolean(p.v, name)
	case "timeout":
		r.timeout, err = l.integer(p.v, name, 0, maxTimeout, "seconds")
	case "startDelay":
		r.startDelay, err = l.integer(p.v, name, 0, maxDelay, "seconds")
	case "retries":
		r.Retries, err = l.integer(p.v, name, 0, maxRetries, "retries")
	case "retryDelay":
		r.retryDelay, err = l.integer(p.v, name, 0, maxDelay, "seconds")
	case "ignoreErrors":
		r.IgnoreErrors, err = l.boolean(p.v, name)
	case "cache":
		var v string
		if v, err = l.scalar(p.v, name); err == nil {
			switch strings.ToLower(v) {
			case "enabled":
			case "disabled":
				r.noCache = true
			default:
				err = l.errorf(p.v, name, "must be enabled or disabled, not %s", describe(p.v))
			}
		}
	}
	return err
}

// finishStep applies ACR's defaults to step i and reads its build, cmd or push; name is that field's path.
func (l *loader) finishStep(r *rawStep, i int, f *File, al *aliases, name string) (Step, error) {
	s := r.Step
	if s.ID == "" {
		s.ID = "acb_step_" + strconv.Itoa(i)
	}
	s.Env = mergeEnv(f.Env, r.env)
	s.Timeout = f.StepTimeout
	if r.timeout > 0 {
		s.Timeout = time.Duration(r.timeout) * time.Second
	}
	s.StartDelay = time.Duration(r.startDelay) * time.Second
	s.RetryDelay = defaultRetryDelay * time.Second
	if r.retryDelay > 0 {
		s.RetryDelay = time.Duration(r.retryDelay) * time.Second
	}
	if r.kind.key != "push" {
		dir := r.dir
		switch {
		case r.ownDir, r.noOverride:
		case f.WorkingDirectory != "":
			dir = f.WorkingDirectory
		default:
			dir = Workspace
		}
		if dir != "" && !path.IsAbs(dir) {
			dir = path.Join(Workspace, dir)
		}
		s.WorkingDirectory = dir
	}

	var err error
	switch r.kind.key {
	case "build":
		if strings.TrimSpace(r.text) == "" {
			return s, l.errorf(r.kind.v, name, "is empty: it is a docker build command line, as -t app:1 .")
		}
		if s.Build, err = parseBuild(r.text, s.Env); err != nil {
			return s, l.errorf(r.kind.v, name, "%v", err)
		}
		s.Build.Pull = s.Build.Pull || s.Pull
		s.Build.NoCache = s.Build.NoCache || r.noCache
	case "cmd":
		text := r.text
		if al != nil {
			text = al.expandCmd(text)
		}
		if s.Cmd, err = parseCmd(text); err != nil {
			return s, l.errorf(r.kind.v, name, "%v", err)
		}
	case "push":
		if len(s.Push) == 0 {
			return s, l.errorf(r.kind.v, name, "lists no images: push: [\"registry/repository:tag\"]")
		}
	}
	return s, nil
}

// push reads a push step's images: a list of tags, each pushed once.
func (l *loader) push(n *yaml.Node, field string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return nil, l.errorf(n, field, "must be a list of images, as push: [%q]", n.Value)
	}
	refs, nodes, err := l.list(n, field)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for i, ref := range refs {
		if err := checkTag(ref); err != nil {
			return nil, l.errorf(nodes[i], fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	return out, nil
}
