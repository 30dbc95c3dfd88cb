// Package timer starts the runs of tasks' timers: schedules in five-field cron, read in UTC, at most once a
// minute, like the timer triggers of ACR tasks (az acr task timer).
//
// A task keeps its timers (proto.Timer: name, schedule, disabled). ParseSchedule and Check say what a timer may
// be; trigger/api uses them when timers are saved, and the Scheduler when it reads them.
//
// Every Kiln process that serves the API runs a Scheduler. Its Run wakes just after each minute boundary and
// ticks: it reads the tasks as they are then and starts a run for each occurrence of an enabled timer that has
// come since its last tick. However many processes tick, each occurrence starts one run: the first process to
// mark the occurrence in the store (store.MarkDelivery, source "timer", ID "TASK/TIMER/UNIX-MINUTE") queues it,
// the others find the mark and skip it, and a run that could not be queued has its mark removed again so that
// a later tick, of any process, starts it.
//
// Occurrences missed while no process ran, or while the store was down, are not backfilled: a tick starts at
// most one run per timer, for its latest occurrence since the previous tick, and only if that occurrence is at
// most CatchUp (five minutes by default) old. A Scheduler's first tick looks back the whole CatchUp, but not
// before the task was last changed, so that adding or changing a timer never fires an occurrence from before
// the change.
//
// The run a timer starts is a run of the task like a manual one: the head of its branch, resolved to a commit
// when the repository answers, with trigger TIMER and, under timer, the timer's name and the occurrence's time.
package timer
