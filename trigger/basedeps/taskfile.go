package basedeps

import (
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile"
)

// taskFileDeps checks the task file file (data) read at commit c, as the API checks one, so that a file Kiln
// would refuse at every run is refused when it is saved; and returns the bases of its build steps: each step's
// Dockerfile, read from the same commit where the step's context is (its working directory in /workspace, the
// repository's subdir), with its build args and target. A base of any step's final stage is a runtime base.
// Each base is listed once, named by the step ("acb_step_0: builder") that first uses it.
func taskFileDeps(c *object.Commit, file, subdir string, values map[string]string, data []byte) ([]*proto.BaseDependency, error) {
	commit := c.Hash.String()
	f, err := taskfile.Check(data, file, taskfile.Data{Values: values})
	if err != nil {
		return nil, &DockerfileError{Path: file, Commit: commit, Err: err}
	}
	var deps []*proto.BaseDependency
	seen := make(map[string]int)
	for _, st := range f.Steps {
		if st.Build == nil {
			continue
		}
		df, ok := stepDockerfile(subdir, st)
		if !ok {
			return nil, &DockerfileError{Path: file, Commit: commit,
				Err: proto.Errorf(proto.Invalid, "step %s builds a context outside the repository", st.ID)}
		}
		content, err := readFile(c, df)
		if err != nil {
			return nil, proto.Errorf(proto.ErrorCode(err), "step %s of %s: %w", st.ID, file, err)
		}
		found, err := dockerfileDeps(content, df, commit, st.Build.BuildArgs, st.Build.Target)
		if err != nil {
			return nil, err
		}
		for _, d := range found {
			if i, ok := seen[d.Ref]; ok {
				deps[i].Runtime = deps[i].Runtime || d.Runtime
				continue
			}
			seen[d.Ref] = len(deps)
			deps = append(deps, &proto.BaseDependency{Reference: d.Ref, Runtime: d.Runtime, Platform: d.Platform,
				Stage: st.ID + ": " + d.Stage})
		}
	}
	return deps, nil
}

// stepDockerfile is the path in the repository of the Dockerfile a build step builds: its context is relative
// to its working directory, which is inside /workspace, the repository's subdir. ok is false for a context
// outside it.
func stepDockerfile(subdir string, st taskfile.Step) (string, bool) {
	wd := st.WorkingDirectory
	if wd == "" {
		wd = taskfile.Workspace
	}
	ctx := path.Clean(path.Join(wd, st.Build.Context))
	if path.IsAbs(st.Build.Context) {
		ctx = path.Clean(st.Build.Context)
	}
	rel, ok := strings.CutPrefix(ctx, taskfile.Workspace)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
		return "", false
	}
	df := st.Build.Dockerfile
	if df == "" {
		df = defaultDockerfile
	}
	return path.Join(subdir, strings.TrimPrefix(rel, "/"), df), true
}
