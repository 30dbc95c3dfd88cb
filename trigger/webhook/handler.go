package webhook

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/kilnbuild/kiln/proto"
)

// Store is what the handler needs of the store. *store.Store satisfies it.
type Store interface {
	ListTasks(ctx context.Context) ([]*proto.Task, error)
	NextRunID(ctx context.Context) (string, error)
	MarkDelivery(ctx context.Context, source, id string) (first bool, err error)
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
	// MaxBody bounds a delivery's body in bytes; 0 means 25 MB, the most GitHub sends.
	MaxBody int64
}

// defaultMaxBody is the body limit when Config.MaxBody is 0: GitHub caps payloads at 25 MB.
const defaultMaxBody = 25 << 20

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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, st: st, q: q, log: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /v1/webhooks/github", h.serveGitHub)
	h.mux.HandleFunc("POST /v1/webhooks/gitlab", h.serveGitLab)
	return h
}

// ServeHTTP routes POST /v1/webhooks/github and POST /v1/webhooks/gitlab; any other path is 404 and any
// other method 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}
