package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestToken(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local", Token: "s3cret"})
	tests := []struct {
		name, method, path string
		auth               string // the Authorization header; "" sends none
		status             int
	}{
		{"no token", "GET", "/v1/runs", "", 401},
		{"wrong token", "GET", "/v1/runs", "Bearer s3cre", 401},
		{"longer token", "GET", "/v1/runs", "Bearer s3cret2", 401},
		{"not bearer", "GET", "/v1/runs", "Basic czNjcmV0", 401},
		{"no token on a run", "GET", "/v1/runs/k1", "", 401},
		{"no token on cancel", "POST", "/v1/runs/k1/cancel", "", 401},
		{"right token", "GET", "/v1/runs", "Bearer s3cret", 200},
		{"right token, scheme in lower case", "GET", "/v1/runs", "bearer s3cret", 200},
		{"healthz needs none", "GET", "/healthz", "", 200},
		{"readyz needs none", "GET", "/readyz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			if tt.auth != "" {
				header = []string{"Authorization", tt.auth}
			}
			status, body := e.request(t, tt.method, tt.path, nil, header...)
			if status != tt.status {
				t.Fatalf("%s %s with %q = %d %s, want %d", tt.method, tt.path, tt.auth, status, body, tt.status)
			}
			if status == http.StatusUnauthorized && errorOf(t, body).Code != proto.Unauthorized {
				t.Errorf("%s %s error = %s, want code unauthorized", tt.method, tt.path, body)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	notReady := errors.New("NATS is not connected")
	var ready atomic.Pointer[error] // the server reads it on its own goroutines
	e := newEnv(t, Config{Ready: func(ctx context.Context) error {
		if err := ready.Load(); err != nil {
			return *err
		}
		return nil
	}})

	tests := []struct {
		name   string
		path   string
		ready  error
		status int
		want   map[string]string
	}{
		{"healthz", "/healthz", nil, 200, map[string]string{"status": "ok"}},
		{"healthz while not ready", "/healthz", notReady, 200, map[string]string{"status": "ok"}},
		{"readyz", "/readyz", nil, 200, map[string]string{"status": "ready"}},
		{"readyz while not ready", "/readyz", notReady, 503,
			map[string]string{"status": "unavailable", "reason": "NATS is not connected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(&tt.ready)
			status, body := e.request(t, http.MethodGet, tt.path, nil)
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("GET %s: decoding %s: %v", tt.path, body, err)
			}
			if status != tt.status || len(got) != len(tt.want) || got["status"] != tt.want["status"] || got["reason"] != tt.want["reason"] {
				t.Errorf("GET %s = %d %v, want %d %v", tt.path, status, got, tt.status, tt.want)
			}
		})
	}
}

func TestNoRoute(t *testing.T) {
	e := newEnv(t, Config{})
	tests := []struct {
		name, method, path string
		status             int
		code               proto.Code
		want               string // in the message
	}{
		{"unknown path", "GET", "/v2/runs", 404, proto.NotFound, "GET /v2/runs"},
		{"wrong method", "DELETE", "/v1/runs/k1", 405, proto.Invalid, "allowed: GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.request(t, tt.method, tt.path, nil)
			if status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, status, body, tt.status)
			}
			if got := errorOf(t, body); got.Code != tt.code || !strings.Contains(got.Message, tt.want) {
				t.Errorf("%s %s error = %+v, want %s naming %s", tt.method, tt.path, got, tt.code, tt.want)
			}
		})
	}
}
