package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestSecretRoutes(t *testing.T) {
	e := newEnv(t, Config{})
	c := NewClient(e.url, "")
	ctx := t.Context()
	if err := c.SetSecret(ctx, "registry-password", []byte("hunter2")); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	list, err := c.ListSecrets(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "registry-password" || list[0].UpdatedAt.IsZero() {
		t.Fatalf("ListSecrets() = %+v, %v; want registry-password with its time", list, err)
	}
	status, body := e.request(t, http.MethodGet, "/v1/secrets", nil)
	if status != http.StatusOK || strings.Contains(string(body), "hunter2") {
		t.Errorf("GET /v1/secrets = %d %s: want 200 and no value", status, body)
	}
	if status, _ := e.request(t, http.MethodGet, "/v1/secrets/registry-password", nil); status != http.StatusMethodNotAllowed && status != http.StatusNotFound {
		t.Errorf("GET of one secret = %d: no route may answer a value", status)
	}
	for _, tc := range []struct {
		name, path, value string
		want              int
	}{
		{"bad name", "/v1/secrets/bad.name", "x", http.StatusBadRequest},
		{"empty value", "/v1/secrets/empty", "", http.StatusBadRequest},
		{"too large", "/v1/secrets/big", strings.Repeat("x", 64<<10+1), http.StatusRequestEntityTooLarge},
	} {
		if status, body := e.request(t, http.MethodPut, tc.path, strings.NewReader(tc.value)); status != tc.want {
			t.Errorf("%s: PUT %s = %d %s, want %d", tc.name, tc.path, status, body, tc.want)
		}
	}
	if err := c.DeleteSecret(ctx, "registry-password"); err != nil {
		t.Fatalf("DeleteSecret: %v", err)
	}
	if status, _ := e.request(t, http.MethodDelete, "/v1/secrets/registry-password", nil); status != http.StatusNotFound {
		t.Errorf("deleting a deleted secret = %d, want 404", status)
	}
}
