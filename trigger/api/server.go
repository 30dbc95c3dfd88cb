package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/trigger/basedeps"
	"github.com/kilnbuild/kiln/trigger/queue"
)

// Store is what the server keeps runs, build contexts, logs and tasks in. *store.Store satisfies it.
type Store interface {
	NextRunID(ctx context.Context) (string, error)
	CreateRun(ctx context.Context, r *proto.Run) error
	Run(ctx context.Context, id string) (*proto.Run, error)
	UpdateRun(ctx context.Context, id string, fn func(r *proto.Run) error) (*proto.Run, error)
	ListRuns(ctx context.Context, opt store.ListOptions) ([]*proto.Run, error)
	PutContext(ctx context.Context, name string, r io.Reader) (int64, error)
	DeleteContext(ctx context.Context, name string) error
	FinishLog(ctx context.Context, id string) error
	ReadLog(ctx context.Context, id string, follow bool, w io.Writer) error
	taskStore
	baseStateStore
	secretStore
}

// Publisher puts events on JetStream and waits for the stream's acknowledgement. jetstream.JetStream
// satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Canceler announces a cancel on core NATS, where the worker running the build listens. *nats.Conn
// satisfies it.
type Canceler interface {
	Publish(subject string, data []byte) error
}

// Config is how a Server behaves.
type Config struct {
	// DefaultRegistry (host[:port]) is put in front of every tag that names no registry.
	DefaultRegistry string
	// MaxContextSize bounds a build context in bytes, both as sent and decompressed; 0 means 1 GiB.
	MaxContextSize int64
	// Token, when set, is the bearer token every /v1 request must carry.
	Token string
	// Ready reports whether the server can do its work: nil means ready. Nil Ready means always ready.
	Ready func(ctx context.Context) error
	// Now tells the time runs are queued at; nil means time.Now.
	Now func() time.Time
	// Hooks registers the webhooks of tasks' repositories as tasks are created, and removes them; nil means
	// none is registered.
	Hooks HookRegistrar
	// ReadBases reads the base images of a task's Dockerfile at the head of its branch, and the commit it read,
	// when the task is saved; nil means basedeps.ForTask. The server bounds each call to 20 seconds (basesTimeout).
	ReadBases func(ctx context.Context, t *proto.Task) ([]*proto.BaseDependency, string, error)
	// AllowHostNetwork accepts runs and tasks that ask for the host's network; without it they are refused.
	AllowHostNetwork bool
}

// defaultMaxContextSize is the build context limit when Config.MaxContextSize is 0.
const defaultMaxContextSize = 1 << 30

// Server is Kiln's HTTP API. It holds no request state: one Server serves any number of requests at once.
type Server struct {
	cfg    Config
	st     Store
	pub    Publisher
	cancel Canceler
	queue  *queue.Queue
	log    *slog.Logger
	mux    *http.ServeMux
}

// NewServer returns a server that records runs in st, publishes their events with pub and announces cancels
// with cancel. It logs requests at Debug and failures at Error on logger; a nil logger discards.
func NewServer(cfg Config, st Store, pub Publisher, cancel Canceler, logger *slog.Logger) *Server {
	if cfg.MaxContextSize <= 0 {
		cfg.MaxContextSize = defaultMaxContextSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReadBases == nil {
		cfg.ReadBases = basedeps.ForTask
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, st: st, pub: pub, cancel: cancel, queue: queue.New(st, pub, logger), log: logger, mux: http.NewServeMux()}
	s.mux.Handle("POST /v1/runs", s.handle(s.submit))
	s.mux.Handle("GET /v1/runs", s.handle(s.listRuns))
	s.mux.Handle("GET /v1/runs/{id}", s.handle(s.getRun))
	s.mux.Handle("GET /v1/runs/{id}/log", s.handle(s.readLog))
	s.mux.Handle("POST /v1/runs/{id}/cancel", s.handle(s.cancelRun))
	s.mux.Handle("POST /v1/tasks", s.handle(s.createTask))
	s.mux.Handle("GET /v1/tasks", s.handle(s.listTasks))
	s.mux.Handle("GET /v1/tasks/{name}", s.handle(s.getTask))
	s.mux.Handle("PATCH /v1/tasks/{name}", s.handle(s.updateTask))
	s.mux.Handle("DELETE /v1/tasks/{name}", s.handle(s.deleteTask))
	s.mux.Handle("POST /v1/tasks/{name}/runs", s.handle(s.runTask))
	s.mux.Handle("GET /v1/tasks/{name}/deps", s.handle(s.taskDeps))
	s.mux.Handle("GET /v1/tasks/{name}/timers", s.handle(s.listTimers))
	s.mux.Handle("POST /v1/tasks/{name}/timers", s.handle(s.addTimer))
	s.mux.Handle("PATCH /v1/tasks/{name}/timers/{timer}", s.handle(s.updateTimer))
	s.mux.Handle("DELETE /v1/tasks/{name}/timers/{timer}", s.handle(s.removeTimer))
	s.mux.Handle("PUT /v1/secrets/{name}", s.handle(s.setSecret))
	s.mux.Handle("GET /v1/secrets", s.handle(s.listSecrets))
	s.mux.Handle("DELETE /v1/secrets/{name}", s.handle(s.deleteSecret))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// Handler returns the server's routes behind its token check and request log.
func (s *Server) Handler() http.Handler {
	return s.logRequests(s.authorize(http.HandlerFunc(s.route)))
}

// handlerFunc is a route that answers errors by returning them.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle turns h into a handler that answers h's error as JSON.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail answers err, and logs it at Error when it is the server's fault (a 5xx). A client that has left gets
// no answer, and its leaving is no error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorAnswer(err)
	gone := r.Context().Err() != nil
	switch {
	case gone && errors.Is(err, context.Canceled):
		s.log.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		s.log.ErrorContext(r.Context(), "request failed",
			"method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	sw, ok := w.(*statusWriter)
	switch {
	case ok && sw.status != 0:
		return // the answer is under way: the log above is all there is to do
	case gone:
		if ok {
			sw.status = status // not sent, but the request log tells what the answer would have been
		}
		return
	}
	writeJSON(w, status, body)
}

// route serves the request with the route it matches, or answers JSON when none does.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Let the mux decide between 404 and 405 (it sets Allow), then answer that in JSON.
	probe := &probeWriter{header: w.Header()}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: proto.Invalid,
			Message: r.Method + " is not allowed on " + r.URL.Path + " (allowed: " + w.Header().Get("Allow") + ")"}})
	case http.StatusNotFound, 0:
		s.fail(w, r, proto.Errorf(proto.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	default: // a redirect to the clean path
		s.mux.ServeHTTP(w, r)
	}
}

// probeWriter records the status a handler answers with and drops its body.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(status int)      { p.status = status }

// authorize lets a /v1 request through only with the configured bearer token.
func (s *Server) authorize(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1" && !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
			s.fail(w, r, proto.Errorf(proto.Unauthorized, "this Kiln server needs a token (Authorization: Bearer <token>)"))
			return
		}
		// Comparing digests keeps the time taken independent of the token's length as well as its bytes.
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kiln", error="invalid_token"`)
			s.fail(w, r, proto.Errorf(proto.Unauthorized, "the token is not valid for this Kiln server"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests logs every request at Debug once it is answered.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.log.DebugContext(r.Context(), "request",
			"method", r.Method, "path", r.URL.Path, "status", status, "duration", time.Since(start))
	})
}

// statusWriter remembers the status of an answer. It keeps Flush working, which log streaming needs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered to the client.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// healthz answers that the process is up. It checks nothing else: that is readyz's job.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyTimeout bounds how long a readiness check may take.
const readyTimeout = 5 * time.Second

// readyz answers whether the server can do its work now, as Config.Ready says.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.ErrorContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
