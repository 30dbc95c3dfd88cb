// Command kiln is Kiln's one binary: `kiln serve` runs the service, every other verb talks to it over HTTP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kilnbuild/kiln/proto"
)

const usage = `Usage: kiln <command> [flags]

Commands:
  serve                 run Kiln: API, workers, and embedded NATS, registry and buildkitd by default
  build [flags] CONTEXT build CONTEXT's Dockerfile on Kiln and push the tagged image (like az acr build);
                        CONTEXT is a directory, a git URL (https://HOST/REPO.git#REF:SUBDIR) or a tarball URL
  run -f FILE CONTEXT   run an ACR task file's steps (build, cmd, push) on Kiln (like az acr run);
                        --set K=V and --values FILE fill {{.Values}}; --cmd "IMAGE ARGS" runs one command
  task create NAME      save a build of a git repository's branch with its triggers (like az acr task create)
  task list|show NAME   list tasks, or show one
  task update NAME      change the task flags given
  task delete NAME      delete a task and its webhook
  task run NAME         build the task's branch head now and follow the log
  task deps NAME        show the base images of a task's Dockerfile, and their digests built on and now
  task timer add|update|remove|list NAME
                        manage a task's timers: cron schedules in UTC (like az acr task timer)
  runs list             list runs, newest first
  runs show ID          show one run
  runs cancel ID        cancel a queued or running run
  logs ID [-f]          print a run's log; -f follows it until the run ends
  secret set NAME       set a secret for task files ({{.Secrets.NAME}}), from stdin or --value-file
  secret list|delete    list secrets' names (never values), or delete one

Client commands talk to --server, or $KILN_SERVER (default http://127.0.0.1:8080), with the
bearer token of --token, else $KILN_TOKEN, else the client config's for that server ($KILN_CONFIG,
else ~/.config/kiln/config.json), where kiln serve writes the token it generates.
Run 'kiln <command> -h' for a command's flags.
`

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// usageError is an error in how kiln was called; it exits 2 instead of 1.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is kiln with args, writing to stdout and stderr, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCmd(ctx, args[1:], stderr)
	case "build":
		err = buildCmd(ctx, args[1:], stdout, stderr)
	case "run":
		err = runCmd(ctx, args[1:], os.Stdin, stdout)
	case "runs":
		err = runsCmd(ctx, args[1:], stdout)
	case "task":
		err = taskCmd(ctx, args[1:], stdout)
	case "logs":
		err = logsCmd(ctx, args[1:], stdout)
	case "secret":
		err = secretCmd(ctx, args[1:], os.Stdin, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kiln: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var failed runFailed
	var bad usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &failed):
		return 1 // the run's outcome has been printed already
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "kiln %s: %s\n", args[0], bad.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "kiln %s: %s\n", args[0], message(err))
		return 1
	}
}

// message is what a person sees of err: the API's own message for API errors.
func message(err error) string {
	var e *proto.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// runFailed is returned by verbs that printed a run's failure themselves.
type runFailed struct{ id string }

func (r runFailed) Error() string { return "run " + r.id + " did not succeed" }
