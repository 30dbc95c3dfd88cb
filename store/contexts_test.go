package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// randomBytes returns n bytes that do not compress or repeat.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readContext returns the whole context stored under name.
func readContext(t *testing.T, s *store.Store, name string) []byte {
	t.Helper()
	rc, err := s.OpenContext(t.Context(), name)
	if err != nil {
		t.Fatalf("OpenContext(%s): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading context %s: %v", name, err)
	}
	return b
}

func TestContextRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "small", data: []byte("FROM scratch\n")},
		{name: "several object chunks", data: randomBytes(300 << 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.PutContext(t.Context(), tt.name, bytes.NewReader(tt.data))
			if err != nil {
				t.Fatalf("PutContext(%s): %v", tt.name, err)
			}
			if n != int64(len(tt.data)) {
				t.Errorf("PutContext(%s) = %d bytes, want %d", tt.name, n, len(tt.data))
			}
			if got := readContext(t, s, tt.name); !bytes.Equal(got, tt.data) {
				t.Errorf("OpenContext(%s) read %d bytes, want the %d stored", tt.name, len(got), len(tt.data))
			}

			if err := s.DeleteContext(t.Context(), tt.name); err != nil {
				t.Fatalf("DeleteContext(%s): %v", tt.name, err)
			}
			if _, err := s.OpenContext(t.Context(), tt.name); proto.ErrorCode(err) != proto.NotFound {
				t.Errorf("OpenContext(%s) after delete error = %v, want not found", tt.name, err)
			}
			if err := s.DeleteContext(t.Context(), tt.name); err != nil {
				t.Errorf("DeleteContext(%s) a second time = %v, want nil", tt.name, err)
			}
		})
	}
}

func TestContextReplaced(t *testing.T) {
	s, _ := newStore(t)
	for _, data := range []string{"first", "second"} {
		if _, err := s.PutContext(t.Context(), "c", bytes.NewReader([]byte(data))); err != nil {
			t.Fatalf("PutContext(c, %q): %v", data, err)
		}
	}
	if got := string(readContext(t, s, "c")); got != "second" {
		t.Errorf("OpenContext(c) = %q, want the latest put, %q", got, "second")
	}
}

func TestContextMissing(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.OpenContext(t.Context(), "nope"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("OpenContext(nope) error = %v, want not found", err)
	}
	if err := s.DeleteContext(t.Context(), "nope"); err != nil {
		t.Errorf("DeleteContext(nope) = %v, want nil", err)
	}
	if _, err := s.PutContext(t.Context(), "", bytes.NewReader(nil)); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("PutContext(\"\") error = %v, want invalid", err)
	}
	if _, err := s.OpenContext(t.Context(), ""); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("OpenContext(\"\") error = %v, want invalid", err)
	}
	if err := s.DeleteContext(t.Context(), ""); proto.ErrorCode(err) != proto.Invalid {
		t.Errorf("DeleteContext(\"\") error = %v, want invalid", err)
	}
}

// failingReader yields data, then fails with err.
func failingReader(data []byte, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data), errorReader{err})
}

type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

func TestPutContextReaderFails(t *testing.T) {
	s, js := newStore(t)
	tooLarge := proto.Errorf(proto.TooLarge, "context is over 1 GiB")
	// 200 KiB: some object chunks have gone out before the reader fails.
	_, err := s.PutContext(t.Context(), "broken", failingReader(randomBytes(200<<10), tooLarge))

	var perr *proto.Error
	if !errors.As(err, &perr) || perr.Code != proto.TooLarge {
		t.Errorf("PutContext(failing reader) error = %v, want one that holds the reader's *proto.Error of code %q", err, proto.TooLarge)
	}
	if !errors.Is(err, tooLarge) {
		t.Errorf("PutContext(failing reader) error = %v, want it to wrap the reader's error", err)
	}
	if _, err := s.OpenContext(t.Context(), "broken"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("OpenContext(broken) error = %v, want not found", err)
	}
	strm, err := js.Stream(t.Context(), "OBJ_kiln_contexts")
	if err != nil {
		t.Fatalf("Stream(OBJ_kiln_contexts): %v", err)
	}
	if msgs := strm.CachedInfo().State.Msgs; msgs != 0 {
		t.Errorf("the contexts bucket holds %d messages after a failed put, want 0", msgs)
	}
}

func TestPutContextReaderFailsKeepsOld(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.PutContext(t.Context(), "c", bytes.NewReader([]byte("good"))); err != nil {
		t.Fatalf("PutContext(c): %v", err)
	}
	_, err := s.PutContext(t.Context(), "c", failingReader(randomBytes(200<<10), io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("PutContext(c, failing reader) error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if got := string(readContext(t, s, "c")); got != "good" {
		t.Errorf("OpenContext(c) = %q after a failed replace, want %q", got, "good")
	}
}

// hangUpReader is a request body whose client hangs up: after its data, it cancels the request's context and
// fails, as net/http does when the connection closes mid-body.
type hangUpReader struct {
	data   io.Reader
	cancel context.CancelFunc
}

func (r *hangUpReader) Read(p []byte) (int, error) {
	n, err := r.data.Read(p)
	if err == io.EOF {
		r.cancel()
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestPutContextClientHangsUp(t *testing.T) {
	s, js := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// 2 MiB: many object chunks have gone out before the client leaves.
	_, err := s.PutContext(ctx, "aborted", &hangUpReader{data: bytes.NewReader(randomBytes(2 << 20)), cancel: cancel})
	if err == nil {
		t.Fatal("PutContext(a body whose client hung up) = nil error, want one")
	}
	if _, err := s.OpenContext(t.Context(), "aborted"); proto.ErrorCode(err) != proto.NotFound {
		t.Errorf("OpenContext(aborted) error = %v, want not found", err)
	}
	// Listing objects would not show the chunks: they are named only by the object's info, which was never
	// written. The bucket's stream counts them.
	strm, err := js.Stream(t.Context(), "OBJ_kiln_contexts")
	if err != nil {
		t.Fatalf("Stream(OBJ_kiln_contexts): %v", err)
	}
	if st := strm.CachedInfo().State; st.Msgs != 0 {
		t.Errorf("the contexts bucket holds %d messages (%d bytes) after an aborted upload, want 0", st.Msgs, st.Bytes)
	}
}
