package builder

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/kilnbuild/kiln/proto"
)

// final reports whether a failed fetch by commit hash is one that fetching the ref instead cannot help: the
// caller gave up, the repository cannot be read with these credentials, or the server cannot be reached.
func final(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var netErr net.Error
	return errors.Is(err, transport.ErrAuthenticationRequired) ||
		errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) ||
		errors.Is(err, transport.ErrEmptyRemoteRepository) ||
		errors.As(err, &netErr)
}

// remoteError is a failure of git's conversation with the remote, as opposed to one of the cache on disk.
type remoteError struct{ err error }

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

// fetchError gives a failed fetch its kind: proto.Unavailable when ctx ended (the run may go back to the queue);
// proto.Invalid for a remoteError, since what the remote says (authentication required, no such repository, ref
// or commit, a server that cannot be reached) stays true when the same fetch is tried again; the kind it has for
// an error that has one; proto.Internal for the rest, the cache's own failures. The message is on one line, with
// the token taken out; the cause is kept for errors.Is unless its own message holds the token.
func fetchError(ctx context.Context, what string, err error, token string) error {
	if ctx.Err() != nil {
		return proto.Errorf(proto.Unavailable, "%s: stopped: %w", what, context.Cause(ctx))
	}
	msg := strings.TrimRight(oneLine(err.Error()), ": ") // go-git ends with ": " when the server said nothing more
	e := &proto.Error{Code: proto.Internal, Message: what + ": " + redact(msg, token), Err: err}
	var pe *proto.Error
	var re *remoteError
	switch {
	case errors.As(err, &pe):
		e.Code = pe.Code
	case errors.As(err, &re):
		e.Code = proto.Invalid
	}
	if token != "" && redact(err.Error(), token) != err.Error() {
		e.Err = nil // the cause would tell the token to whoever unwraps it
	}
	return e
}

// redact replaces token, as it is and URL-escaped, with "[token]" in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	for _, t := range []string{token, url.QueryEscape(token), url.PathEscape(token)} {
		s = strings.ReplaceAll(s, t, "[token]")
	}
	return s
}

// oneLine joins the non-empty lines of s with "; ".
func oneLine(s string) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "; ")
}

// redactWriter writes to w with a token taken out of every write. Kiln writes its log a line at a time, so a
// token is never split across two writes.
type redactWriter struct {
	w     io.Writer
	token string
}

func (r redactWriter) Write(p []byte) (int, error) {
	if r.token == "" {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, redact(string(p), r.token)); err != nil {
		return 0, err
	}
	return len(p), nil
}
