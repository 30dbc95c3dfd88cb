package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// failure turns an error of a go-github call into a proto error that says what was being done (doing:
// "creating a webhook on acme/app") and of which kind the failure is:
//
//	401, 403                     proto.Invalid      GitHub refused the token
//	404                          proto.Invalid      no such repository, or the token cannot see it
//	other 4xx                    proto.Invalid      GitHub refused the request as it is
//	403 or 429 for a rate limit  proto.Unavailable
//	5xx, no answer               proto.Unavailable
//
// The result keeps none of go-github's error values, whose request carries the Authorization header; only a
// context error is kept as the cause, for errors.Is. Its message never contains token.
func failure(doing string, r repo, token string, err error) error {
	code, msg := classify(doing, r, err)
	if token != "" {
		msg = strings.ReplaceAll(msg, token, "[token]")
	}
	var cause error
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ctxErr) {
			cause = ctxErr
		}
	}
	return &proto.Error{Code: code, Message: msg, Err: cause}
}

// classify returns the kind of err and a sentence that says what went wrong.
func classify(doing string, r repo, err error) (proto.Code, string) {
	var (
		rateLimit  *gh.RateLimitError
		abuseLimit *gh.AbuseRateLimitError
		twoFactor  *gh.TwoFactorAuthError
		answer     *gh.ErrorResponse
	)
	switch {
	case errors.As(err, &rateLimit):
		return proto.Unavailable, fmt.Sprintf("%s: the token's GitHub rate limit is spent until %s: %s",
			doing, rateLimit.Rate.Reset.Format("15:04:05 MST"), rateLimit.Message)
	case errors.As(err, &abuseLimit):
		return proto.Unavailable, fmt.Sprintf("%s: GitHub's secondary rate limit: %s", doing, abuseLimit.Message)
	case errors.As(err, &twoFactor):
		answer = (*gh.ErrorResponse)(twoFactor)
	case errors.As(err, &answer):
	default:
		return proto.Unavailable, fmt.Sprintf("%s: GitHub did not answer: %v", doing, err)
	}

	status := 0
	if answer.Response != nil {
		status = answer.Response.StatusCode
	}
	said := strings.TrimSpace(fmt.Sprintf("%d %s %s", status, answer.Message, details(answer.Errors)))
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return proto.Invalid, fmt.Sprintf("GitHub refused the token: %s: %s", doing, said)
	case status == http.StatusNotFound:
		return proto.Invalid, fmt.Sprintf("%s: GitHub has no repository %s, or the token cannot see it: %s", doing, r, said)
	case status == http.StatusTooManyRequests || status >= 500:
		return proto.Unavailable, fmt.Sprintf("%s: GitHub answered %s", doing, said)
	default:
		return proto.Invalid, fmt.Sprintf("%s: GitHub refused the request: %s", doing, said)
	}
}

// details joins the messages of the errors GitHub listed with its answer ("Hook already exists on this
// repository").
func details(errs []gh.Error) string {
	var parts []string
	for _, e := range errs {
		switch {
		case e.Message != "":
			parts = append(parts, e.Message)
		case e.Field != "":
			parts = append(parts, e.Field+" "+e.Code)
		case e.Code != "":
			parts = append(parts, e.Code)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, "; ") + ")"
}

// notFound reports whether err is GitHub answering 404.
func notFound(err error) bool {
	var answer *gh.ErrorResponse
	return errors.As(err, &answer) && answer.Response != nil && answer.Response.StatusCode == http.StatusNotFound
}
