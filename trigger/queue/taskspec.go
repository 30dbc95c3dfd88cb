package queue

import (
	"path"
	"strings"

	"github.com/kilnbuild/kiln/proto"
)

// defaultTimeout is a run's timeout, in seconds, when its task sets none.
const defaultTimeout = 3600

// TaskSpec is what a run of task builds: the commit of its repository at ref (commit "" lets the worker take
// whatever ref points to when it fetches), pushed under tags, already rendered. A task whose file (-f) is a
// .yaml or .yml is a multi-step task file, read from the context by the worker; any other is a Dockerfile.
// Every trigger starts a task's run from this one spec; only push differs for untrusted pull requests.
func TaskSpec(task *proto.Task, ref, commit string, tags []string) *proto.BuildSpec {
	src := task.GetSource()
	timeout := task.GetTimeoutSeconds()
	if timeout == 0 {
		timeout = defaultTimeout
	}
	spec := &proto.BuildSpec{
		Git:            &proto.GitContext{Url: src.GetUrl(), Ref: ref, Commit: commit, Subdir: src.GetSubdir()},
		Dockerfile:     task.GetDockerfile(),
		Tags:           tags,
		BuildArgs:      task.GetBuildArgs(),
		Target:         task.GetTarget(),
		Platform:       task.GetPlatform(),
		Push:           task.GetPush(),
		TimeoutSeconds: timeout,
		TaskName:       task.GetName(),
		Network:        task.GetNetwork(),
	}
	if IsTaskFile(task.GetDockerfile()) {
		spec.TaskFilePath, spec.Dockerfile = task.GetDockerfile(), ""
		spec.Values = task.GetValues()
	}
	return spec
}

// IsTaskFile reports whether the file a task builds from is an ACR task file (YAML) rather than a Dockerfile.
func IsTaskFile(file string) bool {
	switch strings.ToLower(path.Ext(file)) {
	case ".yaml", ".yml":
		return true
	}
	return false
}
