// Package github connects Kiln's tasks to GitHub through its REST API, with go-github.
//
// It does two things, both for tasks whose source repository is on the GitHub that Config.APIURL names
// (github.com by default, or a GitHub Enterprise Server):
//
//   - Hooks registers a repository webhook when a task is created and deletes it when the task is deleted.
//     The webhook sends push and pull_request events to Config.PublicURL + "/v1/webhooks/github", signed with the
//     task's webhook secret, where package trigger/webhook receives them. A task without a git token or a webhook
//     secret, or a Kiln without a public URL, gets no webhook from Kiln: the user then adds it on GitHub by hand
//     (Settings → Webhooks, content type application/json, the task's secret, push and pull_request events).
//   - Reporter follows the proto.RunStatusChanged events on the proto.StreamStatus stream and posts a commit
//     status ("kiln/<task>") on the commit each git-triggered run builds: pending while it is queued or running,
//     then success, failure or error. It is a reporter only: it is not in the build path, and a status GitHub
//     will not take never fails a build.
//
// Errors carry a proto error code: proto.Invalid when GitHub refuses the token or does not know the repository
// (retrying would fail the same way), proto.Unavailable when GitHub did not answer, answered 5xx or rate-limited
// the token (retrying later may work). No error and no log line contains a token.
//
// The package imports only proto of Kiln's. The store is reached through the small interface Store, which
// *store.Store satisfies.
package github
