// Package natsd runs an embedded NATS server with JetStream on file storage, inside the Kiln process.
//
// A single-machine Kiln starts one with Start and hands its ClientURL to the parts that publish and consume
// events; a multi-machine installation gives those parts the URL of a NATS cluster instead. The server is
// silent: it logs nothing and installs no signal handlers, so the process that embeds it keeps control of both.
package natsd
