// Package basepoll finds out when a tracked base image tag moves on a registry that tells no one: Docker Hub
// and most public registries. It is one of the three sources of base image changes, with the ImagePushed
// events workers publish after their own pushes and the registry notifications a webhook receives.
//
// A Poller asks the registry for the digest behind each distinct tag its Tags name with one HEAD request
// (go-containerregistry's remote package), every Interval give or take Jitter, however many tasks build on
// the tag. When the digest differs from the one recorded in the tag's proto.TagState it publishes an
// ImagePushed with source "poll" on proto.SubjectImagePushed, then records the new digest; the base image
// watchers consuming that subject start the tasks built on the tag. The first digest seen of a tag is only
// recorded: there is nothing to compare it with.
//
// Any number of Pollers, in any number of Kiln processes on the same JetStream, share the work without
// asking twice: before it asks, a Poller claims the tag by moving the tag state's next_poll forward with a
// compare-and-swap, and only the Poller whose swap wins sends the request. A Poller also remembers the
// next_poll it last saw of each tag, so that it reads a tag's state only when the tag may be due.
//
// A failed request is recorded on the tag (its error and the count of failures in a row) and tried again
// after a backoff that doubles from Backoff up to Interval. A registry that answers 429 Too Many Requests
// (or 503 with a Retry-After) is asked nothing more by this process, for any tag, until the time its
// Retry-After header names, or for a backoff when it names none; the tag that was refused is not due again
// before then for any process. go-containerregistry's own retries are turned off, so that one poll is one
// request; its ping and token for each repository are reused for an hour.
//
// Digest asks the same way for one tag, recording nothing: the registry webhook looks up with it the tags of
// notifications that give no digest (Docker Hub's).
//
// Run passes over the tags whenever one is due and at least every Tick. PollOnce is one such pass, for a
// test or a benchmark that counts requests per cycle.
//
// Of Kiln's packages it imports only proto; the store and JetStream come in through its own Store and
// Publisher, and the tags to poll through Tags.
package basepoll
