// Package gittest serves real git repositories over HTTP for tests, as a forge does: a Server runs
// `git http-backend` on bare repositories, and a Repo is a work tree a test commits to and publishes there.
//
// The tests of trigger/api, trigger/gitremote and trigger/basedeps, and the end-to-end tests in e2e, use it to
// resolve refs, read Dockerfiles and build from a repository as they would from GitHub. Every git it runs has a
// config of its own, so the machine's does not change what a test sees.
//
// The package imports nothing of Kiln's.
package gittest
