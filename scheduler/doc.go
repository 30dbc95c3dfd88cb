// Package scheduler runs builds. A Worker pulls RunRequested events from the durable JetStream consumer that
// every worker process shares, claims the run in the store, fetches its context, has BuildKit build it (package
// builder), pushes the images, keeps the log, and records how the run ended.
//
// A worker never talks to a trigger: the events and records in proto, on NATS, are the only link, so workers can
// run on other machines than the API and as many as the BuildKit daemons can carry. A message is acknowledged
// only once its run has a terminal status; while a build goes on the worker tells JetStream it is still in
// progress, so a worker that dies leaves a message that JetStream delivers again to another worker.
package scheduler
