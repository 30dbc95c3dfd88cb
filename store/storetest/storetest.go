// Package storetest starts what the store needs in a test: an in-process NATS server with JetStream on a
// temporary directory, a connection to it, and the store opened on it. The tests of every package that uses the
// store run against these real parts; this package saves each of them from starting them by hand.
package storetest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnbuild/kiln/store"
)

// Env is a running NATS server with JetStream and the store opened on it.
type Env struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Store  *store.Store
}

// New starts an Env that stops when the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("server.NewServer: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready after 10s")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect(%s): %v", ns.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	st, err := store.Open(t.Context(), js, store.Config{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	return &Env{Server: ns, Conn: nc, JS: js, Store: st}
}
