// Package ociregistry runs an embedded OCI registry, distribution/v3 used as a library with its filesystem
// storage driver, inside the Kiln process.
//
// A single-machine Kiln pushes its builds there and pulls base images from it; a multi-machine installation
// points Kiln at a registry of its own instead. The registry can POST distribution's notification envelopes
// (pushes, pulls and deletes) to webhook endpoints, which is how it tells Kiln that an image changed.
//
// The registry asks for a user and password (HTTP Basic) before every push and delete, and before every request
// at all when it listens beyond loopback; on loopback it still serves anonymous pulls.
//
// distribution logs through logrus. The registry started here writes nothing: its log lines go to io.Discard
// through a logger held by its own context, and access logging is off. A few lines that distribution sends to
// logrus's process-wide logger instead (see quiet.go) are left to the program that owns that logger.
package ociregistry
