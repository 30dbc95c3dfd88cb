// Package webhook starts runs of tasks from git hosts' webhook deliveries, the way ACR Tasks' commit and pull
// request triggers do, and tells Kiln of the base image pushes that registries notify it of, the way ACR
// Tasks' base image update triggers hear of them.
//
// Handler serves two endpoints:
//
//   - POST /v1/webhooks/github takes GitHub's deliveries, and Gitea's and Forgejo's, which carry GitHub's
//     headers around bodies of their own shape. A delivery must be signed with the webhook secret of a task
//     that builds its repository: X-Hub-Signature-256, an HMAC-SHA256 of the raw body (GitHub) or of the JSON
//     payload (Gitea and Forgejo, which sign the payload also when they send it as a form), or X-Gitea-Signature,
//     X-Gogs-Signature or X-Forgejo-Signature, the payload's HMAC-SHA256 in bare hex.
//   - POST /v1/webhooks/gitlab takes GitLab's push, tag push and merge request hooks, authenticated by X-Gitlab-Token, which
//     must equal the webhook secret of a task that builds the project.
//
// Nothing of a body is believed before it is proven. GitLab's token is checked against every task's secret
// before the body is read; a GitHub, Gitea or Forgejo body is hashed under every task's secret as it streams
// in, and parsed, once, only when a signature matches. A delivery that proves nothing gets the same 401
// whatever repository it names. Bodies are read within a deadline (Config.BodyTimeout) into memory reserved
// from a Budget that all deliveries share: one that finds no room in time is answered 503.
//
// Both are mounted outside the API's bearer-token check: the signature or token is the authentication. A
// delivery counts for the tasks whose secret it proves and for no other, and a task with no webhook secret is
// never started by a webhook: GitHub's own check accepts an unsigned body when no secret is expected, and
// anyone can reach these endpoints.
//
// A delivery names its repository; the tasks whose source URL is that repository (compared after lowercasing
// the scheme and host and dropping a trailing ".git" and "/") are its candidates. For each task it proves,
// a branch push to the task's branch (its source ref, or the repository's default branch when it names none)
// starts a commit run if the task has the commit trigger and the push touched a file its path filters match;
// a tag push starts a tag run if the task has the tag trigger; a pull request (or GitLab merge request) opened,
// reopened or given new commits against the task's branch starts a pull request run if the task has the pull request trigger, which pushes
// its images only when the task allows it, the code being untrusted. A run builds exactly the commit the
// delivery names, never what the ref points to later. Deleted refs and every other event start nothing.
//
// The handler answers as soon as the runs' RunRequested events are on JetStream, well inside the ten seconds
// GitHub waits: 202 with {"runs": [...]}, or a 2xx with {"ignored": "..."} saying why nothing started, with
// {"skipped": {task: reason}} for the proven tasks that started nothing. A ping is 200 unless its signature is
// refused. A delivery ID (X-GitHub-Delivery; GitLab's Idempotency-Key, else X-Gitlab-Event-UUID) is acted on
// once per task, and so is the change a body describes (a push's repository, ref, before and after; a pull
// request's repository, number, head commit and action), whatever delivery ID carries it: a redelivery, or
// the same body replayed under a new ID or none, starts no second run, unless the first attempt failed and
// answered 503.
//
// RegistryHandler serves a third endpoint, POST /v1/webhooks/registry, for base image update triggers. It takes
// the notification envelopes of a Docker distribution registry (the events v1 media type from registry 2.x, v2
// from 3.x, or application/json), and the webhooks of ACR (a bare distribution event), Harbor (its Default
// format) and Docker Hub, each read by a file of its own (registryacr.go, registryharbor.go,
// registrydockerhub.go) into the same notices, told apart by the Content-Type or else the body's shape; a body
// of no known shape is refused with 400. It is authenticated by "Authorization: Bearer <token>" (or the token
// query parameter, for Docker Hub, which sets no header) with the one token it is configured with, and
// publishes a proto.ImagePushed on proto.SubjectImagePushed for each push of a manifest by tag whose
// reference, <registry host>/<repository>:<tag> normalized by basedeps.Normalize, some task builds on (its
// TrackedRefs says which). The host is the one the body names (distribution's and ACR's request.host, the host
// of Harbor's resource_url, docker.io for Docker Hub), or the URL's registry query parameter when given.
// Docker Hub gives no digest: its TagLookup (the base poller) finds it, and a lookup that fails answers 503 with
// a Retry-After. Pulls, deletes, blobs and pushes by digest are ignored. The event's ID (or, for Harbor and
// Docker Hub, which have none, one made of the push) is the message ID, so that JetStream keeps one copy of a
// body sent again. The answer is 202 once every event is on JetStream, and 503 when one could not be
// published: distribution sends an envelope again until it gets a 2xx, holding back the events after it, so
// an event that names no image is skipped (and said so in the answer) rather than refused; the other senders'
// bodies hold one push, and one that names no image is refused with 400.
//
// Of Kiln's packages it imports only proto, trigger/tags and trigger/basedeps: the store and the queue
// (trigger/queue) come in through its own Store, Enqueuer and Publisher, and workers hear of runs only through
// the events the queue publishes.
package webhook
