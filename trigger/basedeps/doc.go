// Package basedeps reads which base images a Dockerfile builds on, from the Dockerfile alone and with BuildKit's
// own parser, so that Kiln knows a task's bases when the task is saved, before any run. The triggers that
// rebuild images when a base changes (Kiln's own pushes, registry notifications, polling) work from these.
// What a run actually built on, with the digests BuildKit resolved, is recorded by the worker on the run.
//
// Dependencies reads a Dockerfile given as bytes; ForTask fetches a task's Dockerfile at the head of its branch
// (go-git, depth 1, in memory) and reads it, for the API when a task is saved and the base image watcher after
// a task's runs.
package basedeps
