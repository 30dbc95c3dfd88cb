package taskfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Build is a build step: the docker build command line of the file, read. ACR passes that line to docker build
// and so takes all of its flags; Kiln builds with BuildKit and takes the ones below, refusing any other rather
// than ignoring it.
type Build struct {
	Tags       []string          // -t, --tag (ACR also documents --image), as written: a tag with no registry goes to the default one
	Dockerfile string            // -f, --file, relative to Context; "" for Context/Dockerfile
	BuildArgs  map[string]string // --build-arg K=V, and --build-arg K with K's value in the step's env
	Labels     map[string]string // --label K=V
	Target     string            // --target
	Platform   string            // --platform, one os/arch[/variant]
	Context    string            // the one positional argument: a directory, relative to the step's working directory
	NoCache    bool              // --no-cache
	Pull       bool              // --pull, or the step's pull: true: fetch base images again even if cached
}

// buildFlag is one docker build flag Kiln takes.
type buildFlag struct {
	bool  bool // takes no value (but accepts =true or =false)
	apply func(b *Build, value string, env []string) error
}

var buildFlags = func() map[string]buildFlag {
	tag := buildFlag{apply: func(b *Build, v string, _ []string) error {
		if err := checkTag(v); err != nil {
			return err
		}
		b.Tags = append(b.Tags, v)
		return nil
	}}
	file := buildFlag{apply: func(b *Build, v string, _ []string) error {
		if v == "" || v == "-" {
			return errors.New("needs a Dockerfile's path; Kiln does not read one from standard input")
		}
		b.Dockerfile = v
		return nil
	}}
	return map[string]buildFlag{
		"-t": tag, "--tag": tag, "--image": tag,
		"-f": file, "--file": file,
		"--build-arg": {apply: func(b *Build, v string, env []string) error {
			key, value, ok := strings.Cut(v, "=")
			if key == "" || strings.ContainsAny(key, " \t\r\n") {
				return fmt.Errorf("%q is not KEY=VALUE or KEY", v)
			}
			if !ok {
				// As docker build does: the value of the variable of that name, and no argument if there is none.
				if value, ok = lookupEnv(env, key); !ok {
					return nil
				}
			}
			b.BuildArgs[key] = value
			return nil
		}},
		"--label": {apply: func(b *Build, v string, _ []string) error {
			key, value, _ := strings.Cut(v, "=")
			if key == "" {
				return fmt.Errorf("%q is not KEY=VALUE", v)
			}
			b.Labels[key] = value
			return nil
		}},
		"--target": {apply: func(b *Build, v string, _ []string) error {
			if v == "" {
				return errors.New("needs a stage's name")
			}
			b.Target = v
			return nil
		}},
		"--platform": {apply: func(b *Build, v string, _ []string) error {
			if strings.Contains(v, ",") {
				return fmt.Errorf("%q names several platforms: a build step builds one", v)
			}
			if !platformRE.MatchString(v) {
				return fmt.Errorf("%q is not a platform, as linux/amd64 or linux/arm64/v8", v)
			}
			b.Platform = v
			return nil
		}},
		"--no-cache": {bool: true, apply: func(b *Build, v string, _ []string) error {
			b.NoCache = v == "true"
			return nil
		}},
		"--pull": {bool: true, apply: func(b *Build, v string, _ []string) error {
			b.Pull = v == "true"
			return nil
		}},
	}
}()

const buildFlagNames = "-t/--tag, -f/--file, --build-arg, --label, --target, --platform, --no-cache and --pull"

var platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// parseBuild reads the text of a build step, a docker build command line without "docker build":
// "-t app:1 -f Dockerfile --build-arg V=1 .". env is the step's environment, for --build-arg KEY.
func parseBuild(s string, env []string) (*Build, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	b := &Build{BuildArgs: map[string]string{}, Labels: map[string]string{}}
	var contexts []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			contexts = append(contexts, words[i+1:]...)
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			contexts = append(contexts, w)
			continue
		}
		flag, value, hasValue := splitFlag(w)
		spec, ok := buildFlags[flag]
		if !ok {
			return nil, fmt.Errorf("%s: not supported by Kiln, which takes the docker build flags %s", flag, buildFlagNames)
		}
		switch {
		case spec.bool && !hasValue:
			value = "true"
		case spec.bool && value != "true" && value != "false":
			return nil, fmt.Errorf("%s: takes true or false, not %q", flag, value)
		case !spec.bool && !hasValue:
			if i+1 >= len(words) {
				return nil, fmt.Errorf("%s: needs a value", flag)
			}
			i++
			value = words[i]
		}
		if err := spec.apply(b, value, env); err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
	}
	switch {
	case len(contexts) == 0:
		return nil, errors.New("names no build context: end it with the context's directory, as . for the working directory")
	case len(contexts) > 1:
		return nil, fmt.Errorf("names more than one build context (%q and %q): a build has one, the last argument", contexts[0], contexts[1])
	case contexts[0] == "-":
		return nil, errors.New("Kiln does not read a build context from standard input: name a directory")
	case strings.Contains(contexts[0], "://") || strings.HasPrefix(contexts[0], "git@"):
		return nil, fmt.Errorf("%q: not supported by Kiln, which builds a step from a directory of the run's "+
			"workspace; fetch other sources in an earlier cmd step", contexts[0])
	}
	b.Context = contexts[0]
	return b, nil
}

// splitFlag splits --name=value and -tvalue (a short flag with its value attached, as docker allows) into the
// flag and its value.
func splitFlag(w string) (flag, value string, hasValue bool) {
	if strings.HasPrefix(w, "--") {
		flag, value, hasValue = strings.Cut(w, "=")
		return flag, value, hasValue
	}
	if len(w) > 2 {
		return w[:2], strings.TrimPrefix(w[2:], "="), true
	}
	return w, "", false
}
