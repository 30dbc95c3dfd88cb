// Package e2e tests Kiln whole: each test starts the same Main the binary runs, on port 0, against embedded
// NATS JetStream, the embedded registry and a real buildkitd, and drives it through the HTTP API and the real
// kiln binary. Nothing is faked. The tests need bin/buildkitd (`make build`); without it they fail, never skip.
package e2e
