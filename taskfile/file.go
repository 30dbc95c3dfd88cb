package taskfile

import (
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// The defaults of a file's numbers, ACR's, and their limits, Kiln's (ACR states none): enough for any real
// step, and a mistyped number does not hold a worker for days.
const (
	defaultStepTimeout = 600 // ACR's default: 10 minutes
	maxTimeout         = 8 * 60 * 60
	maxDelay           = 60 * 60
	maxRetries         = 10
	defaultRetryDelay  = 5 // ACR waits 5 seconds between retries unless told otherwise
)

// File is a task file, read and checked, with ACR's defaults applied to every step.
type File struct {
	Version          string        // as written; v1.0.0 when the file names none
	StepTimeout      time.Duration // stepTimeout; 10 minutes by default
	WorkingDirectory string        // workingDirectory, as written: every step's unless it has its own
	Env              []string      // env, KEY=VALUE: every step's, under the step's own
	Secrets          []Secret      // secrets: the secrets of Kiln's store the file reads
	Steps            []Step        // in the file's order
}

// decodeFile reads the file's top-level fields, then its steps, which take their defaults from them.
func (l *loader) decodeFile(root *yaml.Node, version string, al *aliases) (*File, error) {
	if root == nil {
		return nil, &Error{File: l.name, Msg: "the file is empty: a task file has a list of steps"}
	}
	pairs, err := l.mapping(root, "")
	if err != nil {
		return nil, err
	}
	f := &File{Version: version, StepTimeout: defaultStepTimeout * time.Second}
	var steps *pair
	for i, p := range pairs {
		switch p.key {
		case "version":
			if _, err := l.scalar(p.v, p.key); err != nil {
				return nil, err
			}
		case "stepTimeout":
			n, err := l.integer(p.v, p.key, 0, maxTimeout, "seconds")
			if err != nil {
				return nil, err
			}
			if n > 0 {
				f.StepTimeout = time.Duration(n) * time.Second
			}
		case "workingDirectory":
			if f.WorkingDirectory, err = l.scalar(p.v, p.key); err != nil {
				return nil, err
			}
		case "env":
			if f.Env, err = l.env(p.v, p.key); err != nil {
				return nil, err
			}
		case "secrets":
			if f.Secrets, err = l.decodeSecrets(p.v); err != nil {
				return nil, err
			}
		case "steps":
			steps = &pairs[i]
		case "alias":
			if al == nil {
				return nil, l.errorf(p.k, p.key, "aliases need version: v1.1.0 at the top of the file")
			}
			return nil, l.errorf(p.k, p.key, "must begin a line of its own at the left margin (alias:), "+
				"because aliases are read before the rest of the file")
		default:
			if why, ok := rejectedTop[p.key]; ok {
				return nil, l.errorf(p.k, p.key, "not supported by Kiln (%s)", why)
			}
			return nil, l.errorf(p.k, p.key, "unknown field: a task file's fields are %s", topFieldNames)
		}
	}
	if steps == nil {
		return nil, l.errorf(root, "steps", "missing: a task file has a list of steps")
	}
	if err := l.decodeSteps(steps.v, f, al); err != nil {
		return nil, err
	}
	return f, nil
}

// env reads a list of KEY=VALUE entries.
func (l *loader) env(n *yaml.Node, field string) ([]string, error) {
	entries, nodes, err := l.list(n, field)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if why := checkEnvEntry(e); why != "" {
			return nil, l.errorf(nodes[i], field+"["+strconv.Itoa(i)+"]", "%s", why)
		}
	}
	return entries, nil
}
