package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
)

// startServer starts an in-process NATS server with JetStream keeping its data in dir, and shuts it down
// when the test ends.
func startServer(t *testing.T, dir string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("server.NewServer: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("NATS server not ready after 10s")
	}
	return srv
}

// connect returns a JetStream client of srv, closed when the test ends.
func connect(t *testing.T, srv *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect(%s): %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

// openStore opens a Store on js with cfg.
func openStore(t *testing.T, js jetstream.JetStream, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStore starts a fresh server and returns a Store on it and the JetStream it uses.
func newStore(t *testing.T) (*store.Store, jetstream.JetStream) {
	t.Helper()
	js := connect(t, startServer(t, t.TempDir()))
	return openStore(t, js, store.Config{}), js
}

func TestOpenCreatesStreamsAndBuckets(t *testing.T) {
	js := connect(t, startServer(t, t.TempDir()))
	ctx := t.Context()

	// Several processes start at once.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := store.Open(ctx, js, store.Config{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}

	tests := []struct {
		name       string
		stream     string
		subjects   []string
		retention  jetstream.RetentionPolicy
		maxAge     time.Duration
		duplicates time.Duration
		maxPerSubj int64
	}{
		{name: "run events", stream: proto.StreamRuns, subjects: []string{proto.SubjectRunRequested},
			retention: jetstream.WorkQueuePolicy, duplicates: 2 * time.Minute, maxPerSubj: -1},
		{name: "log chunks", stream: proto.StreamLogs, subjects: []string{"kiln.logs.>"},
			retention: jetstream.LimitsPolicy, maxAge: 48 * time.Hour, duplicates: 2 * time.Minute, maxPerSubj: -1},
		{name: "runs bucket", stream: "KV_kiln_runs", subjects: []string{"$KV.kiln_runs.>"},
			retention: jetstream.LimitsPolicy, duplicates: 2 * time.Minute, maxPerSubj: 1},
		{name: "meta bucket", stream: "KV_kiln_meta", subjects: []string{"$KV.kiln_meta.>"},
			retention: jetstream.LimitsPolicy, duplicates: 2 * time.Minute, maxPerSubj: 1},
		{name: "contexts", stream: "OBJ_kiln_contexts",
			subjects:  []string{"$O.kiln_contexts.C.>", "$O.kiln_contexts.M.>"},
			retention: jetstream.LimitsPolicy, maxAge: 7 * 24 * time.Hour, duplicates: 2 * time.Minute, maxPerSubj: -1},
		{name: "final logs", stream: "OBJ_kiln_logs", subjects: []string{"$O.kiln_logs.C.>", "$O.kiln_logs.M.>"},
			retention: jetstream.LimitsPolicy, duplicates: 2 * time.Minute, maxPerSubj: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strm, err := js.Stream(ctx, tt.stream)
			if err != nil {
				t.Fatalf("Stream(%s): %v", tt.stream, err)
			}
			cfg := strm.CachedInfo().Config
			if got, want := cfg.Subjects, tt.subjects; !slices.Equal(got, want) {
				t.Errorf("%s subjects = %q, want %q", tt.stream, got, want)
			}
			if cfg.Retention != tt.retention {
				t.Errorf("%s retention = %v, want %v", tt.stream, cfg.Retention, tt.retention)
			}
			if cfg.Storage != jetstream.FileStorage {
				t.Errorf("%s storage = %v, want file", tt.stream, cfg.Storage)
			}
			if cfg.MaxAge != tt.maxAge {
				t.Errorf("%s max age = %v, want %v", tt.stream, cfg.MaxAge, tt.maxAge)
			}
			if cfg.Duplicates != tt.duplicates {
				t.Errorf("%s duplicates window = %v, want %v", tt.stream, cfg.Duplicates, tt.duplicates)
			}
			if cfg.MaxMsgsPerSubject != tt.maxPerSubj {
				t.Errorf("%s max messages per subject = %d, want %d", tt.stream, cfg.MaxMsgsPerSubject, tt.maxPerSubj)
			}
			if cfg.Replicas != 1 {
				t.Errorf("%s replicas = %d, want 1", tt.stream, cfg.Replicas)
			}
		})
	}

	// A later start with another configuration updates what exists.
	openStore(t, js, store.Config{LogMaxAge: time.Hour, ContextMaxAge: 2 * time.Hour})
	for stream, want := range map[string]time.Duration{proto.StreamLogs: time.Hour, "OBJ_kiln_contexts": 2 * time.Hour} {
		strm, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("Stream(%s): %v", stream, err)
		}
		if got := strm.CachedInfo().Config.MaxAge; got != want {
			t.Errorf("after reopening, %s max age = %v, want %v", stream, got, want)
		}
	}
}

func TestOpenRejectsNegativeConfig(t *testing.T) {
	js := connect(t, startServer(t, t.TempDir()))
	_, err := store.Open(t.Context(), js, store.Config{LogMaxAge: -time.Second})
	if got := proto.ErrorCode(err); got != proto.Invalid {
		t.Errorf("Open(LogMaxAge -1s) error code = %q (%v), want %q", got, err, proto.Invalid)
	}
}

// withTimeout returns the test's context, ended after d.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestLogsStreamPersistMode: a new KILN_LOGS is acknowledged before it is synced, and a store opens over one
// that an earlier Kiln made syncing, which keeps its mode (nats-server refuses to change it).
func TestLogsStreamPersistMode(t *testing.T) {
	ctx := t.Context()
	t.Run("new", func(t *testing.T) {
		_, js := newStore(t)
		info, err := js.Stream(ctx, proto.StreamLogs)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().Config.PersistMode; got != jetstream.AsyncPersistMode {
			t.Errorf("KILN_LOGS persist mode = %v, want async", got)
		}
	})
	t.Run("made before", func(t *testing.T) {
		js := connect(t, startServer(t, t.TempDir()))
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: proto.StreamLogs,
			Subjects: []string{proto.LogSubject(">")}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		openStore(t, js, store.Config{})
		info, err := js.Stream(ctx, proto.StreamLogs)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().Config.PersistMode; got != jetstream.DefaultPersistMode {
			t.Errorf("KILN_LOGS made before persist mode = %v, want default (kept)", got)
		}
	})
}
