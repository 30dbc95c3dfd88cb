package api

import (
	"encoding/json"
	"net/http"

	"github.com/kilnbuild/kiln/proto"
)

// httpStatus is the one table from an error's kind to the HTTP status of its answer. The client reads it
// backwards (codeForStatus) when an answer carries no code of its own.
var httpStatus = map[proto.Code]int{
	proto.Invalid:      http.StatusBadRequest,
	proto.NotFound:     http.StatusNotFound,
	proto.Conflict:     http.StatusConflict,
	proto.Unauthorized: http.StatusUnauthorized,
	proto.TooLarge:     http.StatusRequestEntityTooLarge,
	proto.Unavailable:  http.StatusServiceUnavailable,
	proto.Internal:     http.StatusInternalServerError,
}

// internalMessage is all a client learns of an internal error; the cause goes to the server's log.
const internalMessage = "internal error: the Kiln server's log has the details"

// errorBody is the JSON of every error answer: {"error":{"code":"...","message":"..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    proto.Code `json:"code"`
	Message string     `json:"message"`
}

// statusOf returns the HTTP status for an error of kind code.
func statusOf(code proto.Code) int {
	if st, ok := httpStatus[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// codeForStatus returns the error kind an HTTP status stands for, for answers that carry no code: a status in
// the table gives its kind, any other 5xx is Unavailable (a proxy in the way) and anything else Invalid.
func codeForStatus(status int) proto.Code {
	for code, st := range httpStatus {
		if st == status {
			return code
		}
	}
	if status >= 500 {
		return proto.Unavailable
	}
	return proto.Invalid
}

// errorAnswer returns the status and body answering err. An internal error's message stays on the server.
func errorAnswer(err error) (int, errorBody) {
	code := proto.ErrorCode(err)
	msg := err.Error()
	if code == proto.Internal {
		msg = internalMessage
	}
	return statusOf(code), errorBody{Error: errorDetail{Code: code, Message: msg}}
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status is already sent: a failure here is the client going away, and nothing is left to tell it.
	_ = json.NewEncoder(w).Encode(v)
}
