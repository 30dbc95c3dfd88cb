package webhook

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/kilnbuild/kiln/proto"
)

// readBody reads the whole body of r, refusing one longer than max bytes with a proto.TooLarge error. The
// body must be read whole: the signature is over the raw bytes.
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

// githubPayload returns the JSON payload of a GitHub delivery and its media type, which the signature check
// needs: the body itself when it is application/json, the "payload" field of an
// application/x-www-form-urlencoded body (GitHub's other content type) otherwise.
func githubPayload(contentType string, body []byte) (payload []byte, mediaType string, err error) {
	mediaType, _, err = mime.ParseMediaType(contentType)
	if err != nil {
		return nil, "", proto.Errorf(proto.Invalid, "Content-Type %q: %w", contentType, err)
	}
	switch mediaType {
	case "application/json":
		return body, mediaType, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "", proto.Errorf(proto.Invalid, "decoding the form body: %w", err)
		}
		payload := form.Get("payload")
		if payload == "" {
			return nil, "", proto.Errorf(proto.Invalid, "the form body has no payload field")
		}
		return []byte(payload), mediaType, nil
	}
	return nil, "", proto.Errorf(proto.Invalid,
		"Content-Type %q: a delivery is application/json or application/x-www-form-urlencoded", mediaType)
}
