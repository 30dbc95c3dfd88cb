package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

func TestMarkDeliveryFirstThenSeen(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name   string
		source string
		id     string
	}{
		{name: "github GUID", source: "github", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{name: "same ID from another source", source: "gitlab", id: "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		{name: "dots and wildcards", source: "github", id: "a.b.*.>"},
		{name: "slashes and spaces", source: "github", id: "72d3162e/task one"},
		{name: "not ASCII", source: "gitlab", id: "délivrance-✓"},
		{name: "long", source: "github", id: string(make([]byte, 600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			first, err := s.MarkDelivery(ctx, tt.source, tt.id)
			if err != nil || !first {
				t.Fatalf("MarkDelivery(%q, %q) = %t, %v, want true, nil", tt.source, tt.id, first, err)
			}
			first, err = s.MarkDelivery(ctx, tt.source, tt.id)
			if err != nil || first {
				t.Fatalf("MarkDelivery(%q, %q) again = %t, %v, want false, nil", tt.source, tt.id, first, err)
			}
		})
	}
}

func TestUnmarkDeliveryLetsItBeFirstAgain(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	if err := s.UnmarkDelivery(ctx, "github", "never-marked"); err != nil {
		t.Fatalf("UnmarkDelivery of an unknown delivery = %v, want nil", err)
	}
	for round := range 3 {
		first, err := s.MarkDelivery(ctx, "github", "d1")
		if err != nil || !first {
			t.Fatalf("round %d: MarkDelivery = %t, %v, want true, nil", round, first, err)
		}
		if err := s.UnmarkDelivery(ctx, "github", "d1"); err != nil {
			t.Fatalf("round %d: UnmarkDelivery: %v", round, err)
		}
	}
	// Unmarking one delivery leaves the others marked.
	if _, err := s.MarkDelivery(ctx, "github", "d2"); err != nil {
		t.Fatalf("MarkDelivery(d2): %v", err)
	}
	if err := s.UnmarkDelivery(ctx, "github", "d1"); err != nil {
		t.Fatalf("UnmarkDelivery(d1): %v", err)
	}
	if first, err := s.MarkDelivery(ctx, "github", "d2"); err != nil || first {
		t.Errorf("MarkDelivery(d2) after unmarking d1 = %t, %v, want false, nil", first, err)
	}
}

func TestMarkDeliveryConcurrent(t *testing.T) {
	srv := startServer(t, t.TempDir())
	// Two Stores on two connections stand for two processes receiving the same redelivery.
	a := openStore(t, connect(t, srv), store.Config{})
	b := openStore(t, connect(t, srv), store.Config{})

	const callers = 16
	var wg sync.WaitGroup
	firsts := make(chan bool, callers)
	for i := range callers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			first, err := s.MarkDelivery(t.Context(), "github", "same-delivery")
			if err != nil {
				t.Errorf("MarkDelivery: %v", err)
			}
			firsts <- first
		})
	}
	wg.Wait()
	close(firsts)
	n := 0
	for first := range firsts {
		if first {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of %d concurrent MarkDelivery calls were first, want 1", n, callers)
	}
}

func TestMarkDeliveryRejectsEmpty(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name, source, id string
	}{
		{name: "no source", source: "", id: "d1"},
		{name: "no ID", source: "github", id: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.MarkDelivery(t.Context(), tt.source, tt.id); proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("MarkDelivery(%q, %q) = %v, want a %s error", tt.source, tt.id, err, proto.Invalid)
			}
			if err := s.UnmarkDelivery(t.Context(), tt.source, tt.id); proto.ErrorCode(err) != proto.Invalid {
				t.Errorf("UnmarkDelivery(%q, %q) = %v, want a %s error", tt.source, tt.id, err, proto.Invalid)
			}
		})
	}
}

func TestDeliveriesExpireAfterThirtyDays(t *testing.T) {
	_, js := newStore(t)
	kv, err := js.KeyValue(t.Context(), "kiln_deliveries")
	if err != nil {
		t.Fatalf("KeyValue(kiln_deliveries): %v", err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if want := 30 * 24 * time.Hour; st.TTL() != want {
		t.Errorf("kiln_deliveries TTL = %v, want %v", st.TTL(), want)
	}
}

// TestMarkDeliveryBy: the first mark keeps what made it, a later call reads it back, and a mark removed again
// is first once more.
func TestMarkDeliveryBy(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	first, by, err := s.MarkDeliveryBy(ctx, "github", "change:abc/web", "d1")
	if err != nil || !first || by != "" {
		t.Fatalf("MarkDeliveryBy(d1) = %t, %q, %v, want true, \"\", nil", first, by, err)
	}
	first, by, err = s.MarkDeliveryBy(ctx, "github", "change:abc/web", "d2")
	if err != nil || first || by != "d1" {
		t.Fatalf("MarkDeliveryBy(d2) after d1 = %t, %q, %v, want false, \"d1\", nil", first, by, err)
	}
	if err := s.UnmarkDelivery(ctx, "github", "change:abc/web"); err != nil {
		t.Fatal(err)
	}
	first, _, err = s.MarkDeliveryBy(ctx, "github", "change:abc/web", "d3")
	if err != nil || !first {
		t.Fatalf("MarkDeliveryBy(d3) after the mark was removed = %t, %v, want true, nil", first, err)
	}
}
