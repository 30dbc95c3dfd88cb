package webhook

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/kilnbuild/kiln/proto"
)

// answer is the JSON of every webhook answer. A sender shows it beside the delivery (GitHub's "Recent
// Deliveries"), so it says plainly what Kiln did: the runs it started, or why it started none.
type answer struct {
	// Runs are the IDs of the runs the delivery started.
	Runs []string `json:"runs,omitempty"`
	// Ignored says why the delivery started nothing.
	Ignored string `json:"ignored,omitempty"`
	// Skipped says, for each task the delivery proved itself to but that started no run, why not.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Message answers a ping.
	Message string `json:"message,omitempty"`
	// Error is set when the delivery failed, in the API's error shape.
	Error *errorDetail `json:"error,omitempty"`
}

// errorDetail is an error as the API writes it: {"code":"...","message":"..."}.
type errorDetail struct {
	Code    proto.Code `json:"code"`
	Message string     `json:"message"`
}

// httpStatus maps an error's kind to the HTTP status of its answer, as the API does.
var httpStatus = map[proto.Code]int{
	proto.Invalid:      http.StatusBadRequest,
	proto.NotFound:     http.StatusNotFound,
	proto.Conflict:     http.StatusConflict,
	proto.Unauthorized: http.StatusUnauthorized,
	proto.TooLarge:     http.StatusRequestEntityTooLarge,
	proto.Unavailable:  http.StatusServiceUnavailable,
	proto.Internal:     http.StatusInternalServerError,
}

// internalMessage is all a sender learns of an internal error; the cause goes to the server's log.
const internalMessage = "internal error: the Kiln server's log has the details"

// skip records that task started no run, and why.
func (a *answer) skip(task, why string) {
	if a.Skipped == nil {
		a.Skipped = make(map[string]string)
	}
	a.Skipped[task] = why
}

// fail sets the answer's error from err and returns the HTTP status it calls for. An internal error's message
// stays on the server.
func (a *answer) fail(err error) int {
	code := proto.ErrorCode(err)
	msg := err.Error()
	if code == proto.Internal {
		msg = internalMessage
	}
	a.Error = &errorDetail{Code: code, Message: msg}
	if st, ok := httpStatus[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// retryAfter is the Retry-After of a 503: how many seconds a sender should wait before it tries again.
const retryAfter = "5"

// writeError answers with err alone. A 503 says when to try again.
func writeError(w http.ResponseWriter, err error) {
	var a answer
	status := a.fail(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, a)
}

// refuse answers a delivery that proves nothing with err, a proto.Unauthorized, and logs it at Warn with
// where it came from.
func (h *Handler) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, source, event string, err error) {
	h.log.WarnContext(ctx, "a webhook delivery was refused", "source", source, "event", event,
		"delivery", deliveryID(r), "remote", r.RemoteAddr, "err", err)
	writeError(w, err)
}

// deliveryID is the sender's ID of the delivery r, for the log: GitHub's, Gitea's or GitLab's.
func deliveryID(r *http.Request) string {
	for _, name := range []string{"X-GitHub-Delivery", "X-Gitea-Delivery", gitlabDeliveryHeader} {
		if id := r.Header.Get(name); id != "" {
			return id
		}
	}
	return ""
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status is already sent: a failure here is the sender going away, and nothing is left to tell it.
	_ = json.NewEncoder(w).Encode(v)
}
