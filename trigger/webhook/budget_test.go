package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/webhook"
)

// TestBudgetExhausted: while the memory budget has no room for a delivery, it is answered 503 with
// Retry-After, and a redelivery once there is room is read and starts its run.
func TestBudgetExhausted(t *testing.T) {
	body := payload(t, "github/push.branch.json", atRepo)
	budget := webhook.NewBudget(int64(len(body)))
	e := newEnv(t, webhook.Config{Budget: budget}, newTask("app", withRef("master")))

	// A delivery being read holds a byte of it.
	if err := budget.Reserve(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/webhooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "d1")
	req.Header.Set("X-Hub-Signature-256", sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(raw), string(proto.Unavailable)) {
		t.Errorf("delivery with the budget full = %d (Retry-After %q) %s, want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}

	budget.Release(1)
	if status, rep := e.github(t, "push", "d1", secret, body); status != http.StatusAccepted || len(rep.Runs) != 1 {
		t.Errorf("delivery after the budget is free again = %d %+v, want 202 with one run", status, rep)
	}
	if got := len(e.requested(t)); got != 1 {
		t.Errorf("%d runs requested, want 1", got)
	}
}

// TestBodyOverBudget: a body larger than the whole budget could never be read, and is refused at once as too
// large, whether it says its length or not.
func TestBodyOverBudget(t *testing.T) {
	body := payload(t, "github/push.branch.json", atRepo)
	e := newEnv(t, webhook.Config{Budget: webhook.NewBudget(int64(len(body)) - 1)}, newTask("app", withRef("master")))
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked %t", chunked), func(t *testing.T) {
			var r io.Reader = bytes.NewReader(body)
			if chunked {
				r = io.MultiReader(r)
			}
			status, rep := e.post(t, "/v1/webhooks/github", r, "Content-Type", "application/json", "X-GitHub-Event", "push",
				"X-Hub-Signature-256", sign(secret, body))
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("body over the budget = %d %+v, want 413", status, rep)
			}
		})
	}
	e.queued(t, nil)
}

// TestHalfClosedDelivery: a sender that closes its side of the connection once its delivery is sent (net/http
// then ends the request's context) still gets the answer, and its run is started.
func TestHalfClosedDelivery(t *testing.T) {
	e := newEnv(t, webhook.Config{}, newTask("app", withRef("master")))
	body := payload(t, "github/push.branch.json", atRepo)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/webhooks/github HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: half\r\nX-Hub-Signature-256: %s\r\nContent-Length: %d\r\n\r\n%s",
		sign(secret, body), len(body), body)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	status, _, _ := strings.Cut(string(answer), "\r\n")
	if status != "HTTP/1.1 202 Accepted" || !bytes.Contains(answer, []byte(`"runs"`)) {
		t.Fatalf("half-closed delivery answered %q, want 202 with its run", answer)
	}
	if got := len(e.requested(t)); got != 1 {
		t.Errorf("%d runs requested, want 1", got)
	}
}
