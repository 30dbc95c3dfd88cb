package ociregistry

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// realm is the realm of the registry's Basic challenge.
const realm = "kiln"

// basicAuth lets a request through to next only with the registry's user and password, given by HTTP Basic
// authentication. When anonymousReads is set, a request with no credentials at all may read (GET, HEAD): a
// registry on loopback serves pulls to this machine's clients, buildkitd among them, as before. Every other
// request, and any request with wrong credentials, is answered 401 with a Basic challenge and the registry's
// error JSON, which is what makes go-containerregistry, BuildKit and docker send their credentials.
type basicAuth struct {
	next           http.Handler
	user, password [sha256.Size]byte // hashed, so that comparing them takes as long whatever their lengths
	anonymousReads bool
}

// requireAuth returns next behind Basic authentication with user and password.
func requireAuth(next http.Handler, user, password string, anonymousReads bool) *basicAuth {
	return &basicAuth{next: next, user: sha256.Sum256([]byte(user)), password: sha256.Sum256([]byte(password)),
		anonymousReads: anonymousReads}
}

// ServeHTTP serves r if its credentials are the registry's, or if it is an anonymous read that is allowed.
func (a *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, password, given := r.BasicAuth()
	switch {
	case given && a.valid(user, password):
		a.next.ServeHTTP(w, r)
	case !given && a.anonymousReads && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		a.next.ServeHTTP(w, r)
	default:
		challenge(w)
	}
}

// valid reports, in constant time, whether user and password are the registry's.
func (a *basicAuth) valid(user, password string) bool {
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(u[:], a.user[:])&subtle.ConstantTimeCompare(p[:], a.password[:]) == 1
}

// challenge answers 401 with a Basic challenge and the registry's UNAUTHORIZED error.
func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized.WithMessage("authentication required: give the registry's user and password"))
}
