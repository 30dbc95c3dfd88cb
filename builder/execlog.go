package builder

import (
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// pullPrefix begins the name of the vertex that pulls an Exec's image, the rest of which is the image.
const pullPrefix = "pull "

// copyExecOutput writes to log the output of the vertex named exec, stdout and stderr as they come, and a line
// when buildkitd starts downloading the image ("pulling IMAGE"), which may take a while, but nothing else of the
// solve: no step numbers, timings, transfers, which a user reading a cmd step's log has no use for. It reads
// status until it is closed, which the solve does when it returns, and closes the returned channel once
// everything is written.
//
// BuildKit drops a step's output past 2 MiB, and what goes beyond 200 KiB a second since the step started
// ("[output clipped, log limit ... reached]"), unless buildkitd runs with BUILDKIT_STEP_LOG_MAX_SIZE and
// BUILDKIT_STEP_LOG_MAX_SPEED set (-1: no limit).
func copyExecOutput(status <-chan *client.SolveStatus, exec string, log io.Writer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var execDigest digest.Digest
		pulls := map[digest.Digest]string{} // the pull vertices, and their image until its download is told
		for s := range status {
			for _, v := range s.Vertexes {
				switch {
				case v.Name == exec:
					execDigest = v.Digest
				case strings.HasPrefix(v.Name, pullPrefix):
					if _, ok := pulls[v.Digest]; !ok {
						pulls[v.Digest] = strings.TrimPrefix(v.Name, pullPrefix)
					}
				}
			}
			for _, st := range s.Statuses {
				if image := pulls[st.Vertex]; image != "" && strings.HasPrefix(st.ID, "sha256:") {
					fmt.Fprintf(log, "pulling %s\n", image)
					pulls[st.Vertex] = ""
				}
			}
			for _, l := range s.Logs {
				if l.Vertex == execDigest {
					log.Write(l.Data)
				}
			}
		}
	}()
	return done
}
