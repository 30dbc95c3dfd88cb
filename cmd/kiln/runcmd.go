package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kilnbuild/kiln/trigger/api"
)

// runCmd is `kiln run`, like `az acr run`: a multi-step task file (-f) or one command (--cmd) run on Kiln with
// CONTEXT as its source. It streams the log and exits 0 only if the run succeeded, as kiln build does.
func runCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	var (
		srv    serverFlags
		sets   = keyValues{}
		values string
	)
	fs := newFlags("run", "run (-f FILE | --cmd \"IMAGE [ARGS]\") [--set K=V]... [--values FILE] [--no-wait] [--timeout SECONDS] [--network MODE] CONTEXT\n\n"+
		"CONTEXT is a directory, which is uploaded, a git or tarball URL the server fetches, or /dev/null for none.\n"+
		"FILE is an ACR task file (YAML), read from inside CONTEXT (from the current directory for /dev/null,\n"+
		"from standard input for -).")
	srv.add(fs)
	file := fs.String("f", "", "task `file`, relative to CONTEXT")
	cmd := fs.String("cmd", "", "run one `command`, IMAGE [ARGS], instead of a task file")
	fs.Var(sets, "set", "a value for the task file, `K=V`, over those of --values (repeatable)")
	fs.StringVar(&values, "values", "", "YAML `file` of values for the task file ({{.Values.K}})")
	noWait := fs.Bool("no-wait", false, "print the run ID and return without waiting")
	timeout := fs.Int("timeout", 3600, "run timeout in `seconds`")
	var net network
	fs.Var(&net, "network", networkUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("needs exactly one CONTEXT: a directory, a URL or /dev/null, got %d arguments", len(pos))
	}
	if (*file == "") == (*cmd == "") {
		return usagef("needs either -f FILE or --cmd \"IMAGE [ARGS]\"")
	}
	req := api.BuildRequest{Cmd: *cmd, Timeout: *timeout, Network: string(net)}
	if req.Values, err = readValues(values, sets); err != nil {
		return err
	}
	where := pos[0]
	noContext := where == os.DevNull
	if *file != "" {
		switch {
		case isURL(where):
			req.TaskFilePath = *file // the worker reads it from the fetched context
		default:
			text, err := readTaskFile(*file, where, noContext, stdin)
			if err != nil {
				return err
			}
			req.TaskFile = text
		}
	}
	if noContext {
		empty, err := os.MkdirTemp("", "kiln-run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(empty)
		where = empty
	}
	c := srv.client()
	run, err := submit(ctx, c, req, where)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Queued a run with ID: %s\n", run.ID)
	if *noWait {
		return nil
	}
	fmt.Fprintln(stdout, "Waiting for an agent...")
	return follow(ctx, c, run.ID, stdout)
}

// readTaskFile reads the task file name: inside the directory context, in the current directory when there is
// no context, or standard input for "-".
func readTaskFile(name, context string, noContext bool, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	switch {
	case name == "-":
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	case noContext:
		b, err = os.ReadFile(name)
	default:
		b, err = os.ReadFile(filepath.Join(context, name))
	}
	if err != nil {
		return "", fmt.Errorf("reading the task file: %w", err)
	}
	return string(b), nil
}

// readValues reads the YAML values file, if any, then sets the --set values over it. A values file holds one
// mapping of names to scalars.
func readValues(file string, sets keyValues) (map[string]string, error) {
	out := map[string]string{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading --values: %w", err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, usagef("--values %s: %v", file, err)
		}
		for k, v := range raw {
			switch v.(type) {
			case map[string]any, []any:
				return nil, usagef("--values %s: %s is not a single value (nested values are not supported)", file, k)
			case nil:
				out[k] = ""
			default:
				out[k] = strings.TrimSpace(fmt.Sprint(v))
			}
		}
	}
	for k, v := range sets {
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
