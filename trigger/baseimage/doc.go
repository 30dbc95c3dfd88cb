// Package baseimage starts the runs that base image updates call for: when the digest behind a tag a task
// builds on changes, the task runs again, once.
//
// Three sources report tags and their digests, all as proto.ImagePushed on JetStream: workers after each push
// (a base task feeding app tasks), the registry webhook (trigger/webhook) and the poller (trigger/basepoll).
// The Watcher consumes them through one durable consumer shared by every Kiln process, and applies one rule:
// a task runs when the digest behind one of its tracked tags differs from the later of the digest it last
// built on and the digest it was last started for. Changes that land inside the settle window start one run
// per task. Everything it decides is kept per task in the store (proto.TaskBases), compare-and-swapped, so
// that any number of processes share the work and none starts a run twice: a change is first recorded as
// pending with a due time, then claimed by the one process whose swap moves it to firing, queued, and cleared.
//
// The Index is every process's in-memory view of which tasks track which tags, kept current by a watch of the
// task bucket; the registry webhook and the poller ask it which tags are tracked.
package baseimage
