package api

import (
	"bytes"
	"encoding/json"
	"io"
	"path"

	"github.com/kilnbuild/kiln/proto"
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
	data, err := io.ReadAll(io.LimitReader(r, maxRequestPart+1))
	if err != nil {
		return req, proto.Errorf(proto.Invalid, "reading the request part: %v", err)
	}
	if len(data) > maxRequestPart {
		return req, proto.Errorf(proto.TooLarge, "the request part is over the %s limit", byteSize(maxRequestPart))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, proto.Errorf(proto.Invalid, "the request part is not a valid build request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, proto.Errorf(proto.Invalid, "the request part holds more than one JSON value")
	}
	return req, nil
}

// specOf checks req and returns the build it asks for, defaults filled in. The tags are left out: they need
// the run's ID to be rendered (renderTags).
func specOf(req BuildRequest) (*proto.BuildSpec, error) {
	spec := &proto.BuildSpec{
		Dockerfile:     req.Dockerfile,
		BuildArgs:      req.BuildArgs,
		Target:         req.Target,
		Platform:       req.Platform,
		Push:           req.Push == nil || *req.Push,
		TimeoutSeconds: int64(req.Timeout),
	}
	if spec.Dockerfile == "" {
		spec.Dockerfile = defaultDockerfile
	}
	clean := path.Clean(spec.Dockerfile)
	if path.IsAbs(clean) || escapes(clean) || clean == "." {
		return nil, proto.Errorf(proto.Invalid,
			"dockerfile %q must be a relative path to a file inside the build context", spec.Dockerfile)
	}
	spec.Dockerfile = clean
	switch {
	case spec.TimeoutSeconds == 0:
		spec.TimeoutSeconds = defaultTimeout
	case spec.TimeoutSeconds < 1 || spec.TimeoutSeconds > maxTimeout:
		return nil, proto.Errorf(proto.Invalid,
			"timeout %d is out of range: it must be 1 to %d seconds", req.Timeout, maxTimeout)
	}
	for k := range spec.BuildArgs {
		if k == "" {
			return nil, proto.Errorf(proto.Invalid, "buildArgs has an entry with an empty name")
		}
	}
	return spec, nil
}
