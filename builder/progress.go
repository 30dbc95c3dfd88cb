package builder

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
)

// progress renders a solve's status to a log in BuildKit's plain form and notes the base images the solve
// resolved on the way.
type progress struct {
	log     io.Writer
	display progressui.Display
	// bases is filled while the status is consumed; read it only after consume's channel is closed.
	bases []BaseImage
}

// newProgress returns a progress that writes to log.
func newProgress(log io.Writer) (*progress, error) {
	d, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return nil, fmt.Errorf("starting the progress display: %w", err)
	}
	return &progress{log: log, display: d}, nil
}

// consume reads status until it is closed, which the solve does when it returns, and closes the returned
// channel once everything is written to the log. It keeps reading after ctx is done, so that the solve is never
// blocked sending to status and its last lines, the error among them, reach the log.
func (p *progress) consume(ctx context.Context, status <-chan *client.SolveStatus) <-chan struct{} {
	shown := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(shown)
		seen := map[BaseImage]bool{}
		for s := range status {
			for _, v := range s.Vertexes {
				if b, ok := baseImage(v.Name); ok && !seen[b] {
					seen[b] = true
					p.bases = append(p.bases, b)
				}
			}
			shown <- s
		}
	}()
	go func() {
		defer close(done)
		warnings, _ := p.display.UpdateFrom(context.WithoutCancel(ctx), shown)
		for _, w := range warnings {
			fmt.Fprintf(p.log, "WARNING: %s\n", w.Short)
		}
	}()
	return done
}

// baseImage reads the base image out of the name of a vertex that pulls one. The Dockerfile frontend names it
// "[stage-0 1/3] FROM docker.io/library/alpine:3@sha256:..." ("FROM ..." alone in a stage with no other
// instruction) once it has resolved the reference to a digest.
func baseImage(vertex string) (BaseImage, bool) {
	var rest string
	if r, ok := strings.CutPrefix(vertex, "FROM "); ok {
		rest = r
	} else if i := strings.Index(vertex, "] FROM "); i >= 0 && strings.HasPrefix(vertex, "[") {
		rest = vertex[i+len("] FROM "):]
	} else {
		return BaseImage{}, false
	}
	ref, dgst, ok := strings.Cut(rest, "@")
	if !ok || !strings.HasPrefix(dgst, "sha256:") || strings.ContainsAny(rest, " \t") {
		return BaseImage{}, false
	}
	return BaseImage{Ref: ref, Digest: dgst}, true
}
