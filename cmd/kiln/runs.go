package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// runsCmd is `kiln runs list|show|cancel`.
func runsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("needs a subcommand: list, show ID or cancel ID")
	}
	var srv serverFlags
	switch args[0] {
	case "list":
		fs := newFlags("runs list", "runs list [--status S] [--limit N] [-o json]")
		srv.add(fs)
		status := fs.String("status", "", "only runs with this `status`: Queued, Running, Succeeded, Failed, Canceled, Error, Timeout")
		limit := fs.Int("limit", 20, "at most `N` runs")
		output := fs.String("o", "table", "output `format`: table or json")
		if err := noArgs(fs, args[1:]); err != nil {
			return err
		}
		runs, err := srv.client().ListRuns(ctx, *status, *limit)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, runs)
		}
		return printRunTable(stdout, runs)
	case "show":
		fs := newFlags("runs show", "runs show ID [-o json]")
		srv.add(fs)
		output := fs.String("o", "text", "output `format`: text or json")
		id, err := oneID(fs, args[1:])
		if err != nil {
			return err
		}
		run, err := srv.client().Run(ctx, id)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, run)
		}
		printRun(stdout, run)
		return nil
	case "cancel":
		fs := newFlags("runs cancel", "runs cancel ID")
		srv.add(fs)
		id, err := oneID(fs, args[1:])
		if err != nil {
			return err
		}
		run, err := srv.client().Cancel(ctx, id)
		if err != nil {
			return err
		}
		if done(run) {
			fmt.Fprintf(stdout, "Run ID: %s canceled\n", id)
		} else {
			fmt.Fprintf(stdout, "Run ID: %s is being canceled\n", id)
		}
		return nil
	default:
		return usagef("unknown subcommand %q: use list, show or cancel", args[0])
	}
}

// logsCmd is `kiln logs ID [-f]`.
func logsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	var srv serverFlags
	fs := newFlags("logs", "logs ID [-f]")
	srv.add(fs)
	followFlag := fs.Bool("f", false, "follow the log until the run ends")
	id, err := oneID(fs, args)
	if err != nil {
		return err
	}
	return srv.client().Log(ctx, id, *followFlag, stdout)
}

func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

func oneID(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("needs exactly one run ID")
	}
	return pos[0], nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRunTable(w io.Writer, runs []*api.Run) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tSTATUS\tTRIGGER\tSTARTED\tDURATION\tIMAGE")
	for _, r := range runs {
		started, took := "", ""
		if r.StartedAt != nil {
			started = r.StartedAt.Local().Format(time.DateTime)
		}
		if done(r) {
			took = duration(r).Round(10 * time.Millisecond).String()
		}
		image := ""
		if len(r.Images) > 0 {
			image = r.Images[0].Reference
		} else if len(r.Request.Tags) > 0 {
			image = r.Request.Tags[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Trigger, started, took, image)
	}
	return tw.Flush()
}

func printRun(w io.Writer, r *api.Run) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-10s %s\n", k+":", v)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Local().Format(time.RFC3339)
	}
	line("Run ID", r.ID)
	line("Status", r.Status)
	line("Trigger", r.Trigger)
	line("Task", r.TaskName)
	if g := r.Git; g != nil {
		line("Commit", g.Commit)
		line("Ref", g.Ref)
		line("Repo", g.Repository)
		line("Pusher", g.Pusher)
		line("Delivery", g.DeliveryID)
	}
	if tm := r.Timer; tm != nil {
		line("Timer", tm.Name+" at "+tm.ScheduledAt.UTC().Format(time.RFC3339))
	}
	for _, c := range r.BaseImage {
		line("Base", fmt.Sprintf("%s %s → %s (%s)", c.Reference, orNone(c.OldDigest), c.NewDigest, c.Source))
	}
	line("Replaced", r.SupersededBy)
	line("Queued", ts(r.QueuedAt))
	line("Started", ts(r.StartedAt))
	line("Finished", ts(r.FinishedAt))
	if done(r) {
		line("Duration", duration(r).Round(10*time.Millisecond).String())
	}
	line("Tags", strings.Join(r.Request.Tags, ", "))
	for _, img := range r.Images {
		line("Image", img.Reference+"@"+img.Digest)
	}
	for _, st := range r.Steps {
		step := fmt.Sprintf("%s (%s) %s", st.ID, st.Kind, st.Status)
		if st.StartedAt != nil && st.FinishedAt != nil {
			step += " in " + st.FinishedAt.Sub(*st.StartedAt).Round(time.Millisecond).String()
		}
		if st.ExitCode != 0 {
			step += fmt.Sprintf(", exit code %d", st.ExitCode)
		}
		if st.Attempts > 1 {
			step += fmt.Sprintf(", %d attempts", st.Attempts)
		}
		if st.ErrorIgnored {
			step += ", error ignored"
		}
		for _, img := range st.Images {
			step += ", " + img.Reference
		}
		line("Step", step)
	}
	line("Error", r.Error)
}

// orNone is a digest, or "none" for a base never built on.
func orNone(digest string) string {
	if digest == "" {
		return "none"
	}
	return digest
}

// done reports whether a run has ended.
func done(r *api.Run) bool {
	switch r.Status {
	case "Queued", "Running":
		return false
	}
	return true
}

// duration is how long a run took: from its start (or, if it never started, its queueing) to its end.
func duration(r *api.Run) time.Duration {
	from, to := r.QueuedAt, r.FinishedAt
	if r.StartedAt != nil {
		from = r.StartedAt
	}
	if from == nil || to == nil {
		return 0
	}
	return to.Sub(*from)
}
