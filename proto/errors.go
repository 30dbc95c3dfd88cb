package proto

import (
	"errors"
	"fmt"
)

// Code is the kind of a failure. It alone decides the HTTP status an API answer gets and whether a worker
// retries a message (Nak) or drops it for good (Term); the tables live where those decisions are made.
type Code string

// The error kinds. Keep this list short: a new kind needs a row in every table that maps them.
const (
	Invalid      Code = "invalid"      // the caller sent something wrong; retrying the same thing fails again
	NotFound     Code = "not_found"    // what was asked for does not exist
	Conflict     Code = "conflict"     // the request clashes with the current state
	Unauthorized Code = "unauthorized" // missing or wrong credentials
	TooLarge     Code = "too_large"    // a size limit was passed
	Unavailable  Code = "unavailable"  // something Kiln needs is down for now; retrying later may work
	Internal     Code = "internal"     // a bug or an unexpected failure
)

// Error is a failure with a kind. Message is meant for people and says what was wrong, cause included; Err, when
// set, is the cause underneath, kept for errors.Is and errors.As.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Message == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message. A %w verb in format keeps its operand
// as the cause.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// ErrorCode returns the kind of err: the Code of the first *Error in its chain, Internal when there is none,
// and "" for a nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
