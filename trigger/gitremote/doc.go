// Package gitremote talks to a git server over HTTP with go-git, as the triggers need it: List reads the refs a
// repository advertises (`git ls-remote`), Pick chooses the one a branch or tag name means, Resolve does both
// to turn a name into a commit, and Error gives any failure of talking to the server one of Kiln's error kinds.
//
// The API resolves a submitted context's ref or a task's branch to the commit a run records (Resolve), the
// runs that the timers and base image watcher start do the same through trigger/queue, and trigger/basedeps
// lists and then fetches a task's branch to read its Dockerfile (List, Pick, Auth and Error). A token is the
// password of HTTP basic authentication and never appears in an error.
//
// The package imports only proto of Kiln's.
package gitremote
