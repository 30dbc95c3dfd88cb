package httpfront

import "net/http"

// Answered makes a request that next leaves unanswered, because its context ended, close its connection
// instead of getting the empty 200 that net/http sends for a handler that wrote nothing.
//
// net/http ends a request's context when it reads the end of the connection after the body: a client that
// closes its side once it has sent its request (a half-close, as `nc -N` does) is taken for gone, though it is still there to read the
// answer. A handler that then gives up without writing (the API's does, for a client it takes for gone)
// would otherwise answer 200 with nothing: a success, to a request that did nothing. Aborting the handler
// (http.ErrAbortHandler, which net/http does not log) closes the connection, which the client can tell from
// an answer.
func Answered(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aw := &answerWriter{ResponseWriter: w}
		next.ServeHTTP(aw, r)
		if !aw.answered && r.Context().Err() != nil {
			panic(http.ErrAbortHandler)
		}
	})
}

// answerWriter remembers whether an answer was begun. It keeps http.ResponseController working (Flush,
// deadlines) through Unwrap.
type answerWriter struct {
	http.ResponseWriter
	answered bool
}

func (w *answerWriter) WriteHeader(status int) {
	if status >= 200 {
		w.answered = true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerWriter) Write(p []byte) (int, error) {
	w.answered = true
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered to the client.
func (w *answerWriter) Flush() {
	w.answered = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
