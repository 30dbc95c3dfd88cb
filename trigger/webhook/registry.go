package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
)

// The media types of distribution's notification envelopes: registry 2.x sends v1, registry 3.x v2. Both
// carry the same envelope, {"events": [...]}.
const (
	eventsMediaTypeV1 = "application/vnd.docker.distribution.events.v1+json"
	eventsMediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"
)

// defaultRegistryMaxBody is the body limit when RegistryConfig.MaxBody is 0. distribution 3 sends one event,
// well under a kilobyte, per envelope; 1 MB leaves room for registries that batch them.
const defaultRegistryMaxBody = 1 << 20

// notificationSource is the Source of the ImagePushed events the registry webhook publishes.
const notificationSource = "notification"

// TrackedRefs says which image references some task builds on; the index of tasks' base images satisfies
// it. The registry webhook publishes pushes of those references only.
type TrackedRefs interface {
	// Tracks reports whether ref, normalized by basedeps.Normalize (index.docker.io/library/alpine:3), is
	// a base image of some task.
	Tracks(ref string) bool
}

// Publisher publishes on JetStream; jetstream.JetStream is one.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// RegistryConfig is how a RegistryHandler behaves.
type RegistryConfig struct {
	// Token is the secret registries send as "Authorization: Bearer <Token>" (a header set in the
	// registry's notification endpoint), or, for senders that can set no header (Docker Hub), as the URL's
	// token query parameter. When it is empty every notification is refused.
	Token string
	// MaxBody bounds an envelope's body in bytes; 0 means 1 MB.
	MaxBody int64
	// Now returns the time an event is observed at; nil means time.Now.
	Now func() time.Time
	// Lookup finds the digest of a tag pushed when the notification gives none (Docker Hub's); nil answers
	// such a notification for a tracked tag with 503.
	Lookup TagLookup
}

// RegistryHandler serves POST /v1/webhooks/registry: the notifications of a Docker distribution registry, and
// the webhooks of ACR, Harbor and Docker Hub, which it turns into ImagePushed events for the tags that tasks
// build on. It holds no request state: one
// RegistryHandler serves any number of notifications at once.
type RegistryHandler struct {
	cfg     RegistryConfig
	tracked TrackedRefs
	pub     Publisher
	log     *slog.Logger
	mux     *http.ServeMux
}

// NewRegistryHandler returns a RegistryHandler that publishes, through pub, an ImagePushed for each tag push
// of a reference tracked tells it of. It logs each envelope at Info and refusals and failures at Warn and
// Error on logger, never the token; a nil logger discards.
func NewRegistryHandler(cfg RegistryConfig, tracked TrackedRefs, pub Publisher, logger *slog.Logger) *RegistryHandler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = defaultRegistryMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &RegistryHandler{cfg: cfg, tracked: tracked, pub: pub, log: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /v1/webhooks/registry", h.serveRegistry)
	return h
}

// ServeHTTP routes POST /v1/webhooks/registry; any other path is 404 and any other method 405.
func (h *RegistryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// registryAnswer is the JSON answer to a registry notification: what became of its events.
type registryAnswer struct {
	// Accepted is how many events are now on JetStream as ImagePushed.
	Accepted int `json:"accepted"`
	// Duplicates is how many of the accepted were there already: an envelope delivered again.
	Duplicates int `json:"duplicates,omitempty"`
	// Ignored is how many events were not tag pushes of a tracked image: pulls, deletes, blobs, pushes by
	// digest, and images no task builds on.
	Ignored int `json:"ignored"`
	// Skipped says, for each tag push that could not be read (by event ID, or events[i] when it has none), why.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Error is set when the envelope failed, in the API's error shape.
	Error *errorDetail `json:"error,omitempty"`
}

// skip records that the event key was a tag push Kiln could not read, and why.
func (a *registryAnswer) skip(key, why string) {
	if a.Skipped == nil {
		a.Skipped = make(map[string]string)
	}
	a.Skipped[key] = why
}

// serveRegistry handles POST /v1/webhooks/registry, whatever the format of the notification (see
// readNotification). distribution sends an envelope again and again until it gets a 2xx (or 3xx), holding
// back the events after it: only what is wrong with the whole envelope (its token, type, size or JSON), a
// JetStream that is down or a tag that cannot be looked up is refused, and an event that cannot be read is
// skipped and said so in a 202. The other senders send one push per body: one whose pushes all cannot be read
// is refused with 400, since it would read no better sent again.
func (h *RegistryHandler) serveRegistry(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := bearerOK(registryToken(r.Header.Get("Authorization"), r.URL.Query().Get("token")), h.cfg.Token); err != nil {
		h.log.WarnContext(ctx, "a registry notification was refused", "remote", r.RemoteAddr, "err", err)
		writeError(w, err)
		return
	}
	if err := eventsMediaType(r.Header.Get("Content-Type")); err != nil {
		// No error kind maps to 415: the kind says the sender was wrong, the status says how.
		writeJSON(w, http.StatusUnsupportedMediaType, answer{Error: &errorDetail{Code: proto.Invalid, Message: err.Error()}})
		return
	}
	registry, err := registryOverride(r.URL.Query().Get("registry"))
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := readBody(w, r, h.cfg.MaxBody)
	if err != nil {
		writeError(w, err)
		return
	}
	n, err := readNotification(r.Header.Get("Content-Type"), body, registry)
	if err != nil {
		writeError(w, err)
		return
	}

	var a registryAnswer
	var pushes []imagePush
	for _, ev := range n.events {
		switch {
		case ev.err != nil:
			a.skip(ev.key, ev.err.Error())
		case ev.ignored != "":
			a.Ignored++
			h.log.DebugContext(ctx, "a registry event was ignored", "format", n.format, "event", ev.key, "why", ev.ignored)
		case !h.tracked.Tracks(ev.push.ref):
			a.Ignored++
			h.log.DebugContext(ctx, "a registry event was ignored", "format", n.format, "event", ev.key,
				"reference", ev.push.ref, "why", "no task builds on it")
		default:
			pushes = append(pushes, ev.push)
		}
	}
	if !n.resends && len(a.Skipped) > 0 && len(pushes) == 0 && a.Ignored == 0 {
		// Sent again, the body would read no better: say so to the sender, whose delivery log shows a failure.
		status := a.fail(proto.Errorf(proto.Invalid, "the %s notification names no image Kiln can read: %s",
			n.format, skippedText(a.Skipped)))
		h.log.WarnContext(ctx, "a registry notification names no image", "format", n.format, "skipped", a.Skipped)
		writeJSON(w, status, a)
		return
	}
	for i, p := range pushes {
		if p.digest != "" {
			continue
		}
		d, err := h.lookup(ctx, p.ref)
		if err != nil {
			err = proto.Errorf(proto.Unavailable, "looking up %s, whose %s notification gives no digest: %w", p.ref, n.format, err)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
			status := a.fail(err)
			h.log.WarnContext(ctx, "a registry notification's tag could not be looked up", "format", n.format, "err", err)
			writeJSON(w, status, a)
			return
		}
		pushes[i].digest = d
	}

	now := h.cfg.Now()
	var refs []string
	for _, p := range pushes {
		dup, err := h.publish(ctx, p, now)
		if err != nil {
			status := a.fail(err)
			h.log.ErrorContext(ctx, "a registry notification failed", "accepted", refs, "err", err)
			writeJSON(w, status, a)
			return
		}
		a.Accepted++
		if dup {
			a.Duplicates++
		}
		refs = append(refs, p.ref+"@"+p.digest)
	}
	if len(a.Skipped) > 0 {
		h.log.WarnContext(ctx, "a registry notification had events that name no image", "skipped", a.Skipped)
	}
	h.log.InfoContext(ctx, "registry notification", "format", n.format, "events", len(n.events), "accepted", refs,
		"duplicates", a.Duplicates, "ignored", a.Ignored, "skipped", len(a.Skipped))
	writeJSON(w, http.StatusAccepted, a)
}

// publish puts p's ImagePushed on JetStream and reports whether JetStream already had it. The event's ID is
// the message ID, so that JetStream keeps one copy of an event delivered again within its duplicate window.
func (h *RegistryHandler) publish(ctx context.Context, p imagePush, now time.Time) (duplicate bool, err error) {
	data, err := gproto.Marshal(&proto.ImagePushed{
		Reference:  p.ref,
		Digest:     p.digest,
		Source:     notificationSource,
		ObservedAt: timestamppb.New(now),
	})
	if err != nil {
		return false, fmt.Errorf("encoding the ImagePushed of %s: %w", p.ref, err)
	}
	var opts []jetstream.PublishOpt
	if p.id != "" {
		opts = append(opts, jetstream.WithMsgID(p.id))
	}
	ack, err := h.pub.Publish(ctx, proto.SubjectImagePushed, data, opts...)
	if err != nil {
		return false, proto.Errorf(proto.Unavailable, "publishing the ImagePushed of %s@%s: %w", p.ref, p.digest, err)
	}
	return ack.Duplicate, nil
}

// fail sets the answer's error from err and returns the HTTP status it calls for, as answer.fail does.
func (a *registryAnswer) fail(err error) int {
	var e answer
	status := e.fail(err)
	a.Error = e.Error
	return status
}

// eventKey names the event at index i of an envelope in an answer: its ID, or events[i] when it has none.
func eventKey(id string, i int) string {
	if id != "" {
		return id
	}
	return fmt.Sprintf("events[%d]", i)
}

// bearerOK checks that header, an Authorization header, is "Bearer <token>", comparing the token in a time
// that does not depend on it. An empty token refuses everything. The error is proto.Unauthorized.
func bearerOK(header, token string) error {
	if token == "" {
		return proto.Errorf(proto.Unauthorized,
			"the registry webhook has no token configured, so it accepts no notification")
	}
	if header == "" {
		return proto.Errorf(proto.Unauthorized,
			"the notification has no Authorization header: set Authorization: Bearer <token> in the registry's endpoint headers, "+
				"or, for a sender that sets no header, ?token=<token> in the webhook's URL")
	}
	scheme, got, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return proto.Errorf(proto.Unauthorized, "the Authorization header is not a Bearer token")
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return proto.Errorf(proto.Unauthorized, "the Authorization header's token is not the registry webhook's")
	}
	return nil
}

// eventsMediaType checks that contentType is one a notification envelope comes as: distribution's v1 or v2
// events media type, or plain JSON.
func eventsMediaType(contentType string) error {
	if contentType == "" {
		return fmt.Errorf("the notification has no Content-Type: an envelope is %s, %s or application/json",
			eventsMediaTypeV2, eventsMediaTypeV1)
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", contentType, err)
	}
	switch mediaType {
	case eventsMediaTypeV1, eventsMediaTypeV2, "application/json":
		return nil
	}
	return fmt.Errorf("Content-Type %q: an envelope is %s, %s or application/json",
		mediaType, eventsMediaTypeV2, eventsMediaTypeV1)
}

// registryOverride reads the registry query parameter, the host[:port] images are pulled by when it is not
// the Host the registry sees (a registry behind a proxy). It returns "" when there is none.
func registryOverride(q string) (string, error) {
	if q == "" {
		return "", nil
	}
	host := strings.ToLower(q)
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return "", proto.Errorf(proto.Invalid, "the registry query parameter %q is not a registry host[:port]: %w", q, err)
	}
	return host, nil
}
