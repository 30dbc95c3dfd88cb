package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kilnbuild/kiln/trigger/api"
)

// scheduleHelp describes --schedule wherever it is taken.
const scheduleHelp = "timer `schedule`: five cron fields in UTC (minute hour day-of-month month day-of-week), such as \"0 21 * * *\""

// timerCmd is `kiln task timer add|update|remove|list`, as `az acr task timer` manages a task's timer triggers.
func timerCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("task timer needs a subcommand: add, update, remove or list")
	}
	var srv serverFlags
	client := func() *api.Client { return srv.client() }
	switch args[0] {
	case "add":
		fs := newFlags("task timer add", "task timer add NAME --timer-name T --schedule CRON [--enabled=true]")
		srv.add(fs)
		timerName := fs.String("timer-name", "", "the timer's `name`")
		schedule := fs.String("schedule", "", scheduleHelp)
		enabled := fs.Bool("enabled", true, "whether the timer starts runs")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		if *timerName == "" || *schedule == "" {
			return usagef("task timer add needs --timer-name and --schedule")
		}
		t, err := client().AddTimer(ctx, name, api.Timer{Name: *timerName, Schedule: *schedule, Enabled: enabled})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Added timer %s (%s UTC) to task %s\n", t.Name, t.Schedule, name)
		return nil
	case "update":
		fs := newFlags("task timer update", "task timer update NAME --timer-name T [--schedule CRON] [--enabled=BOOL]")
		srv.add(fs)
		timerName := fs.String("timer-name", "", "the timer's `name`")
		schedule := fs.String("schedule", "", "the new "+scheduleHelp)
		enabled := fs.Bool("enabled", true, "whether the timer starts runs")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		if *timerName == "" {
			return usagef("task timer update needs --timer-name")
		}
		var p api.TimerPatch
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "schedule":
				p.Schedule = schedule
			case "enabled":
				p.Enabled = enabled
			}
		})
		if p.Schedule == nil && p.Enabled == nil {
			return usagef("task timer update has nothing to change: give --schedule, --enabled or both")
		}
		t, err := client().UpdateTimer(ctx, name, *timerName, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Updated timer %s of task %s: %s UTC, %s\n", t.Name, name, t.Schedule, timerStatus(t))
		return nil
	case "remove":
		fs := newFlags("task timer remove", "task timer remove NAME --timer-name T")
		srv.add(fs)
		timerName := fs.String("timer-name", "", "the timer's `name`")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		if *timerName == "" {
			return usagef("task timer remove needs --timer-name")
		}
		if err := client().RemoveTimer(ctx, name, *timerName); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed timer %s from task %s\n", *timerName, name)
		return nil
	case "list":
		fs := newFlags("task timer list", "task timer list NAME [-o json]")
		srv.add(fs)
		output := fs.String("o", "table", "output `format`: table or json")
		name, err := oneName(fs, args[1:])
		if err != nil {
			return err
		}
		timers, err := client().Timers(ctx, name)
		if err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, timers)
		}
		return printTimerTable(stdout, timers)
	default:
		return usagef("unknown task timer subcommand %q: use add, update, remove or list", args[0])
	}
}

// scheduleList is the repeatable --schedule "[NAME:]CRON" of `task create`. A cron expression holds no ':',
// so the text before the first one, if any, is the timer's name.
type scheduleList []api.Timer

func (s *scheduleList) String() string {
	var out []string
	for _, t := range *s {
		out = append(out, t.Name+":"+t.Schedule)
	}
	return strings.Join(out, ",")
}

func (s *scheduleList) Set(v string) error {
	name, schedule, named := strings.Cut(v, ":")
	if !named {
		name, schedule = "", v
	}
	name, schedule = strings.TrimSpace(name), strings.TrimSpace(schedule)
	switch {
	case named && name == "":
		return fmt.Errorf("%q has an empty timer name before ':'", v)
	case schedule == "":
		return fmt.Errorf("%q has no cron expression", v)
	}
	*s = append(*s, api.Timer{Name: name, Schedule: schedule})
	return nil
}

// timerStatus is "Enabled" or "Disabled", as ACR shows a timer trigger's status.
func timerStatus(t *api.Timer) string {
	if t.Enabled != nil && !*t.Enabled {
		return "Disabled"
	}
	return "Enabled"
}

func printTimerTable(w io.Writer, timers []api.Timer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE (UTC)\tSTATUS")
	for _, t := range timers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Schedule, timerStatus(&t))
	}
	return tw.Flush()
}
