// Package deploy holds what Kiln starts by itself when it runs on one machine: an embedded NATS server with
// JetStream (package natsd), an embedded OCI registry (package ociregistry) and a supervised buildkitd process
// (package buildkitd). Each is a stand-in for something a multi-machine installation runs on its own: a NATS
// cluster, a registry of its own and remote BuildKit daemons. Kiln's other parts only ever see a NATS URL, a
// registry address and a BuildKit address, so they cannot tell the embedded parts from the real ones.
//
// The packages under deploy import outside libraries only, never other Kiln packages but httpfront, the limits
// that every HTTP listener Kiln starts shares; cmd/kiln wires them in.
// Later the deployment files for multi-machine installations live here too.
package deploy
