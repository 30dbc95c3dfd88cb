package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// setStatus moves run id to status in the store, as a worker would.
func setStatus(t *testing.T, st *store.Store, id string, status proto.Status) {
	t.Helper()
	_, err := st.UpdateRun(t.Context(), id, func(r *proto.Run) error {
		r.Status = status
		if proto.Terminal(status) {
			r.FinishedAt = timestamppb.New(testNow.Add(time.Minute))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("store.UpdateRun(%s, %v): %v", id, status, err)
	}
}

func TestGetRun(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	sub := e.submitOK(t, `{"tags":["app:{{.Run.ID}}"]}`, simpleContext(t))

	status, body := e.request(t, http.MethodGet, "/v1/runs/"+sub.ID, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/runs/%s = %d %s, want 200", sub.ID, status, body)
	}
	if got := decodeRunJSON(t, body); got.ID != sub.ID || got.Status != "Queued" ||
		len(got.Request.Tags) != 1 || got.Request.Tags[0] != "registry.local/app:"+sub.ID {
		t.Errorf("GET /v1/runs/%s = %+v, want the queued run with its rendered tag", sub.ID, got)
	}

	status, body = e.request(t, http.MethodGet, "/v1/runs/k999", nil)
	if status != http.StatusNotFound || errorOf(t, body).Code != proto.NotFound {
		t.Errorf("GET /v1/runs/k999 = %d %s, want 404 not_found", status, body)
	}
}

func TestListRuns(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	var ids []string
	for range 3 {
		ids = append(ids, e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID)
	}
	setStatus(t, e.st, ids[1], proto.Status_SUCCEEDED)

	tests := []struct {
		name, query string
		want        []string
	}{
		{"all, newest first", "", []string{ids[2], ids[1], ids[0]}},
		{"one status", "?status=succeeded", []string{ids[1]}},
		{"status in capitals", "?status=QUEUED", []string{ids[2], ids[0]}},
		{"limit", "?status=Queued&limit=1", []string{ids[2]}},
		{"none", "?status=failed", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.request(t, http.MethodGet, "/v1/runs"+tt.query, nil)
			if status != http.StatusOK {
				t.Fatalf("GET /v1/runs%s = %d %s, want 200", tt.query, status, body)
			}
			var list runList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			got := []string{}
			for _, r := range list.Runs {
				got = append(got, r.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("GET /v1/runs%s = %v, want %v", tt.query, got, tt.want)
			}
		})
	}

	bad := []struct {
		name, query string
		want        string // in the error message
	}{
		{"unknown status", "?status=bogus", `"bogus"`},
		{"limit 0", "?limit=0", `limit "0"`},
		{"limit too high", "?limit=1001", `limit "1001"`},
		{"limit not a number", "?limit=ten", `limit "ten"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.request(t, http.MethodGet, "/v1/runs"+tt.query, nil)
			if status != http.StatusBadRequest {
				t.Fatalf("GET /v1/runs%s = %d %s, want 400", tt.query, status, body)
			}
			if got := errorOf(t, body); got.Code != proto.Invalid || !strings.Contains(got.Message, tt.want) {
				t.Errorf("GET /v1/runs%s error = %+v, want invalid naming %s", tt.query, got, tt.want)
			}
		})
	}
}

func TestReadLog(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	id := e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID
	lw := e.st.LogWriter(id)
	io.WriteString(lw, "#1 FROM scratch\n#2 DONE\n")
	if err := lw.Close(t.Context()); err != nil {
		t.Fatalf("LogWriter.Close: %v", err)
	}
	setStatus(t, e.st, id, proto.Status_SUCCEEDED)
	if err := e.st.FinishLog(t.Context(), id); err != nil {
		t.Fatalf("store.FinishLog(%s): %v", id, err)
	}

	tests := []struct {
		name, path string
		status     int
		body       string // the whole log, or a part of the error message
	}{
		{"log", "/v1/runs/" + id + "/log", 200, "#1 FROM scratch\n#2 DONE\n"},
		{"follow", "/v1/runs/" + id + "/log?follow=true", 200, "#1 FROM scratch\n#2 DONE\n"},
		{"unknown run", "/v1/runs/k999/log", 404, "k999"},
		{"bad follow", "/v1/runs/" + id + "/log?follow=maybe", 400, `follow "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.request(t, http.MethodGet, tt.path, nil)
			if status != tt.status {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, status, body, tt.status)
			}
			if status == http.StatusOK {
				if string(body) != tt.body {
					t.Errorf("GET %s = %q, want %q", tt.path, body, tt.body)
				}
				return
			}
			if got := errorOf(t, body); !strings.Contains(got.Message, tt.body) {
				t.Errorf("GET %s error = %+v, want one naming %s", tt.path, got, tt.body)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	ctx := t.Context()

	t.Run("queued", func(t *testing.T) {
		id := e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID
		status, body := e.request(t, http.MethodPost, "/v1/runs/"+id+"/cancel", nil)
		if status != http.StatusAccepted {
			t.Fatalf("POST /v1/runs/%s/cancel = %d %s, want 202", id, status, body)
		}
		if got := decodeRunJSON(t, body); got.Status != "Canceled" || got.FinishedAt == nil || got.Error != "canceled by request" {
			t.Errorf("POST /v1/runs/%s/cancel = %+v, want Canceled, finished, \"canceled by request\"", id, got)
		}
		rec, err := e.st.Run(ctx, id)
		if err != nil || rec.GetStatus() != proto.Status_CANCELED {
			t.Errorf("store.Run(%s) = %v, %v, want Canceled", id, rec, err)
		}
		logFinished(t, e.st, id)
	})

	t.Run("running", func(t *testing.T) {
		id := e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID
		setStatus(t, e.st, id, proto.Status_RUNNING)
		sub, err := e.nc.SubscribeSync(proto.CancelSubject(id))
		if err != nil {
			t.Fatalf("SubscribeSync: %v", err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
		if err := e.nc.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}

		status, body := e.request(t, http.MethodPost, "/v1/runs/"+id+"/cancel", nil)
		if status != http.StatusAccepted {
			t.Fatalf("POST /v1/runs/%s/cancel = %d %s, want 202", id, status, body)
		}
		if got := decodeRunJSON(t, body); got.Status != "Running" || !got.CancelRequested {
			t.Errorf("POST /v1/runs/%s/cancel = %+v, want Running with cancelRequested", id, got)
		}
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Errorf("no cancel announced on %s: %v", proto.CancelSubject(id), err)
		}
		rec, err := e.st.Run(ctx, id)
		if err != nil || !rec.GetCancelRequested() {
			t.Errorf("store.Run(%s) = %v, %v, want cancel_requested", id, rec, err)
		}
	})

	t.Run("ended", func(t *testing.T) {
		id := e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID
		setStatus(t, e.st, id, proto.Status_SUCCEEDED)
		status, body := e.request(t, http.MethodPost, "/v1/runs/"+id+"/cancel", nil)
		if status != http.StatusConflict {
			t.Fatalf("POST /v1/runs/%s/cancel = %d %s, want 409", id, status, body)
		}
		want := "run " + id + " already ended: Succeeded"
		if got := errorOf(t, body); got.Code != proto.Conflict || got.Message != want {
			t.Errorf("POST /v1/runs/%s/cancel error = %+v, want conflict %q", id, got, want)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		status, body := e.request(t, http.MethodPost, "/v1/runs/k999/cancel", nil)
		if status != http.StatusNotFound {
			t.Errorf("POST /v1/runs/k999/cancel = %d %s, want 404", status, body)
		}
	})
}

func TestFollowLog(t *testing.T) {
	e := newEnv(t, Config{DefaultRegistry: "registry.local"})
	ctx := t.Context()
	id := e.submitOK(t, `{"tags":["app:1"]}`, simpleContext(t)).ID
	setStatus(t, e.st, id, proto.Status_RUNNING)
	lw := e.st.LogWriter(id)
	lw.FlushInterval = 10 * time.Millisecond
	io.WriteString(lw, "step 1\n")

	pr, pw := io.Pipe()
	logErr := make(chan error, 1)
	go func() {
		err := NewClient(e.url, "").Log(ctx, id, true, pw)
		pw.Close()
		logErr <- err
	}()
	got := make(chan string, 2)
	go func() {
		first := make([]byte, len("step 1\n"))
		if _, err := io.ReadFull(pr, first); err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(first)
		rest, _ := io.ReadAll(pr)
		got <- string(rest)
	}()
	next := func(want string) {
		t.Helper()
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("following the log of %s gave %q, want %q", id, s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("following the log of %s: %q did not come within 10s", id, want)
		}
	}

	next("step 1\n") // streamed while the run is still going
	io.WriteString(lw, "step 2\n")
	if err := lw.Close(ctx); err != nil {
		t.Fatalf("LogWriter.Close: %v", err)
	}
	setStatus(t, e.st, id, proto.Status_SUCCEEDED)
	if err := e.st.FinishLog(ctx, id); err != nil {
		t.Fatalf("store.FinishLog(%s): %v", id, err)
	}
	next("step 2\n")
	if err := <-logErr; err != nil {
		t.Errorf("Log(%s, follow) = %v, want nil once the log is finished", id, err)
	}
}
