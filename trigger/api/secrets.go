package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kilnbuild/kiln/store"
)

// secretStore is what the secret routes need of the store. *store.Store satisfies it.
type secretStore interface {
	SetSecret(ctx context.Context, name string, value []byte) error
	DeleteSecret(ctx context.Context, name string) error
	ListSecrets(ctx context.Context) ([]store.SecretInfo, error)
}

// Secret is a secret as the API shows it: never its value.
type Secret struct {
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// secretList is the answer of GET /v1/secrets.
type secretList struct {
	Secrets []Secret `json:"secrets"`
}

// setSecret is PUT /v1/secrets/{name}: the body is the value, as it is (a trailing newline is kept: the CLI
// trims the one a terminal adds). It answers 204; the value is never sent back by any route.
func (s *Server) setSecret(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	value, err := io.ReadAll(io.LimitReader(r.Body, store.MaxSecretSize+1))
	if err != nil {
		return fmt.Errorf("reading the value of secret %s: %w", name, err)
	}
	if err := s.st.SetSecret(r.Context(), name, value); err != nil {
		return storeError(err, "setting secret %s", name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listSecrets is GET /v1/secrets: every secret's name and when it was set.
func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) error {
	infos, err := s.st.ListSecrets(r.Context())
	if err != nil {
		return fmt.Errorf("listing secrets: %w", err)
	}
	out := secretList{Secrets: make([]Secret, 0, len(infos))}
	for _, i := range infos {
		out.Secrets = append(out.Secrets, Secret{Name: i.Name, UpdatedAt: i.UpdatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteSecret is DELETE /v1/secrets/{name}.
func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.st.DeleteSecret(r.Context(), name); err != nil {
		return storeError(err, "deleting secret %s", name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
