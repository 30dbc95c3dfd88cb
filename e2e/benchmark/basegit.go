package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// gitHost serves the repositories of the base image benchmarks' tasks with git http-backend on loopback, as
// the tasks' Dockerfiles and builds need them: Kiln reads each task's Dockerfile from git when the task is
// saved, and its runs fetch their context from there.
type gitHost struct {
	dir  string // the bare repositories are under dir/srv, their work trees under dir/work
	url  string
	stop func()
}

// taskRepo is one repository of a gitHost: a work tree that pushes to the bare repository served at url.
type taskRepo struct {
	url, work string
}

func newGitHost(dir string) (*gitHost, error) {
	url, stop, err := serveGit(filepath.Join(dir, "srv"))
	if err != nil {
		return nil, err
	}
	return &gitHost{dir: dir, url: url, stop: stop}, nil
}

// repo makes the repository name (say "bench/app.git") with files on its branch main.
func (h *gitHost) repo(ctx context.Context, name string, files map[string]string) (*taskRepo, error) {
	bare := filepath.Join(h.dir, "srv", name)
	r := &taskRepo{url: h.url + "/" + name, work: filepath.Join(h.dir, "work", name)}
	for _, step := range []struct {
		dir  string
		args []string
	}{
		{"", []string{"init", "-q", "--bare", "-b", "main", bare}},
		{"", []string{"init", "-q", "-b", "main", r.work}},
		{r.work, []string{"remote", "add", "origin", bare}},
	} {
		if _, err := benchGit(ctx, step.dir, step.args...); err != nil {
			return nil, err
		}
	}
	return r, r.commit(ctx, files)
}

// commit writes files into the work tree, commits them and pushes the commit to main.
func (r *taskRepo) commit(ctx context.Context, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.work, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "bench"}, {"push", "-q", "origin", "HEAD:refs/heads/main"}} {
		if _, err := benchGit(ctx, r.work, args...); err != nil {
			return fmt.Errorf("committing to %s: %w", r.url, err)
		}
	}
	return nil
}
