package buildkitd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
)

// Readiness polling: how often WaitReady asks buildkitd, and how long one question may take.
const (
	pollInterval = 250 * time.Millisecond
	pollTimeout  = 2 * time.Second
)

// WaitReady returns nil once buildkitd answers on Addr and lists at least one worker. It returns ctx's error,
// wrapped with the last reason buildkitd was not ready, when ctx is done first, and an error at once if Run
// has returned.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	for {
		select {
		case <-s.done:
			return s.stoppedErr()
		default:
		}
		err := ping(ctx, s.cfg.Addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for buildkitd on %s: %w (last try: %v)", s.cfg.Addr, ctx.Err(), err)
		case <-s.done:
			return s.stoppedErr()
		case <-time.After(pollInterval):
		}
	}
}

// ping asks the buildkitd at addr for its workers and returns an error unless it lists at least one.
func ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		return err
	}
	if len(workers) == 0 {
		return errors.New("no workers yet")
	}
	return nil
}

// stoppedErr is WaitReady's error once Run has returned.
func (s *Supervisor) stoppedErr() error {
	if err := s.result(); err != nil {
		return fmt.Errorf("waiting for buildkitd on %s: supervisor stopped: %w", s.cfg.Addr, err)
	}
	return fmt.Errorf("waiting for buildkitd on %s: supervisor stopped", s.cfg.Addr)
}
