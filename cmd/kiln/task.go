package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// taskSynopsis is the flags of `task create` and `task update`.
const taskSynopsis = "--context https://HOST/OWNER/REPO.git[#BRANCH][:SUBDIR] [-f DOCKERFILE] [-t TAG]... [--arg K=V]... " +
	"[--commit-trigger=true] [--pr-trigger=false] [--tag-trigger=false] [--path-filter GLOB]... [--latest-only=true] " +
	"[--push-pull-requests=false] [--no-push] [--git-token-file F] [--webhook-secret-file F] [--timeout S] [--target S] [--platform P] " +
	"[--base-image-trigger=true] [--base-image-trigger-type runtime|all] [--network default|host|none]"

// taskCmd is `kiln task create|list|show|update|delete|run|deps|timer`.
func taskCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("needs a subcommand: create, list, show, update, delete, run, deps or timer")
	}
	var srv serverFlags
	client := func() *api.Client { return srv.client() }
	switch args[0] {
	case "create":
		s, req, err := parseTaskCreate(args[1:])
		if err != nil {
			return err
		}
		srv = s
		t, err := client().CreateTask(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Created task %s\n", t.Name)
		return nil
	case "update":
		s, name, patch, err := parseTaskUpdate(args[1:])
		if err != nil {
			return err
		}
		srv = s
		if _, err := client().UpdateTask(ctx, name, patch); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Updated task %s\n", name)
		return nil
	case "list":
		fs := newFlags("task list", "task list [-o json]")
		srv.add(fs)
		output := fs.String("o", "table", "output `format`: table or json")
		if err := noArgs(fs, args[1:]); err != nil {
			return err
		}
		tasks, err := client().ListTasks(ctx)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, tasks)
		}
		return printTaskTable(stdout, tasks)
	case "show":
		fs := newFlags("task show", "task show NAME [-o json]")
		srv.add(fs)
		output := fs.String("o", "text", "output `format`: text or json")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		t, err := client().Task(ctx, name)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, t)
		}
		printTask(stdout, t)
		return nil
	case "delete":
		fs := newFlags("task delete", "task delete NAME")
		srv.add(fs)
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		if err := client().DeleteTask(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Deleted task %s\n", name)
		return nil
	case "run":
		fs := newFlags("task run", "task run NAME [--no-wait]")
		srv.add(fs)
		noWait := fs.Bool("no-wait", false, "print the run ID and return without waiting")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		c := client()
		run, err := c.RunTask(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Queued a run with ID: %s\n", run.ID)
		if *noWait {
			return nil
		}
		fmt.Fprintln(stdout, "Waiting for an agent...")
		return follow(ctx, c, run.ID, stdout)
	case "deps":
		fs := newFlags("task deps", "task deps NAME [-o json]")
		srv.add(fs)
		output := fs.String("o", "table", "output `format`: table or json")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		deps, err := client().TaskDeps(ctx, name)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, deps)
		}
		return printTaskDeps(stdout, deps)
	case "timer":
		return timerCmd(ctx, args[1:], stdout)
	default:
		return usagef("unknown subcommand %q: use create, list, show, update, delete, run, deps or timer", args[0])
	}
}

// taskFlags are the flags that say what a task is, shared by `task create` and `task update`.
type taskFlags struct {
	context, dockerfile, target, platform string
	tags, pathFilters                     stringList
	buildArgs                             keyValues
	commitTrigger, prTrigger, tagTrigger  bool
	latestOnly, pushPullRequests, noPush  bool
	gitTokenFile, webhookSecretFile       string
	timeout                               int
	baseImageTrigger                      bool
	baseImageTriggerType                  triggerType
	network                               network
}

// triggerType is the value of --base-image-trigger-type: runtime or all.
type triggerType string

func (t *triggerType) String() string { return string(*t) }
func (t *triggerType) Set(v string) error {
	if v != "runtime" && v != "all" {
		return fmt.Errorf("%q is neither runtime nor all", v)
	}
	*t = triggerType(v)
	return nil
}

// add defines the flags on fs, with the defaults of a new task.
func (f *taskFlags) add(fs *flag.FlagSet) {
	f.buildArgs = keyValues{}
	fs.StringVar(&f.context, "context", "", "the git repository: `URL`[#BRANCH][:SUBDIR], https://HOST/OWNER/REPO.git#main:docker")
	fs.StringVar(&f.dockerfile, "f", "Dockerfile", "Dockerfile `path`, relative to the context")
	fs.Var(&f.tags, "t", "image `tag`, a template over {{.Run.ID}}, {{.Run.Commit}}, {{.Run.Branch}}, {{.Run.TaskName}}, {{.Run.Date}}... (repeatable)")
	fs.Var(f.buildArgs, "arg", "build argument `K=V` (repeatable)")
	fs.Var(f.buildArgs, "build-arg", "the same as --arg")
	fs.BoolVar(&f.commitTrigger, "commit-trigger", true, "run on a push to the branch")
	fs.BoolVar(&f.prTrigger, "pr-trigger", false, "run on pull requests to the branch")
	fs.BoolVar(&f.tagTrigger, "tag-trigger", false, "run when a tag is pushed")
	fs.Var(&f.pathFilters, "path-filter", "only pushes that change a file matching `GLOB` start a run (repeatable)")
	fs.BoolVar(&f.latestOnly, "latest-only", true, "build only the newest queued run of each branch")
	fs.BoolVar(&f.pushPullRequests, "push-pull-requests", false, "let pull request runs push their images")
	fs.BoolVar(&f.noPush, "no-push", false, "build without pushing")
	fs.StringVar(&f.gitTokenFile, "git-token-file", "", "`file` holding a token that reads the repository and registers its webhook")
	fs.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "`file` holding the webhook secret (default: a random one)")
	fs.IntVar(&f.timeout, "timeout", 3600, "run timeout in `seconds`")
	fs.StringVar(&f.target, "target", "", "`stage` to build")
	fs.StringVar(&f.platform, "platform", "", "`os/arch` to build for")
	fs.BoolVar(&f.baseImageTrigger, "base-image-trigger", true, "run when a base image of the Dockerfile moves to a new digest")
	f.baseImageTriggerType = "runtime"
	fs.Var(&f.baseImageTriggerType, "base-image-trigger-type",
		"which bases the base image trigger tracks: `runtime` (the final stage's) or all (build-time ones too)")
	fs.Var(&f.network, "network", networkUsage)
}

// parseTaskCreate parses the arguments of `task create` into the request that creates the task.
func parseTaskCreate(args []string) (serverFlags, api.Task, error) {
	var (
		srv serverFlags
		f   taskFlags
	)
	fs := newFlags("task create", "task create NAME "+taskSynopsis+" [--schedule [NAME:]CRON]...")
	srv.add(fs)
	f.add(fs)
	var schedules scheduleList
	fs.Var(&schedules, "schedule", "a `[NAME:]CRON` timer: five cron fields in UTC, such as \"nightly:0 21 * * *\"; "+
		"unnamed timers are t1, t2... (repeatable)")
	name, err := oneName(fs, args)
	if err != nil {
		return srv, api.Task{}, err
	}
	if f.context == "" {
		return srv, api.Task{}, usagef("needs --context, the URL of the task's git repository")
	}
	push := !f.noPush
	t := api.Task{
		Name: name, Context: f.context, Dockerfile: f.dockerfile, Tags: f.tags, Target: f.target, Platform: f.platform,
		Timeout: f.timeout, Push: &push, CommitTrigger: &f.commitTrigger, PullRequestTrigger: &f.prTrigger,
		TagTrigger: &f.tagTrigger, PathFilters: f.pathFilters, LatestOnly: &f.latestOnly,
		PushPullRequests: &f.pushPullRequests, BaseImageTrigger: &f.baseImageTrigger,
		BaseImageTriggerType: string(f.baseImageTriggerType), Timers: schedules, Network: string(f.network),
	}
	if len(f.buildArgs) > 0 {
		t.BuildArgs = f.buildArgs
	}
	if t.GitToken, err = readSecret(f.gitTokenFile, "--git-token-file"); err != nil {
		return srv, api.Task{}, err
	}
	if t.WebhookSecret, err = readSecret(f.webhookSecretFile, "--webhook-secret-file"); err != nil {
		return srv, api.Task{}, err
	}
	return srv, t, nil
}

// parseTaskUpdate parses the arguments of `task update` into the name of the task and the change: only the
// flags given are in it.
func parseTaskUpdate(args []string) (serverFlags, string, api.TaskPatch, error) {
	var (
		srv serverFlags
		f   taskFlags
		p   api.TaskPatch
	)
	fs := newFlags("task update", "task update NAME [the flags of task create; only those given change]")
	srv.add(fs)
	f.add(fs)
	name, err := oneName(fs, args)
	if err != nil {
		return srv, "", p, err
	}
	fs.Visit(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		switch fl.Name {
		case "context":
			p.Context = &f.context
		case "f":
			p.Dockerfile = &f.dockerfile
		case "t":
			p.Tags = (*[]string)(&f.tags)
		case "arg", "build-arg":
			p.BuildArgs = (*map[string]string)(&f.buildArgs)
		case "commit-trigger":
			p.CommitTrigger = &f.commitTrigger
		case "pr-trigger":
			p.PullRequestTrigger = &f.prTrigger
		case "tag-trigger":
			p.TagTrigger = &f.tagTrigger
		case "path-filter":
			p.PathFilters = (*[]string)(&f.pathFilters)
		case "latest-only":
			p.LatestOnly = &f.latestOnly
		case "push-pull-requests":
			p.PushPullRequests = &f.pushPullRequests
		case "no-push":
			push := !f.noPush
			p.Push = &push
		case "git-token-file":
			var token string
			token, err = readSecret(f.gitTokenFile, "--git-token-file")
			p.GitToken = &token
		case "webhook-secret-file":
			var secret string
			secret, err = readSecret(f.webhookSecretFile, "--webhook-secret-file")
			p.WebhookSecret = &secret
		case "timeout":
			p.Timeout = &f.timeout
		case "target":
			p.Target = &f.target
		case "platform":
			p.Platform = &f.platform
		case "base-image-trigger":
			p.BaseImageTrigger = &f.baseImageTrigger
		case "base-image-trigger-type":
			p.BaseImageTriggerType = (*string)(&f.baseImageTriggerType)
		case "network":
			p.Network = (*string)(&f.network)
		}
	})
	return srv, name, p, err
}

// readSecret returns the content of file, trimmed of surrounding white space, or "" when file is "".
func readSecret(file, flagName string) (string, error) {
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", usagef("%s: %v", flagName, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// oneName returns the one positional argument, a task's name.
func oneName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("needs exactly one task NAME, got %d arguments", len(pos))
	}
	return pos[0], nil
}

// triggers names the triggers a task has on, as "commit,pull_request,timer" or "manual" when none is.
func triggers(t *api.Task) string {
	var on []string
	for _, tr := range []struct {
		on   *bool
		name string
	}{{t.CommitTrigger, "commit"}, {t.PullRequestTrigger, "pull_request"}, {t.TagTrigger, "tag"}} {
		if tr.on != nil && *tr.on {
			on = append(on, tr.name)
		}
	}
	if slices.ContainsFunc(t.Timers, func(tm api.Timer) bool { return timerStatus(&tm) == "Enabled" }) {
		on = append(on, "timer")
	}
	if len(on) == 0 {
		return "manual"
	}
	return strings.Join(on, ",")
}

func printTaskTable(w io.Writer, tasks []*api.Task) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCONTEXT\tTRIGGERS\tTAG")
	for _, t := range tasks {
		tag := ""
		if len(t.Tags) > 0 {
			tag = t.Tags[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Context, triggers(t), tag)
	}
	return tw.Flush()
}

func printTask(w io.Writer, t *api.Task) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-15s %s\n", k+":", v)
		}
	}
	yesNo := func(b *bool) string {
		if b != nil && *b {
			return "yes"
		}
		return "no"
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Local().Format(time.RFC3339)
	}
	line("Name", t.Name)
	line("Context", t.Context)
	line("Dockerfile", t.Dockerfile)
	line("Tags", strings.Join(t.Tags, ", "))
	var args []string
	for _, k := range slices.Sorted(maps.Keys(t.BuildArgs)) {
		args = append(args, k+"="+t.BuildArgs[k])
	}
	line("Build args", strings.Join(args, ", "))
	line("Target", t.Target)
	line("Platform", t.Platform)
	line("Timeout", strconv.Itoa(t.Timeout)+"s")
	line("Push", yesNo(t.Push))
	line("Triggers", triggers(t))
	line("Path filters", strings.Join(t.PathFilters, ", "))
	line("Latest only", yesNo(t.LatestOnly))
	line("Push PRs", yesNo(t.PushPullRequests))
	line("Base trigger", baseTrigger(t.BaseImageTrigger != nil && *t.BaseImageTrigger, t.BaseImageTriggerType))
	for _, b := range t.Bases {
		kind := "build-time"
		if b.Runtime {
			kind = "runtime"
		}
		line("Base", b.Reference+" ("+kind+")")
	}
	line("Bases error", t.BasesError)
	for _, tm := range t.Timers {
		line("Timer", tm.Name+": "+tm.Schedule+" (UTC), "+strings.ToLower(timerStatus(&tm)))
	}
	line("Git token", map[bool]string{true: "set", false: "none"}[t.HasGitToken])
	line("Webhook secret", map[bool]string{true: "set", false: "none"}[t.HasWebhookSecret])
	if t.GitHubHookID != 0 {
		line("GitHub hook", strconv.FormatInt(t.GitHubHookID, 10))
	}
	line("Created", ts(t.CreatedAt))
	line("Updated", ts(t.UpdatedAt))
}
