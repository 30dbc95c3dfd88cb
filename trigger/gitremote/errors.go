package gitremote

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/kilnbuild/kiln/proto"
)

// maxReason bounds how much of a git server's own explanation an error repeats.
const maxReason = 200

// Error gives err, a failure of talking to a git server with go-git (what says what was being done, as in
// "fetching refs/heads/main of https://host/app.git"), its kind: proto.Unavailable when the server could not be
// reached, failed (5xx, 408, 429) or took longer than ctx allows, as trying later may work; proto.Invalid
// otherwise (credentials refused, no such repository, not a git server). The message is what and the first
// line of err, with a hint when one helps; token is taken out of it, and the cause is dropped when its own
// message holds the token.
func Error(ctx context.Context, what, token string, err error) error {
	code := proto.Invalid
	hint := ""
	var netErr net.Error
	switch status := httpStatusOf(err); {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		hint = " (a private repository needs a git token that may read it)"
	case errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, transport.ErrEmptyRemoteRepository):
	case ctx.Err() != nil, status >= 500, status == 429, status == 408,
		errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		code = proto.Unavailable
	case status == 0:
		hint = " (is it a git repository?)"
	}
	e := &proto.Error{Code: code, Message: redact(what+": "+oneLine(err.Error())+hint, token), Err: err}
	if token != "" && strings.Contains(err.Error(), token) {
		e.Err = nil
	}
	return e
}

// httpStatusOf returns the HTTP status of a git server's error answer, or 0 when err is not one. go-git wraps
// it in a plumbing.UnexpectedError, which errors.As cannot see through.
func httpStatusOf(err error) int {
	var ue *plumbing.UnexpectedError
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var he *githttp.Err
	if errors.As(err, &he) {
		return he.StatusCode()
	}
	return 0
}

// oneLine shortens a message that may carry a server's whole answer to its first line, at most maxReason bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	s = strings.TrimRight(strings.TrimSpace(s), ":")
	if len(s) > maxReason {
		s = s[:maxReason] + "..."
	}
	return s
}

// redact replaces token with "[token]" in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[token]")
}
