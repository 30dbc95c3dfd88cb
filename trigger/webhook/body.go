package webhook

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// readBody reads the whole body of r, refusing one longer than max bytes with a proto.TooLarge error. The
// registry webhook, whose sender proves itself by a header before its body is read, reads its body with it;
// the git hosts' deliveries are read by readDelivery.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, proto.Errorf(proto.TooLarge, "the delivery's body of %d bytes is over the limit of %d", r.ContentLength, max)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, proto.Errorf(proto.TooLarge, "the delivery's body is over the limit of %d bytes", max)
	case err != nil:
		return nil, proto.Errorf(proto.Invalid, "reading the delivery's body: %w", err)
	}
	return body, nil
}

// readChunk is how much of a body of unknown length is read at a time, and the least it reserves.
const readChunk = 64 << 10

// readDelivery reads the body of a delivery into memory reserved from the handler's budget, writing each
// byte to sink (the signature checks) as it arrives. The body is refused with proto.TooLarge when it is
// longer than the handler's limit, with proto.Unavailable when the budget has no room for it within
// budgetWait, and with proto.Invalid when it does not arrive whole within the body timeout. release gives
// the memory back to the budget; it must be called, once, when the body is no longer used, and is set
// whatever the error.
//
// A body that says its length reserves it all before a byte is read; one that does not (chunked) reserves
// as it grows, doubling, so that it holds at most twice what it sent and a body over the limit is cut
// there. The budget can never hold a body over its size: such a body is over the limit.
func (h *Handler) readDelivery(ctx context.Context, r *http.Request, sink io.Writer) (body []byte, release func(), err error) {
	limit := min(h.cfg.MaxBody, h.cfg.Budget.Size())
	reserved := int64(0)
	release = func() { h.cfg.Budget.release(reserved); reserved = 0 }
	reserve := func(n int64) error {
		if err := h.cfg.Budget.reserve(ctx, n); err != nil {
			return err
		}
		reserved += n
		return nil
	}
	if r.ContentLength > limit {
		return nil, release, proto.Errorf(proto.TooLarge, "the delivery's body of %d bytes is over the limit of %d", r.ContentLength, limit)
	}
	if r.ContentLength >= 0 { // net/http reads no more than the length said
		if err := reserve(r.ContentLength); err != nil {
			return nil, release, err
		}
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(io.TeeReader(r.Body, sink), buf); err != nil {
			return nil, release, bodyError(err, h.cfg.BodyTimeout)
		}
		return buf, release, nil
	}
	if err := reserve(min(readChunk, limit)); err != nil {
		return nil, release, err
	}
	buf := make([]byte, 0, reserved)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit { // full: only the end of the body may follow
				var probe [1]byte
				n, err := r.Body.Read(probe[:])
				switch {
				case n > 0:
					return nil, release, proto.Errorf(proto.TooLarge, "the delivery's body is over the limit of %d bytes", limit)
				case errors.Is(err, io.EOF):
					return buf, release, nil
				case err != nil:
					return nil, release, bodyError(err, h.cfg.BodyTimeout)
				}
				continue
			}
			// The old array is garbage once copied: it is given back first, so that a body may grow to the
			// whole budget.
			h.cfg.Budget.release(reserved)
			reserved = 0
			if err := reserve(min(2*int64(cap(buf)), limit)); err != nil {
				return nil, release, err
			}
			next := make([]byte, len(buf), reserved)
			copy(next, buf)
			buf = next
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			_, _ = sink.Write(buf[len(buf) : len(buf)+n]) // hashes do not fail
			buf = buf[:len(buf)+n]
		}
		switch {
		case errors.Is(err, io.EOF):
			return buf, release, nil
		case err != nil:
			return nil, release, bodyError(err, h.cfg.BodyTimeout)
		}
	}
}

// bodyError says what went wrong reading a body: a deadline passed, or the sender broke off.
func bodyError(err error, timeout time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return proto.Errorf(proto.Invalid, "the delivery's body did not arrive within %s", timeout)
	}
	return proto.Errorf(proto.Invalid, "reading the delivery's body: %w", err)
}

// Form and JSON, the two ways GitHub, Gitea and Forgejo send a payload.
const (
	mediaJSON = "application/json"
	mediaForm = "application/x-www-form-urlencoded"
)

// payloadMediaType returns the media type of a GitHub, Gitea or Forgejo delivery, which is application/json
// (the body is the payload) or application/x-www-form-urlencoded (its "payload" field is).
func payloadMediaType(contentType string) (string, error) {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", proto.Errorf(proto.Invalid, "Content-Type %q: %w", contentType, err)
	}
	if mediaType != mediaJSON && mediaType != mediaForm {
		return "", proto.Errorf(proto.Invalid,
			"Content-Type %q: a delivery is %s or %s", mediaType, mediaJSON, mediaForm)
	}
	return mediaType, nil
}

// formValue returns the "payload" field of a form body, decoded as formPayload decodes it while the body
// streams in.
func formValue(body []byte) ([]byte, error) {
	var out bytesWriter
	out.b = make([]byte, 0, len(body))
	f := newFormPayload(&out)
	_, _ = f.Write(body)
	if err := f.Close(); err != nil {
		return nil, err
	}
	return out.b, nil
}

// bytesWriter appends what is written to it to b.
type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
