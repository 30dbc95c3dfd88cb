// Package basedeps reads which base images a Dockerfile builds on, from the Dockerfile alone and with BuildKit's
// own parser, so that Kiln knows a task's bases when the task is saved, before any run. The triggers that
// rebuild images when a base changes (Kiln's own pushes, registry notifications, polling) work from these.
// What a run actually built on, with the digests BuildKit resolved, is recorded by the worker on the run.
package basedeps
