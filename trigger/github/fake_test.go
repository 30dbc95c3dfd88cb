package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHookID is the ID the fake gives every webhook it creates.
const fakeHookID = 4242

// rateLimited scripts the answer GitHub gives once a token's rate limit is spent: 403 with
// X-RateLimit-Remaining 0.
const rateLimited = 1403

// request is what the fake GitHub recorded of one request.
type request struct {
	Method string
	Path   string
	Auth   string         // the Authorization header
	Body   map[string]any // the JSON body, nil when empty
}

func (r request) String() string {
	b, _ := json.Marshal(r.Body)
	return fmt.Sprintf("%s %s (Authorization %q) %s", r.Method, r.Path, r.Auth, b)
}

// fakeGitHub plays GitHub's REST API for the three endpoints Kiln uses, at https://api.github.com/ and at
// any Enterprise host under /api/v3/, through the client it hands out. It records every request and answers
// as GitHub does, or with the status a test scripted for an endpoint.
type fakeGitHub struct {
	srv *httptest.Server

	mu      sync.Mutex
	got     []request
	scripts map[string][]int // "POST /repos/acme/app/hooks" → the statuses of its next answers, in turn
	hold    chan struct{}    // when set, a status request waits for it to close before answering
	arrived chan struct{}    // receives a value per request, for waits
}

// newFakeGitHub starts a fake GitHub, closed when the test ends.
func newFakeGitHub(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{scripts: make(map[string][]int), arrived: make(chan struct{}, 1000)}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns an HTTP client that reaches the fake whatever host a request names (api.github.com,
// ghe.example.com), over TLS checked against the fake's certificate.
func (f *fakeGitHub) client() *http.Client {
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	addr := f.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	tr.DialTLSContext = nil
	tr.TLSClientConfig.ServerName = "example.com" // the name the fake's certificate is for
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// script makes the next answers of the endpoint "METHOD PATH" have the given statuses, in turn, before it
// answers as GitHub does again.
func (f *fakeGitHub) script(endpoint string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[endpoint] = append(f.scripts[endpoint], statuses...)
}

// requests returns what the fake received so far.
func (f *fakeGitHub) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

// waitFor waits until the fake has received n requests in all.
func (f *fakeGitHub) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(f.requests()) < n {
		select {
		case <-f.arrived:
		case <-deadline:
			t.Fatalf("the fake GitHub received %d requests, want %d: %v", len(f.requests()), n, f.requests())
		}
	}
}

func (f *fakeGitHub) serve(w http.ResponseWriter, req *http.Request) {
	got := request{Method: req.Method, Path: req.URL.Path, Auth: req.Header.Get("Authorization")}
	data, _ := io.ReadAll(req.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &got.Body); err != nil {
			got.Body = map[string]any{"not JSON": string(data)}
		}
	}
	f.mu.Lock()
	f.got = append(f.got, got)
	endpoint := got.Method + " " + got.Path
	status := 0
	if s := f.scripts[endpoint]; len(s) > 0 {
		status, f.scripts[endpoint] = s[0], s[1:]
	}
	hold := f.hold
	f.mu.Unlock()
	f.arrived <- struct{}{}

	path := strings.TrimPrefix(got.Path, "/api/v3")
	parts := strings.Split(strings.Trim(path, "/"), "/") // repos OWNER REPO hooks [ID] | repos OWNER REPO statuses SHA
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status != 0 {
		answerError(w, status)
		return
	}
	switch {
	case len(parts) == 4 && parts[0] == "repos" && parts[3] == "hooks" && got.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		answer := map[string]any{"id": fakeHookID, "type": "Repository", "name": "web", "active": true}
		for _, k := range []string{"events", "config"} {
			answer[k] = got.Body[k]
		}
		json.NewEncoder(w).Encode(answer)
	case len(parts) == 5 && parts[0] == "repos" && parts[3] == "hooks" && got.Method == http.MethodDelete:
		if parts[4] != strconv.Itoa(fakeHookID) {
			answerError(w, http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 5 && parts[0] == "repos" && parts[3] == "statuses" && got.Method == http.MethodPost:
		if hold != nil {
			<-hold
		}
		w.WriteHeader(http.StatusCreated)
		answer := map[string]any{"id": 1, "node_id": "SC_1"}
		for k, v := range got.Body {
			answer[k] = v
		}
		json.NewEncoder(w).Encode(answer)
	default:
		answerError(w, http.StatusNotFound)
	}
}

// answerError answers with status and the body GitHub sends with it.
func answerError(w http.ResponseWriter, status int) {
	messages := map[int]string{
		http.StatusUnauthorized:        "Bad credentials",
		http.StatusForbidden:           "Resource not accessible by personal access token",
		http.StatusNotFound:            "Not Found",
		http.StatusUnprocessableEntity: "Validation Failed",
		http.StatusInternalServerError: "Server Error",
		http.StatusBadGateway:          "Bad Gateway",
		http.StatusTooManyRequests:     "Too Many Requests",
	}
	if status == rateLimited {
		status = http.StatusForbidden
		messages[status] = "API rate limit exceeded for user ID 1."
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	}
	body := map[string]any{"message": messages[status], "documentation_url": "https://docs.github.com/rest"}
	if status == http.StatusUnprocessableEntity {
		body["errors"] = []map[string]string{{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}}
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// checkRequests fails the test unless got is want, request by request.
func checkRequests(t *testing.T, got, want []request) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("GitHub received %d requests, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("request %d = %v, want %v", i, got[i], want[i])
		}
	}
}
