package gitremote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/kilnbuild/kiln/proto"
)

func TestError(t *testing.T) {
	status := func(code int) error { // as go-git's HTTP transport makes it
		u, _ := url.Parse("https://git.example/app.git/info/refs")
		return githttp.NewErr(&http.Response{StatusCode: code, Request: &http.Request{URL: u}})
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code proto.Code
		want string // in the message
	}{
		{"no credentials", context.Background(), status(401), proto.Invalid, "needs a git token"},
		{"credentials refused", context.Background(), status(403), proto.Invalid, "needs a git token"},
		{"no repository", context.Background(), status(404), proto.Invalid, "repository not found"},
		{"empty repository", context.Background(), transport.ErrEmptyRemoteRepository, proto.Invalid, "empty"},
		{"server failing", context.Background(), status(503), proto.Unavailable, "status code: 503"},
		{"too many requests", context.Background(), status(429), proto.Unavailable, "status code: 429"},
		{"request timeout", context.Background(), status(408), proto.Unavailable, "status code: 408"},
		{"other status", context.Background(), status(400), proto.Invalid, "status code: 400"},
		{"unreachable", context.Background(), &net.OpError{Op: "dial", Err: errors.New("connection refused")}, proto.Unavailable, "connection refused"},
		{"cut short", context.Background(), io.ErrUnexpectedEOF, proto.Unavailable, "unexpected EOF"},
		{"out of time", canceled, errors.New("reading the answer"), proto.Unavailable, "reading the answer"},
		{"not git", context.Background(), errors.New("unexpected pkt-line"), proto.Invalid, "is it a git repository?"},
		{"whole answer", context.Background(), errors.New("first line:\nsecond line"), proto.Invalid, "listing: first line (is it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Error(tt.ctx, "listing", "", tt.err)
			if got := proto.ErrorCode(err); got != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Error(%v) = %v (%s), want kind %s naming %q", tt.err, err, got, tt.code, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Error(%v) = %q, want one line", tt.err, err)
			}
		})
	}
}

func TestErrorRedacts(t *testing.T) {
	const token = "ghp_s3cretToken"
	cause := errors.New("Get https://x-access-token:" + token + "@git.example/app.git: connection refused")
	err := Error(context.Background(), "listing the refs of https://git.example/app.git", token, cause)
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[token]") {
		t.Errorf("Error(...) = %q, want the token replaced by [token]", err)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("Error(...) keeps a cause %q that holds the token", errors.Unwrap(err))
	}
	if err := Error(context.Background(), "listing", token, io.EOF); !errors.Is(err, io.EOF) {
		t.Errorf("Error(io.EOF) = %v, want it to keep its cause", err)
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("x", maxReason+50)
	if got := oneLine(long); got != long[:maxReason]+"..." {
		t.Errorf("oneLine(%d bytes) = %d bytes, want the first %d and ...", len(long), len(got), maxReason)
	}
	if got := oneLine("  authentication required: \nmore"); got != "authentication required" {
		t.Errorf("oneLine(...) = %q, want %q", got, "authentication required")
	}
}
