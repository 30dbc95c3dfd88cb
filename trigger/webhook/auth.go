package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// The headers a delivery's signature comes in. GitHub sends X-Hub-Signature-256, "sha256=" and the hex HMAC
// of the raw body. Gitea and Forgejo send it too, beside X-Gitea-Signature, X-Gogs-Signature and (Forgejo)
// X-Forgejo-Signature, the same HMAC in bare hex; Gogs and older Gitea send only the bare ones. Gitea,
// Forgejo and Gogs sign the JSON payload, which is the raw body only when they send JSON: a form delivery
// (payload=<json>) is signed over its decoded payload field (Gitea's services/webhook/deliver.go and
// Forgejo's services/webhook/shared/payloader.go write the HMAC of PayloadContent whatever the content type).
const (
	hubSignatureHeader     = github.SHA256SignatureHeader // X-Hub-Signature-256
	giteaSignatureHeader   = "X-Gitea-Signature"
	gogsSignatureHeader    = "X-Gogs-Signature"
	forgejoSignatureHeader = "X-Forgejo-Signature"
)

// The answers to a delivery that proves nothing. They say nothing of the repository the delivery names, nor
// whether some task builds it: the body is not read before the signature is proven, and an unsigned delivery
// about a repository Kiln builds is answered as one about a repository it does not.
var (
	errUnsigned = proto.Errorf(proto.Unauthorized,
		"the delivery is not signed: Kiln takes only deliveries signed (%s, or %s) with the webhook secret of a task",
		hubSignatureHeader, giteaSignatureHeader)
	errBadSignature = proto.Errorf(proto.Unauthorized,
		"the delivery's signature is not that of the webhook secret of any task")
	errNoToken = proto.Errorf(proto.Unauthorized,
		"the delivery has no %s header: Kiln takes only deliveries that carry the webhook secret of a task", gitlabTokenHeader)
	errBadToken = proto.Errorf(proto.Unauthorized,
		"the delivery's %s is not the webhook secret of any task", gitlabTokenHeader)
)

// signatures are the HMAC-SHA256 signatures a delivery claims, decoded. A header that is not a well-formed
// HMAC-SHA256 counts as no signature: go-github also takes SHA-1 and SHA-512, Kiln wants SHA-256.
type signatures struct {
	hub  []byte   // X-Hub-Signature-256: of the raw body (GitHub) or of the payload (Gitea, Forgejo)
	bare [][]byte // X-Gitea-Signature, X-Gogs-Signature, X-Forgejo-Signature: of the payload
}

// readSignatures returns the signatures in header; errUnsigned when it has none.
func readSignatures(header http.Header) (signatures, error) {
	var s signatures
	given := false
	if v := header.Get(hubSignatureHeader); v != "" {
		given = true
		if hexSig, ok := strings.CutPrefix(v, "sha256="); ok {
			s.hub = decodeSignature(hexSig)
		}
	}
	for _, name := range []string{giteaSignatureHeader, gogsSignatureHeader, forgejoSignatureHeader} {
		if v := header.Get(name); v != "" {
			given = true
			if sig := decodeSignature(v); sig != nil {
				s.bare = append(s.bare, sig)
			}
		}
	}
	if !given {
		return signatures{}, errUnsigned
	}
	return s, nil
}

// decodeSignature returns the hex HMAC-SHA256 s decoded, or nil when it is not one.
func decodeSignature(s string) []byte {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return nil
	}
	return b
}

// verifier computes, as a body is written to it, the HMAC-SHA256 of the raw body under each secret, and of
// its decoded payload field when the body is a form.
type verifier struct {
	secrets []string
	raw     []hash.Hash
	payload []hash.Hash  // a form's payload field; nil for a JSON body, whose payload is the raw body
	form    *formPayload // decodes a form's payload field into payload
	w       io.Writer    // writes to every raw hash, and the form decoder
}

// newVerifier returns a verifier for secrets (distinct, none empty) of a body of mediaType.
func newVerifier(secrets []string, mediaType string) *verifier {
	v := &verifier{secrets: secrets}
	var ws []io.Writer
	for _, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		v.raw = append(v.raw, m)
		ws = append(ws, m)
	}
	if mediaType == mediaForm {
		var pws []io.Writer
		for _, s := range secrets {
			m := hmac.New(sha256.New, []byte(s))
			v.payload = append(v.payload, m)
			pws = append(pws, m)
		}
		v.form = newFormPayload(io.MultiWriter(pws...))
		ws = append(ws, v.form)
	}
	v.w = io.MultiWriter(ws...)
	return v
}

// Write hashes p, the next bytes of the body.
func (v *verifier) Write(p []byte) (int, error) { return v.w.Write(p) }

// proven returns the secrets among v's that signed the body whole, by sigs. X-Hub-Signature-256 may sign the
// raw body (GitHub, of a form as of JSON) or a form's payload (Gitea, Forgejo); the bare signatures sign the
// payload. Taking either for X-Hub-Signature-256 gives a forger nothing: both are HMACs under the secret,
// and the payload is what Kiln reads in both cases.
func (v *verifier) proven(sigs signatures) map[string]bool {
	proven := make(map[string]bool)
	if v.form != nil {
		_ = v.form.Close() // a form without a payload field proves nothing by it; the payload's reader says why
	}
	for i, secret := range v.secrets {
		raw := v.raw[i].Sum(nil)
		payload := raw
		if v.payload != nil {
			payload = v.payload[i].Sum(nil)
		}
		ok := sigs.hub != nil && (hmac.Equal(raw, sigs.hub) || hmac.Equal(payload, sigs.hub))
		for _, sig := range sigs.bare {
			ok = ok || hmac.Equal(payload, sig)
		}
		if ok {
			proven[secret] = true
		}
	}
	return proven
}

// secretsOf returns the distinct webhook secrets of tasks; tasks without one are no part of it: a delivery
// never counts for them, since anyone can sign with the empty key.
func secretsOf(tasks []*proto.Task) []string {
	var secrets []string
	seen := make(map[string]bool)
	for _, t := range tasks {
		if s := t.GetWebhookSecret(); s != "" && !seen[s] {
			seen[s] = true
			secrets = append(secrets, s)
		}
	}
	return secrets
}

// provenTasks returns the tasks among candidates whose webhook secret is in proven.
func provenTasks(candidates []*proto.Task, proven map[string]bool) []*proto.Task {
	var tasks []*proto.Task
	for _, t := range candidates {
		if s := t.GetWebhookSecret(); s != "" && proven[s] {
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// gitlabTokenOK reports whether token, an X-Gitlab-Token header, is secret. The comparison takes the same time
// whatever the token, its length included.
func gitlabTokenOK(token, secret string) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	return secret != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// gitlabProven returns the secrets among secrets that token is.
func gitlabProven(secrets []string, token string) map[string]bool {
	proven := make(map[string]bool)
	for _, s := range secrets {
		if gitlabTokenOK(token, s) {
			proven[s] = true
		}
	}
	return proven
}
