// Package buildkitd supervises a buildkitd process on the machine Kiln runs on: it starts the daemon with the
// OCI worker on overlayfs, restarts it whenever it exits, and stops it when Kiln stops. The builds' containers
// get a network of their own, on a bridge that the machine's firewall closes to the machine itself and to the
// other containers on it (network.go, firewall.go): a build is untrusted code, and must reach none of Kiln's
// services and no other build. Before each start, and after buildkitd has exited, the containers a dead
// buildkitd left running are ended (orphans.go), and on the way out the network namespaces it left are taken
// down (netns.go), so that no build step outlives the buildkitd that ran it.
//
// A single-machine Kiln runs one Supervisor and builds through its Addr; a multi-machine installation points
// Kiln at remote BuildKit daemons instead. The child runs in its own process group and is sent SIGKILL by the
// kernel if Kiln dies, so a killed Kiln leaves no buildkitd behind. buildkitd's OCI worker needs root here:
// Run says so rather than start a daemon that cannot build.
package buildkitd
