// Package builder turns a build context into pushed images. It is the only part of Kiln that talks to
// BuildKit and, for pushes, to registries; the scheduler's workers call it and import nothing else of it.
//
// A run goes through three steps, each its own call so that a worker can record and time them:
//
//   - The build context goes into an empty directory, from one of three sources: Extract unpacks an uploaded
//     archive (tar or tar.gz), refusing anything that would land outside it and stopping at a size limit;
//     DownloadContext downloads such an archive from a URL and extracts it the same way; GitCache.Fetch checks
//     out one commit of a git repository (or a directory of it), fetching only what its cache lacks.
//   - Builder.Build solves the Dockerfile with BuildKit's Dockerfile frontend on a running buildkitd and exports
//     the result as an OCI layout directory, writing BuildKit's plain progress to the io.Writer it is given.
//   - Push uploads that layout to each tag with go-containerregistry, retrying with backoff.
//
// A multi-step run's cmd steps go through Builder.Exec, docker run on BuildKit: the command runs in a container
// of a registry image or of an image an earlier Build left in an OCI layout, with the run's workspace directory
// mounted at /workspace and copied back afterwards, its output going to the io.Writer it is given.
//
// Errors carry a proto error kind that tells the worker what to do with the run: proto.Invalid (and
// proto.TooLarge) is the build's own failure, a Dockerfile error, a failing RUN step, a refused or unreachable
// push, a git repository, ref or commit that cannot be fetched, and ends the run failed since retrying the same
// thing fails again; proto.Unavailable means Kiln's surroundings are down for now, buildkitd unreachable or lost,
// or the caller gave up, and the run may go back to the queue.
//
// BuildKit pulls bases itself, inside buildkitd: a registry on a loopback address (127.0.0.1:PORT, localhost:PORT)
// is spoken to over plain HTTP without configuration, but any other plain-HTTP or self-signed registry needs a
// [registry."host:port"] entry with http = true (or insecure = true) in buildkitd.toml.
package builder
