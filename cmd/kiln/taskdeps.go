package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kilnbuild/kiln/trigger/api"
)

// printTaskDeps prints the base images of a task as `kiln task deps` shows them: what the trigger tracks, where
// the bases were read, then one row per base and the poll errors under the table.
func printTaskDeps(w io.Writer, d *api.TaskDeps) error {
	fmt.Fprintf(w, "Base image trigger: %s\n", baseTrigger(d.BaseImageTrigger, d.BaseImageTriggerType))
	if d.BasesCommit != "" {
		fmt.Fprintf(w, "Read from commit:   %s", d.BasesCommit)
		if d.BasesReadAt != nil {
			fmt.Fprintf(w, " at %s", d.BasesReadAt.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
	}
	if d.BasesError != "" {
		fmt.Fprintf(w, "Could not read the base images: %s\n", d.BasesError)
	}
	if len(d.Bases) == 0 {
		if d.BasesError == "" {
			fmt.Fprintln(w, "The Dockerfile builds on no base image.")
		}
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tKIND\tBUILT ON\tREGISTRY NOW\tCHECKED")
	var pollErrors []string
	for _, b := range d.Bases {
		kind := b.Kind
		if !b.Tracked {
			kind += " (not tracked)"
		}
		checked := "-"
		if b.CheckedAt != nil {
			checked = b.CheckedAt.Local().Format(time.DateTime)
			if b.Source != "" {
				checked += " (" + b.Source + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Reference, kind, shortDigest(b.BuiltDigest), shortDigest(b.RegistryDigest), checked)
		if b.PollError != "" {
			pollErrors = append(pollErrors, fmt.Sprintf("%s: the last poll failed: %s", b.Reference, b.PollError))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(pollErrors) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(pollErrors, "\n"))
	}
	return nil
}

// baseTrigger says whether the base image trigger is on and which bases it tracks.
func baseTrigger(on bool, triggerType string) string {
	switch {
	case !on:
		return "off"
	case triggerType == "all":
		return "on, for runtime and build-time bases"
	}
	return "on, for the runtime base"
}

// shortDigest is a digest as a table shows it, algorithm and 12 hex digits, or "-" for none.
func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}
