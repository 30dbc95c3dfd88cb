// Package serve wires Kiln's parts into one process: what `kiln serve` runs and what the end-to-end tests start.
// Main connects to NATS (or embeds a server), opens the store, starts the embedded registry and a supervised
// buildkitd unless told where to find others, and runs the HTTP API and the workers. It holds no logic of its
// own beyond choosing defaults and the order things start and stop in.
package serve
