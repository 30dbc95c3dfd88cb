package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

func TestCheckArchiveAccepts(t *testing.T) {
	tests := []struct {
		name string
		data func(t *testing.T) []byte
	}{
		{"tar", func(t *testing.T) []byte { return tarOf(t, file("Dockerfile", "FROM scratch\n")) }},
		{"tar.gz", func(t *testing.T) []byte { return gzipOf(t, tarOf(t, file("Dockerfile", "FROM scratch\n"))) }},
		{"empty tar", func(t *testing.T) []byte { return tarOf(t) }},
		{"links that stay inside", func(t *testing.T) []byte {
			return tarOf(t, dir("./a/"), file("a/x", "x"), symlink("a/up", "../b"), symlink("a/self", "."),
				symlink("a/down", "x"), hardlink("hl", "a/x"))
		}},
		{"dotted names", func(t *testing.T) []byte { return tarOf(t, file("./..data", "x"), file("a/.../b", "x")) }},
		{"trailing data after the archive", func(t *testing.T) []byte {
			return gzipOf(t, append(tarOf(t, file("Dockerfile", "x")), make([]byte, 10240)...))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkArchive(bytes.NewReader(tt.data(t)), 1<<20); err != nil {
				t.Errorf("checkArchive = %v, want nil", err)
			}
		})
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestCheckedReader(t *testing.T) {
	good := gzipOf(t, tarOf(t, file("Dockerfile", "FROM scratch\n"), file("big", string(make([]byte, 200<<10)))))
	cut := errors.New("connection reset")
	tests := []struct {
		name  string
		src   io.Reader
		code  proto.Code // "" when the context is good
		cause error      // in the error, when set
	}{
		{"good", bytes.NewReader(good), "", nil},
		{"source fails midway", &failingReader{data: good[:len(good)/2], err: cut}, proto.Invalid, cut},
		{"bad archive", bytes.NewReader([]byte("#!/bin/sh\necho hi\n")), proto.Invalid, nil},
		{"too large", bytes.NewReader(tarOf(t, file("big", string(make([]byte, 2<<20))))), proto.TooLarge, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := newCheckedReader(tt.src, 1<<20)
			n, err := io.Copy(io.Discard, cr)
			cr.Close()
			if proto.ErrorCode(err) != tt.code {
				t.Fatalf("reading the checked context = %d bytes, %v, want code %q", n, err, tt.code)
			}
			if tt.code == "" && n != int64(len(good)) {
				t.Errorf("reading the checked context = %d bytes, want %d", n, len(good))
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("reading the checked context = %v, want the source's error in it", err)
			}
		})
	}
}

func TestCheckedReaderCloseStopsTheCheck(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		cr := newCheckedReader(bytes.NewReader(tarOf(t, file("Dockerfile", "x"))), 1<<20)
		buf := make([]byte, 100)
		cr.Read(buf) // the walk now waits for more
		cr.Close()
		if _, err := cr.Read(buf); err != errUploadAborted {
			t.Errorf("Read after Close = %v, want %v", err, errUploadAborted)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s: the checking goroutine is stuck")
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{1 << 30, "1 GiB"},
		{64 << 10, "64 KiB"},
		{3 << 20, "3 MiB"},
		{1500, "1500 bytes"},
		{0, "0 bytes"},
	}
	for _, tt := range tests {
		if got := byteSize(tt.n); got != tt.want {
			t.Errorf("byteSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
