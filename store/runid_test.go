package store_test

import (
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/store"
)

func TestFormatRunID(t *testing.T) {
	tests := []struct {
		name string
		n    uint64
		want string
	}{
		{name: "first", n: 1, want: "k1"},
		{name: "last one digit", n: 35, want: "kz"},
		{name: "first two digits", n: 36, want: "k10"},
		{name: "large", n: 1<<64 - 1, want: "k3w5e11264sgsf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.FormatRunID(tt.n); got != tt.want {
				t.Errorf("FormatRunID(%d) = %q, want %q", tt.n, got, tt.want)
			}
			n, ok := store.ParseRunID(tt.want)
			if !ok || n != tt.n {
				t.Errorf("ParseRunID(%q) = %d, %t, want %d, true", tt.want, n, ok, tt.n)
			}
		})
	}
}

func TestParseRunIDRejects(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{name: "empty", id: ""},
		{name: "prefix only", id: "k"},
		{name: "zero", id: "k0"},
		{name: "leading zero", id: "k01"},
		{name: "upper case prefix", id: "K1"},
		{name: "upper case digit", id: "kA"},
		{name: "other prefix", id: "x1"},
		{name: "not base 36", id: "k1-2"},
		{name: "overflow", id: "k3w5e11264sgsg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, ok := store.ParseRunID(tt.id); ok {
				t.Errorf("ParseRunID(%q) = %d, true, want false", tt.id, n)
			}
		})
	}
}

func TestNextRunIDCounts(t *testing.T) {
	s, _ := newStore(t)
	for _, want := range []string{"k1", "k2", "k3"} {
		got, err := s.NextRunID(t.Context())
		if err != nil {
			t.Fatalf("NextRunID: %v", err)
		}
		if got != want {
			t.Errorf("NextRunID() = %q, want %q", got, want)
		}
	}
}

func TestNextRunIDConcurrent(t *testing.T) {
	srv := startServer(t, t.TempDir())
	// Two Stores on two connections stand for two processes.
	stores := []*store.Store{
		openStore(t, connect(t, srv), store.Config{}),
		openStore(t, connect(t, srv), store.Config{}),
	}

	const callers, each = 8, 50
	ids := make(chan string, callers*each)
	errs := make(chan error, callers*each)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for range each {
				id, err := stores[c%len(stores)].NextRunID(t.Context())
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}
		})
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Fatalf("NextRunID: %v", err)
	}

	seen := make(map[string]bool)
	for id := range ids {
		if seen[id] {
			t.Errorf("NextRunID returned %q twice", id)
		}
		seen[id] = true
	}
	if len(seen) != callers*each {
		t.Errorf("%d callers × %d calls gave %d distinct IDs, want %d", callers, each, len(seen), callers*each)
	}
	// No number was skipped either: the IDs are exactly k1 to k(400 in base 36).
	for n := uint64(1); n <= callers*each; n++ {
		if !seen[store.FormatRunID(n)] {
			t.Errorf("ID %s was never handed out", store.FormatRunID(n))
		}
	}
}

func TestNextRunIDSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	s := openStore(t, connect(t, srv), store.Config{})
	for range 3 {
		if _, err := s.NextRunID(t.Context()); err != nil {
			t.Fatalf("NextRunID: %v", err)
		}
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	s = openStore(t, connect(t, startServer(t, dir)), store.Config{})
	got, err := s.NextRunID(t.Context())
	if err != nil {
		t.Fatalf("NextRunID after restart: %v", err)
	}
	if want := "k4"; got != want {
		t.Errorf("NextRunID() after restart = %q, want %q", got, want)
	}
}
