package natsd

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The user and password the tests' servers let in.
const (
	testUser     = "kiln"
	testPassword = "pass-word"
)

// start runs a server on cfg, with the test user unless cfg names one, and shuts it down when the test ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg = withUser(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start(%+v) error: %v", cfg, err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// jetStream connects to s and returns a JetStream handle; the connection closes when the test ends.
func jetStream(t *testing.T, s *Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0), nats.UserInfo(testUser, testPassword))
	if err != nil {
		t.Fatalf("nats.Connect(%s) error: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New error: %v", err)
	}
	return js
}

func TestStartServesJetStream(t *testing.T) {
	s := start(t, Config{Dir: t.TempDir()})

	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatalf("url.Parse(ClientURL() = %q) error: %v", s.ClientURL(), err)
	}
	if u.Scheme != "nats" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Port() == "4222" {
		t.Errorf("ClientURL() = %q, want nats://127.0.0.1:<a free port>", s.ClientURL())
	}

	ctx := t.Context()
	js := jetStream(t, s)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "EVENTS",
		Subjects: []string{"events.>"},
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		t.Fatalf("CreateStream error: %v", err)
	}
	ack, err := js.Publish(ctx, "events.push", []byte("hello"))
	if err != nil {
		t.Fatalf("Publish error: %v", err)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("GetMsg(%d) error: %v", ack.Sequence, err)
	}
	if got, want := string(msg.Data), "hello"; got != want {
		t.Errorf("GetMsg(%d).Data = %q, want %q", ack.Sequence, got, want)
	}
}

func TestTwoServersGetDifferentPorts(t *testing.T) {
	a := start(t, Config{Dir: t.TempDir()})
	b := start(t, Config{Dir: t.TempDir()})
	if a.ClientURL() == b.ClientURL() {
		t.Errorf("ClientURL() = %q for both servers, want two different ports", a.ClientURL())
	}
}

func TestRestartKeepsStreams(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()

	first, err := Start(ctx, withUser(Config{Dir: dir}))
	if err != nil {
		t.Fatalf("Start error: %v", err)
	}
	js := jetStream(t, first)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RUNS", Subjects: []string{"runs.>"}}); err != nil {
		first.Shutdown()
		t.Fatalf("CreateStream error: %v", err)
	}
	if _, err := js.Publish(ctx, "runs.r1", []byte("queued")); err != nil {
		first.Shutdown()
		t.Fatalf("Publish error: %v", err)
	}
	first.Shutdown()

	if _, err := nats.Connect(first.ClientURL(), nats.MaxReconnects(0), nats.UserInfo(testUser, testPassword)); err == nil {
		t.Errorf("nats.Connect(%s) after Shutdown succeeded, want an error", first.ClientURL())
	}

	second := start(t, Config{Dir: dir})
	stream, err := jetStream(t, second).Stream(ctx, "RUNS")
	if err != nil {
		t.Fatalf("Stream(RUNS) after restart error: %v", err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "runs.r1")
	if err != nil {
		t.Fatalf("GetLastMsgForSubject(runs.r1) after restart error: %v", err)
	}
	if got, want := string(msg.Data), "queued"; got != want {
		t.Errorf("GetLastMsgForSubject(runs.r1).Data = %q, want %q", got, want)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen error: %v", err)
	}
	t.Cleanup(func() { busy.Close() })

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		cfg  Config
	}{
		{name: "no dir", ctx: t.Context(), cfg: withUser(Config{})},
		{name: "no user", ctx: t.Context(), cfg: Config{Dir: t.TempDir(), Password: testPassword}},
		{name: "no password", ctx: t.Context(), cfg: Config{Dir: t.TempDir(), User: testUser}},
		{name: "port in use", ctx: t.Context(), cfg: withUser(Config{Dir: t.TempDir(), Port: busy.Addr().(*net.TCPAddr).Port})},
		{name: "dir is a file", ctx: t.Context(), cfg: withUser(Config{Dir: file})},
		{name: "ctx done", ctx: canceled, cfg: withUser(Config{Dir: t.TempDir()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			s, err := Start(tt.ctx, tt.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatalf("Start(%+v) = a server, want an error", tt.cfg)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("Start(%+v) took %s to fail, want it to fail at once", tt.cfg, d)
			}
			t.Logf("Start(%+v) error: %v", tt.cfg, err)
		})
	}
}

func TestClientsMustAuthenticate(t *testing.T) {
	s := start(t, Config{Dir: t.TempDir()})
	tests := []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{name: "no credentials"},
		{name: "wrong password", opts: []nats.Option{nats.UserInfo(testUser, "guess")}},
		{name: "wrong user", opts: []nats.Option{nats.UserInfo("admin", testPassword)}},
		{name: "user and password", opts: []nats.Option{nats.UserInfo(testUser, testPassword)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.ClientURL(), append(tt.opts, nats.MaxReconnects(0))...)
			if err == nil {
				defer nc.Close()
			}
			if got := err == nil; got != tt.ok {
				t.Errorf("nats.Connect(%s) error = %v, want success %v", s.ClientURL(), err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("nats.Connect(%s) error = %v, want %v", s.ClientURL(), err, nats.ErrAuthorization)
			}
		})
	}
	if u, err := url.Parse(s.ClientURL()); err != nil || u.User != nil {
		t.Errorf("ClientURL() = %q, want a URL without credentials", s.ClientURL())
	}
}

// withUser returns cfg with the test user and password, unless it names a user already.
func withUser(cfg Config) Config {
	if cfg.User == "" && cfg.Password == "" {
		cfg.User, cfg.Password = testUser, testPassword
	}
	return cfg
}

func TestSyncBeforeAck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noSync bool
		want   bool
	}{
		{name: "default syncs every write", want: true},
		{name: "NoSync batches", noSync: true, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Config{Dir: t.TempDir(), NoSync: tc.noSync})
			if got := s.ns.JetStreamConfig().SyncAlways; got != tc.want {
				t.Errorf("Start(NoSync: %t): JetStream SyncAlways = %t, want %t", tc.noSync, got, tc.want)
			}
		})
	}
}
