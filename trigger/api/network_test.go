package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// TestSubmitNetwork: a run's network is checked at submission and kept in its spec; the host's network only on
// a server that allows it.
func TestSubmitNetwork(t *testing.T) {
	tests := []struct {
		name      string
		network   string
		allowHost bool
		want      string // the stored spec's network
		wantErr   string // in the 400's message; "" for a 202
	}{
		{name: "unset", network: "", want: ""},
		{name: "default", network: "default", want: ""},
		{name: "none", network: "none", want: "none"},
		{name: "host allowed", network: "host", allowHost: true, want: "host"},
		{name: "host refused", network: "host", wantErr: "--allow-host-network"},
		{name: "unknown", network: "bridge", allowHost: true, wantErr: `network "bridge" is not one of default, host, none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{DefaultRegistry: "registry.local", AllowHostNetwork: tt.allowHost})
			request := `{"network":"` + tt.network + `"}`
			if tt.wantErr != "" {
				status, body := e.submit(t, formPart{"request", []byte(request)}, formPart{"context", simpleContext(t)})
				if got := errorOf(t, body); status != http.StatusBadRequest || got.Code != proto.Invalid || !strings.Contains(got.Message, tt.wantErr) {
					t.Errorf("POST /v1/runs %s = %d %s, want 400 naming %s", request, status, body, tt.wantErr)
				}
				if n := e.streamMsgs(t); n != 0 {
					t.Errorf("the runs stream holds %d events after a refused network, want 0", n)
				}
				return
			}
			got := e.submitOK(t, request, simpleContext(t))
			rec, err := e.st.Run(t.Context(), got.ID)
			if err != nil {
				t.Fatalf("store.Run(%s): %v", got.ID, err)
			}
			if rec.GetSpec().GetNetwork() != tt.want || got.Request.Network != tt.want {
				t.Errorf("POST /v1/runs %s: stored network %q, answered %q, want %q", request, rec.GetSpec().GetNetwork(), got.Request.Network, tt.want)
			}
		})
	}
}

// TestTaskNetwork: a task's network is checked when it is created and when it is changed, as a run's is.
func TestTaskNetwork(t *testing.T) {
	strict := newEnv(t, Config{DefaultRegistry: "registry.local"})
	if got := strict.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git","network":"none"}`); got.Network != "none" {
		t.Errorf("POST /v1/tasks with network none answers network %q, want none", got.Network)
	}
	if stored, _ := strict.st.Task(t.Context(), "app"); stored.GetNetwork() != "none" {
		t.Errorf("stored task network = %q, want none", stored.GetNetwork())
	}
	tests := []struct {
		name, method, path, body string
		want                     string
	}{
		{"create with host", "POST", "/v1/tasks", `{"name":"host","context":"https://github.com/acme/app.git","network":"host"}`, "--allow-host-network"},
		{"create with unknown", "POST", "/v1/tasks", `{"name":"odd","context":"https://github.com/acme/app.git","network":"bridge"}`, "default, host, none"},
		{"patch to host", "PATCH", "/v1/tasks/app", `{"network":"host"}`, "--allow-host-network"},
		{"patch to unknown", "PATCH", "/v1/tasks/app", `{"network":"lan"}`, `network "lan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := strict.taskCall(t, tt.method, tt.path, tt.body, nil)
			if status != http.StatusBadRequest || !strings.Contains(errorOf(t, []byte(body)).Message, tt.want) {
				t.Errorf("%s %s %s = %d %s, want 400 naming %s", tt.method, tt.path, tt.body, status, body, tt.want)
			}
		})
	}
	if stored, _ := strict.st.Task(t.Context(), "app"); stored.GetNetwork() != "none" {
		t.Errorf("stored task network after refused changes = %q, want none", stored.GetNetwork())
	}

	lax := newEnv(t, Config{DefaultRegistry: "registry.local", AllowHostNetwork: true})
	lax.createTaskOK(t, `{"name":"app","context":"https://github.com/acme/app.git"}`)
	var got Task
	if status, body := lax.taskCall(t, "PATCH", "/v1/tasks/app", `{"network":"host"}`, &got); status != http.StatusOK || got.Network != "host" {
		t.Errorf("PATCH network host with host allowed = %d %s, want 200 and network host", status, body)
	}
	var back Task
	if status, body := lax.taskCall(t, "PATCH", "/v1/tasks/app", `{"network":"default"}`, &back); status != http.StatusOK || back.Network != "" {
		t.Errorf("PATCH network default = %d %s, want 200 and no network shown (the default)", status, body)
	}
}
