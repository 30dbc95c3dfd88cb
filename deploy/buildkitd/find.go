package buildkitd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// FindBinary returns the path of the executable called name: the one next to this program's executable if
// there is one, as an installation that ships buildkitd beside kiln has, otherwise the one $PATH finds.
// Its error says how to build it.
func FindBinary(name string) (string, error) {
	where := "$PATH"
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
		where = dir + " or in $PATH"
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("finding %s: not in %s; build it with \"make build\", which puts it in bin/ "+
		"(for buildkitd alone: go build -o bin/buildkitd github.com/moby/buildkit/cmd/buildkitd)", name, where)
}

// isExecutable reports whether path is a regular file that someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
