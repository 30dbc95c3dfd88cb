package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// Store is what the handler needs of the store. *store.Store satisfies it.
type Store interface {
	ListTasks(ctx context.Context) ([]*proto.Task, error)
	NextRunID(ctx context.Context) (string, error)
	MarkDeliveryBy(ctx context.Context, source, id, by string) (first bool, firstBy string, err error)
	UnmarkDelivery(ctx context.Context, source, id string) error
	SetLatest(ctx context.Context, task, branch, runID string) error
}

// Enqueuer records a run as Queued and publishes its RunRequested, returning once JetStream has acknowledged
// the event. *queue.Queue satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, run *proto.Run) (*proto.Run, error)
}

// Config is how a Handler behaves.
type Config struct {
	// DefaultRegistry (host[:port]) is put in front of every tag that names no registry.
	DefaultRegistry string
	// MaxBody bounds a delivery's body in bytes; 0 means 25 MB, the most GitHub sends. The Budget's size
	// bounds it too.
	MaxBody int64
	// Budget bounds the memory that deliveries' bodies take at once, across every handler given the same
	// Budget; nil means a budget of DefaultBudget of the handler's own.
	Budget *Budget
	// BodyTimeout bounds the time from a delivery's headers to the end of its body; 0 means 30 s. A body
	// that has not arrived by then is cut.
	BodyTimeout time.Duration
}

// defaultMaxBody is the body limit when Config.MaxBody is 0: GitHub caps payloads at 25 MB.
const defaultMaxBody = 25 << 20

// defaultBodyTimeout is the body timeout when Config.BodyTimeout is 0: 25 MB arrive in it at under 1 MB/s.
const defaultBodyTimeout = 30 * time.Second

// Handler serves the webhook endpoints. It holds no request state: one Handler serves any number of
// deliveries at once.
type Handler struct {
	cfg Config
	st  Store
	q   Enqueuer
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns a Handler that finds tasks in st and queues their runs with q. It logs each delivery at
// Info and failures at Error on logger, never a secret; a nil logger discards.
func NewHandler(cfg Config, st Store, q Enqueuer, logger *slog.Logger) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Budget == nil {
		cfg.Budget = NewBudget(DefaultBudget)
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = defaultBodyTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, st: st, q: q, log: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /v1/webhooks/github", h.serveGitHub)
	h.mux.HandleFunc("POST /v1/webhooks/gitlab", h.serveGitLab)
	return h
}

// ServeHTTP routes POST /v1/webhooks/github and POST /v1/webhooks/gitlab; any other path is 404 and any
// other method 405. The request's body must arrive within the body timeout: the connection's read deadline
// is set for it, and lifted once the body has been read (see readDelivery), so that the work after it is
// not cut.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A server that cannot set deadlines (none of net/http's) leaves the body to the server's own timeouts.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.cfg.BodyTimeout))
	h.mux.ServeHTTP(w, r)
}

// bodyRead lifts the body's deadline once it has been read: net/http then watches the connection for the
// sender leaving, and a deadline passing there would end the request's context.
func bodyRead(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// work returns the context a delivery's work runs in once its headers are in: the request's values without
// its end, since a sender that closes its side of the connection after the body (a half-close, which
// net/http takes for leaving) still waits for the answer, bounded by startTimeout.
func work(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), startTimeout)
}
