package basepoll_test

import (
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/store"
	"github.com/kilnbuild/kiln/store/storetest"
	"github.com/kilnbuild/kiln/trigger/basepoll"
)

// t0 is when every test's clock starts.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// cycle is a clock step after which every tag polled before is due again, whatever its jitter.
const cycle = basepoll.DefaultInterval + basepoll.DefaultInterval/10 + time.Second

// clock is a time that moves only when a test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tagList is a Tags that names what a test sets.
type tagList struct {
	mu   sync.Mutex
	refs []string
}

func (l *tagList) Refs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refs...)
}

// failure is what the test registry answers instead of the real one, to the requests whose path contains
// path ("" for every request).
type failure struct {
	path       string
	status     int
	retryAfter string
}

// testRegistry is go-containerregistry's in-process registry, served twice: at URL for the pollers, counting
// their manifest HEADs and failing or hanging on demand, and at pushURL, untouched, for the test's own
// pushes. Both serve the same repositories: the registry stores them by name, whatever the host.
type testRegistry struct {
	host     string // host:port of the pollers' server
	pushHost string

	mu       sync.Mutex
	requests int            // of any kind
	heads    map[string]int // manifest HEADs by path
	fail     *failure
	hang     bool          // HEADs of manifests wait until the client gives up
	arrived  chan struct{} // a HEAD arrived, when hang
}

func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &testRegistry{heads: make(map[string]int), arrived: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		head := req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/manifests/")
		if head {
			r.heads[req.URL.Path]++
		}
		f, hang := r.fail, r.hang && head
		r.mu.Unlock()
		if hang {
			r.arrived <- struct{}{}
			<-req.Context().Done()
			return
		}
		if f != nil && strings.Contains(req.URL.Path, f.path) {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			w.WriteHeader(f.status)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	push := httptest.NewServer(reg)
	t.Cleanup(push.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	r.pushHost = strings.TrimPrefix(push.URL, "http://")
	return r
}

// ref is the reference pollers use for repo:tag.
func (r *testRegistry) ref(repo, tag string) string { return r.host + "/" + repo + ":" + tag }

// push puts a new random image at repo:tag and returns its digest.
func (r *testRegistry) push(t testing.TB, repo, tag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatalf("random.Image: %v", err)
	}
	ref, err := name.NewTag(r.pushHost + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatalf("name.NewTag: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("remote.Write(%s): %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest: %v", err)
	}
	return d.String()
}

// headsOf returns how many manifest HEADs the pollers sent for repo:tag.
func (r *testRegistry) headsOf(repo, tag string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heads["/v2/"+repo+"/manifests/"+tag]
}

// allHeads returns how many manifest HEADs the pollers sent in all.
func (r *testRegistry) allHeads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.heads {
		n += c
	}
	return n
}

// allRequests returns how many requests of any kind the pollers sent.
func (r *testRegistry) allRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *testRegistry) setFailure(f *failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

func (r *testRegistry) setHang(hang bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hang = hang
}

// tag points repo:to at the image repo:from points to.
func (r *testRegistry) tag(t testing.TB, repo, from, to string) {
	t.Helper()
	src, err := name.NewTag(r.pushHost + "/" + repo + ":" + from)
	if err != nil {
		t.Fatalf("name.NewTag: %v", err)
	}
	desc, err := remote.Get(src, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("remote.Get(%s): %v", src, err)
	}
	if err := remote.Tag(src.Context().Tag(to), desc, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("remote.Tag(%s, %s): %v", src, to, err)
	}
}

// secondProcess opens the store again on a NATS connection of its own to env's server, as another Kiln
// process would.
func secondProcess(t testing.TB, env *storetest.Env) *storetest.Env {
	t.Helper()
	nc, err := nats.Connect(env.Server.ClientURL())
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
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
	return &storetest.Env{Server: env.Server, Conn: nc, JS: js, Store: st}
}

// pollTogether runs one pass of each of pollers at the same time and returns what each did.
func pollTogether(t testing.TB, pollers ...*basepoll.Poller) []basepoll.Pass {
	t.Helper()
	passes := make([]basepoll.Pass, len(pollers))
	var wg sync.WaitGroup
	for i, p := range pollers {
		wg.Go(func() {
			var err error
			if passes[i], err = p.PollOnce(t.Context()); err != nil {
				t.Errorf("PollOnce of poller %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return passes
}

// newPoller returns a Poller on env's store and JetStream, polling tags with clk as its time (nil: the real
// one), changed by mods.
func newPoller(t testing.TB, env *storetest.Env, tags basepoll.Tags, clk *clock, mods ...func(*basepoll.Poller)) *basepoll.Poller {
	t.Helper()
	p := &basepoll.Poller{
		Store:     env.Store,
		Publisher: env.JS,
		Tags:      tags,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if clk != nil {
		p.Now = clk.Now
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

// pollOnce runs one pass and fails the test on an error.
func pollOnce(t testing.TB, p *basepoll.Poller) basepoll.Pass {
	t.Helper()
	pass, err := p.PollOnce(t.Context())
	if err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	return pass
}

// tagState reads what the store holds of ref.
func tagState(t testing.TB, env *storetest.Env, ref string) *proto.TagState {
	t.Helper()
	ts, err := env.Store.TagState(t.Context(), ref)
	if err != nil {
		t.Fatalf("TagState(%s): %v", ref, err)
	}
	return ts
}

// pushedEvents returns every ImagePushed on proto.StreamImages, oldest first.
func pushedEvents(t testing.TB, env *storetest.Env) []*proto.ImagePushed {
	t.Helper()
	s, err := env.JS.Stream(t.Context(), proto.StreamImages)
	if err != nil {
		t.Fatalf("Stream(%s): %v", proto.StreamImages, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("Info(%s): %v", proto.StreamImages, err)
	}
	var evs []*proto.ImagePushed
	for seq := info.State.FirstSeq; seq != 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		ev := new(proto.ImagePushed)
		if err := gproto.Unmarshal(m.Data, ev); err != nil {
			t.Fatalf("decoding ImagePushed %d: %v", seq, err)
		}
		evs = append(evs, ev)
	}
	return evs
}
