// Package api is Kiln's HTTP API and its Go client.
//
// The server (NewServer) takes on-demand build submissions: a multipart request whose first part is a JSON
// BuildRequest and whose second part is the build context, a tar or tar.gz archive. It checks the archive as it
// streams into the store, records the run as Queued and publishes a proto.RunRequested on
// proto.SubjectRunRequested for a worker to pick up. It also serves runs, their logs and cancels, and the
// health endpoints an orchestrator probes. Every answer is JSON; every error is
// {"error":{"code":"...","message":"..."}}, its HTTP status decided by the proto error code alone.
//
// A submission may instead name its context by URL (BuildRequest.Context), with no archive: a git repository,
// whose ref is resolved to a commit at once (gitremote.Resolve) so that the run records what it builds, or a tar
// or tar.gz archive that the worker downloads.
//
// Tasks (/v1/tasks) are saved builds of a git repository's branch with their triggers, like ACR tasks. The
// server creates, changes and deletes them, registers their webhooks through a HookRegistrar when one is
// configured, and starts their manual runs (POST /v1/tasks/{name}/runs) at the branch's current head. A task's
// secrets (its git token and webhook secret) can be set but are never answered. When a task is saved, the base
// images of its Dockerfile at the branch's head are read (Config.ReadBases, basedeps.ForTask by default); a
// Dockerfile that cannot be built refuses the save. GET /v1/tasks/{name}/deps shows those bases with the
// digests Kiln knows of them.
//
// The client (NewClient) speaks that API for the kiln CLI and the end-to-end tests; an error answer comes back
// as a *proto.Error. PackContext packs a directory the way docker build does, .dockerignore included, so that
// the CLI can stream it to SubmitRun without holding it in memory.
//
// The package imports only proto, store and trigger/... of Kiln's: it talks to workers through events, never
// directly.
package api
