package httpfront_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/deploy/httpfront"
)

// TestAnsweredHalfClose: a client that half-closes after its request makes net/http end the request's
// context; a handler that then gives up without writing leaves the client a closed connection, not an empty
// 200, and a handler that answers still answers.
func TestAnsweredHalfClose(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // the answer's status line; "" for a connection closed without one
	}{
		{
			name: "gives up without a word",
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // as the API does for a client it takes for gone
			},
			want: "",
		},
		{
			name: "answers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
				w.WriteHeader(http.StatusAccepted)
			},
			want: "HTTP/1.1 202 Accepted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(httpfront.Answered(tt.handler))
			t.Cleanup(srv.Close)
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: kiln\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(conn) // a reset after an abort is a closed connection too
			status, _, _ := strings.Cut(string(answer), "\r\n")
			if status != tt.want {
				t.Errorf("answer to a half-closed request = %q, want %q", answer, tt.want)
			}
		})
	}
}
