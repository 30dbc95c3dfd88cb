// Package httpfront holds what every HTTP listener Kiln starts shares, the API's and the embedded
// registry's: their timeouts and header limit (Server), a deadline on each request body that moves with the
// bytes that arrive (Pace), and a clean close for a request left unanswered because net/http took its
// client for gone (Answered).
//
// The limits are for senders Kiln does not know yet: headers must arrive within ReadHeaderTimeout, an idle
// connection is closed after IdleTimeout, and a body must keep up an average of MinBodyRate after a grace of
// BodyGrace. No server-wide ReadTimeout or WriteTimeout is set: a build context of a gigabyte over a slow
// link must still arrive, and a followed run log is one long answer.
//
// Like the other packages under deploy it imports outside libraries only.
package httpfront
