package webhook

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/kilnbuild/kiln/proto"
)

// prove returns the tasks among candidates whose webhook secret proves, by check, that the delivery comes
// from their repository's host. A task without a secret proves nothing, so no delivery counts for it. When no
// task is proven the error is proto.Unauthorized and says why without naming a task.
func prove(repo repository, candidates []*proto.Task, header, credential string, check func(secret string) bool) ([]*proto.Task, error) {
	var proven []*proto.Task
	withSecret := 0
	verdicts := make(map[string]bool) // tasks often share a secret: check each secret once
	for _, t := range candidates {
		secret := t.GetWebhookSecret()
		if secret == "" {
			continue
		}
		withSecret++
		ok, done := verdicts[secret]
		if !done {
			ok = credential != "" && check(secret)
			verdicts[secret] = ok
		}
		if ok {
			proven = append(proven, t)
		}
	}
	switch {
	case len(proven) > 0:
		return proven, nil
	case withSecret == 0:
		return nil, proto.Errorf(proto.Unauthorized,
			"no task that builds %s has a webhook secret, and Kiln starts runs only from authenticated deliveries", repo.name)
	case credential == "":
		return nil, proto.Errorf(proto.Unauthorized, "the delivery has no %s header", header)
	}
	return nil, proto.Errorf(proto.Unauthorized, "%s matches the webhook secret of no task that builds %s", header, repo.name)
}

// githubSignatureOK reports whether signature, an X-Hub-Signature-256 header, is the HMAC-SHA256 of the raw
// body under secret. go-github also accepts SHA-1 and SHA-512 signatures and, when no secret is expected, no
// signature at all: Kiln wants SHA-256 and always a secret.
func githubSignatureOK(mediaType string, body []byte, signature, secret string) bool {
	if secret == "" || !strings.HasPrefix(signature, "sha256=") {
		return false
	}
	_, err := github.ValidatePayloadFromBody(mediaType, bytes.NewReader(body), signature, []byte(secret))
	return err == nil
}

// gitlabTokenOK reports whether token, an X-Gitlab-Token header, is secret. The comparison takes the same time
// whatever the token, its length included.
func gitlabTokenOK(token, secret string) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	return secret != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
