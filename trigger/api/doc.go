// Package api is Kiln's HTTP API and its Go client.
//
// The server (NewServer) takes on-demand build submissions: a multipart request whose first part is a JSON
// BuildRequest and whose second part is the build context, a tar or tar.gz archive. It checks the archive as it
// streams into the store, records the run as Queued and publishes a proto.RunRequested on
// proto.SubjectRunRequested for a worker to pick up. It also serves runs, their logs and cancels, and the
// health endpoints an orchestrator probes. Every answer is JSON; every error is
// {"error":{"code":"...","message":"..."}}, its HTTP status decided by the proto error code alone.
//
// The client (NewClient) speaks that API for the kiln CLI and the end-to-end tests; an error answer comes back
// as a *proto.Error. PackContext packs a directory the way docker build does, .dockerignore included, so that
// the CLI can stream it to SubmitRun without holding it in memory.
//
// The package imports only proto and store of Kiln's: it talks to workers through events, never directly.
package api
