package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
)

// contextsStream is the stream under the object store of uploaded build contexts (store's kiln_contexts).
const contextsStream = "OBJ_kiln_contexts"

// TestUploadLeavesNothing: a submission whose upload does not end well leaves nothing in the object store once
// the API is done with it: neither a client that hangs up half way through a 30 MB context, nor one whose
// context is refused half way (a hard link through ".."). The object store writes an upload's chunks before the
// object that names them, so listing objects would not show what is left: the bucket's stream is counted.
func TestUploadLeavesNothing(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })
	js := jetStreamAt(t, k.NATSURL())
	big := make([]byte, 30<<20)
	rand.Read(big)

	tests := []struct {
		name    string
		entries []tarFile
		hangUp  bool // close the connection half way through the body, else send it all and read the answer
	}{
		{name: "client hangs up half way", entries: []tarFile{{name: "big", data: big}}, hangUp: true},
		{name: "refused half way", entries: []tarFile{{name: "big", data: big[:15<<20]}, {name: "hl", link: "x/../big"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, contentType := submission(t, tt.entries)
			if tt.hangUp {
				hangUpHalfWay(t, js, k.APIURL(), k.Token(), body, contentType)
			} else {
				req, err := http.NewRequest(http.MethodPost, k.APIURL()+"/v1/runs", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", contentType)
				req.Header.Set("Authorization", "Bearer "+k.Token())
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("POST /v1/runs = %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("POST /v1/runs with a hard link through .. = %d, want 400", resp.StatusCode)
				}
			}
			// The handler deletes what it stored as it returns, which a client that hung up cannot see: the
			// event waited for is the chunks' disappearance.
			deadline := time.Now().Add(time.Minute)
			for {
				st := streamState(t, js)
				if st.Msgs == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s holds %d messages (%d bytes) a minute after the upload ended, want 0", contextsStream, st.Msgs, st.Bytes)
				}
				time.Sleep(50 * time.Millisecond)
			}
			obs, err := js.ObjectStore(t.Context(), "kiln_contexts")
			if err != nil {
				t.Fatalf("opening kiln_contexts: %v", err)
			}
			if objs, err := obs.List(t.Context()); !errors.Is(err, jetstream.ErrNoObjectsFound) {
				t.Errorf("kiln_contexts lists %d objects (%v), want none", len(objs), err)
			}
		})
	}
}

// tarFile is an entry of a test's context archive: a file with data, or a hard link to link.
type tarFile struct {
	name string
	data []byte
	link string
}

// submission returns a POST /v1/runs body that uploads a tar of entries, and its content type.
func submission(t *testing.T, entries []tarFile) ([]byte, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	req, err := mw.CreateFormField("request")
	if err != nil {
		t.Fatal(err)
	}
	req.Write([]byte(`{"push":false}`))
	part, err := mw.CreateFormFile("context", "context.tar")
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(part)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.link
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return body.Bytes(), mw.FormDataContentType()
}

// hangUpHalfWay sends the head of a POST /v1/runs with body to the API at apiURL, then half the body, waits
// for the upload's first chunks to reach the object store, and closes the connection.
func hangUpHalfWay(t *testing.T, js jetstream.JetStream, apiURL, token string, body []byte, contentType string) {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatalf("dialing the API: %v", err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /v1/runs HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\n"+
		"Content-Length: %d\r\n\r\n", u.Host, token, contentType, len(body))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatalf("sending the request's head: %v", err)
	}
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatalf("sending half the body: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for streamState(t, js).Msgs == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds nothing a minute after half of a 30 MB upload was sent", contextsStream)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn.Close()
}

// jetStreamAt connects to the NATS at natsURL (its credentials in the URL) for the test.
func jetStreamAt(t *testing.T, natsURL string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connecting to kiln serve's NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamState returns the state of the contexts bucket's stream now.
func streamState(t *testing.T, js jetstream.JetStream) jetstream.StreamState {
	t.Helper()
	s, err := js.Stream(t.Context(), contextsStream)
	if err != nil {
		t.Fatalf("reading %s: %v", contextsStream, err)
	}
	return s.CachedInfo().State
}
