package httpfront

import (
	"net/http"
	"time"
)

// The limits of every HTTP listener Kiln starts.
const (
	// ReadHeaderTimeout bounds the time a request's headers take to arrive.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout is how long a kept-alive connection may wait for its next request.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's headers (net/http's default is 1 MB); a bearer token, a registry
	// token or a webhook's signatures take a few kilobytes at most.
	MaxHeaderBytes = 64 << 10
)

// Server returns a server of h with Kiln's timeouts and header limit. It sets no ReadTimeout or WriteTimeout:
// a body's time is bounded by Pace, or by the handler, according to who may send it.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
