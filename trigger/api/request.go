package api

import (
	"bytes"
	"encoding/json"
	"io"
	"path"
	"strings"
	"unicode"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile"
)

// The bounds and defaults of a build request.
const (
	defaultDockerfile = "Dockerfile"
	defaultTimeout    = 3600  // seconds
	maxTimeout        = 86400 // seconds: a day
	maxRequestPart    = 1 << 20
)

// readRequest reads the JSON "request" part of a submission. A field it does not know is an error: a typo
// must not silently build something else than what was asked.
func readRequest(r io.Reader) (BuildRequest, error) {
	var req BuildRequest
	err := decodeJSON(r, &req, "the request part", "a valid build request")
	return req, err
}

// decodeJSON reads one JSON value of at most maxRequestPart bytes from r into v, refusing a field v does not
// have. what names the JSON in errors ("the request part") and as says what it should be ("a valid task").
func decodeJSON(r io.Reader, v any, what, as string) error {
	data, err := io.ReadAll(io.LimitReader(r, maxRequestPart+1))
	if err != nil {
		return proto.Errorf(proto.Invalid, "reading %s: %v", what, err)
	}
	if len(data) > maxRequestPart {
		return proto.Errorf(proto.TooLarge, "%s is over the %s limit", what, byteSize(maxRequestPart))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return proto.Errorf(proto.Invalid, "%s is not %s: %v", what, as, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return proto.Errorf(proto.Invalid, "%s holds more than one JSON value", what)
	}
	return nil
}

// specOf checks req and returns the build it asks for, defaults filled in. The tags are left out: they need
// the run's ID to be rendered (renderTags).
func specOf(req BuildRequest) (*proto.BuildSpec, error) {
	if req.Commit != "" {
		return nil, proto.Errorf(proto.Invalid, "commit is not part of a request: Kiln sets it when it resolves the git context's #ref at queueing")
	}
	if req.TaskFile != "" || req.TaskFilePath != "" || req.Cmd != "" {
		return multiStepSpecOf(req)
	}
	if req.Values != nil {
		return nil, proto.Errorf(proto.Invalid, "values fill a task file's {{.Values}}: a docker build takes buildArgs")
	}
	spec := &proto.BuildSpec{
		Dockerfile:     req.Dockerfile,
		BuildArgs:      req.BuildArgs,
		Target:         req.Target,
		Platform:       req.Platform,
		Push:           req.Push == nil || *req.Push,
		TimeoutSeconds: int64(req.Timeout),
	}
	var err error
	if spec.Dockerfile, err = cleanDockerfile(spec.Dockerfile); err != nil {
		return nil, err
	}
	if spec.TimeoutSeconds, err = checkTimeout(req.Timeout); err != nil {
		return nil, err
	}
	if err := checkBuildArgs(spec.BuildArgs); err != nil {
		return nil, err
	}
	return spec, nil
}

// multiStepSpecOf checks a request for a multi-step run (kiln run) and returns its spec: exactly one of a task
// file's text, a task file's path (inside a context URL) or a command, and none of a docker build's fields.
func multiStepSpecOf(req BuildRequest) (*proto.BuildSpec, error) {
	set := 0
	for _, s := range []string{req.TaskFile, req.TaskFilePath, req.Cmd} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return nil, proto.Errorf(proto.Invalid, "a run has one of taskFile, taskFilePath and cmd, not several")
	}
	for field, isSet := range map[string]bool{"dockerfile": req.Dockerfile != "", "tags": len(req.Tags) > 0,
		"buildArgs": len(req.BuildArgs) > 0, "target": req.Target != "", "platform": req.Platform != ""} {
		if isSet {
			return nil, proto.Errorf(proto.Invalid, "%s is a docker build's: a task file's build steps say what they build", field)
		}
	}
	if req.TaskFilePath != "" && req.Context == "" {
		return nil, proto.Errorf(proto.Invalid, "taskFilePath names a file inside a context URL; with an uploaded context, send the file's text as taskFile")
	}
	timeout, err := checkTimeout(req.Timeout)
	if err != nil {
		return nil, err
	}
	// What can be checked before the run is: the file's fields and templates (secret values and the run's own
	// variables are known only to the worker), or the command.
	switch {
	case req.TaskFile != "":
		if _, err := taskfile.Check([]byte(req.TaskFile), "task file", taskfile.Data{Values: req.Values}); err != nil {
			return nil, err
		}
	case req.Cmd != "":
		if _, err := taskfile.ParseCmd(req.Cmd); err != nil {
			return nil, err
		}
	}
	spec := &proto.BuildSpec{TaskFile: req.TaskFile, Cmd: req.Cmd, Values: req.Values, TimeoutSeconds: timeout, Push: true}
	if req.TaskFilePath != "" {
		if spec.TaskFilePath, err = cleanDockerfile(req.TaskFilePath); err != nil {
			return nil, proto.Errorf(proto.Invalid, "taskFilePath: %w", err)
		}
	}
	return spec, nil
}

// cleanDockerfile returns the Dockerfile path p, cleaned, or "Dockerfile" when p is empty. A path that is
// absolute, leaves the build context or holds a control character (a NUL, a newline) is proto.Invalid.
func cleanDockerfile(p string) (string, error) {
	if p == "" {
		return defaultDockerfile, nil
	}
	if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
		return "", proto.Errorf(proto.Invalid, "dockerfile %q has the control character %U at byte %d: a path has none",
			p, []rune(p[i:])[0], i)
	}
	clean := path.Clean(p)
	if path.IsAbs(clean) || escapes(clean) || clean == "." {
		return "", proto.Errorf(proto.Invalid, "dockerfile %q must be a relative path to a file inside the build context", p)
	}
	return clean, nil
}

// checkTimeout returns the timeout of a build in seconds: 3600 for 0, and proto.Invalid outside 1 to 86400.
func checkTimeout(seconds int) (int64, error) {
	switch {
	case seconds == 0:
		return defaultTimeout, nil
	case seconds < 1 || seconds > maxTimeout:
		return 0, proto.Errorf(proto.Invalid, "timeout %d is out of range: it must be 1 to %d seconds", seconds, maxTimeout)
	}
	return int64(seconds), nil
}

// checkBuildArgs refuses a build argument with no name.
func checkBuildArgs(args map[string]string) error {
	for k := range args {
		if k == "" {
			return proto.Errorf(proto.Invalid, "buildArgs has an entry with an empty name")
		}
	}
	return nil
}

// escapes reports whether a clean relative path leads out of the directory it is relative to.
func escapes(clean string) bool {
	return clean == ".." || strings.HasPrefix(clean, "../")
}
