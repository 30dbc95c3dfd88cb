package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// probeScript tries each HOST:PORT argument with busybox nc, GW standing for the step's default gateway, and
// prints one line per target, "reach T (HOST): connected" or "... failed"; then it fetches /hello.txt from
// $EGRESS over HTTP and prints the answer, or "egress: failed". It never fails the step: the test reads the
// lines.
const probeScript = `gw=$(ip route | awk '/^default/ {print $3}')
echo "gateway: ${gw:-none}"
echo "links: $(ip -o link | cut -d: -f2 | tr -d ' \n')"
for t in "$@"; do
  host=${t%:*}; port=${t##*:}
  [ "$host" = GW ] && host=$gw
  if [ -z "$host" ]; then echo "reach $t (): no gateway"; continue; fi
  if nc -w 2 "$host" "$port" -e /bin/true 2>/dev/null; then echo "reach $t ($host): connected"; else echo "reach $t ($host): failed"; fi
done
printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | nc -w 5 ${EGRESS%:*} ${EGRESS##*:} || echo "egress: failed"
true
`

// probe builds a Dockerfile whose RUN step runs probeScript over targets, on network, and returns the run's
// log once it has succeeded.
func probe(t *testing.T, k *kiln, reg, network, egress string, targets []string) string {
	t.Helper()
	df := fmt.Sprintf("FROM %s/base/busybox:1\nCOPY probe.sh /probe.sh\nRUN echo %s && EGRESS=%s sh /probe.sh %s\n",
		reg, nonce(), egress, strings.Join(targets, " "))
	run := k.submitFiles(t, map[string]string{"Dockerfile": df, "probe.sh": probeScript},
		api.BuildRequest{Push: new(bool), Network: network})
	r := k.waitDone(t, run.ID)
	log := k.logOf(t, run.ID)
	if r.Status != "Succeeded" {
		t.Fatalf("probe run %s on network %q is %s (%s), want Succeeded\n%s", r.ID, network, r.Status, r.Error, log)
	}
	if r.Request.Network != network && !(network == "default" && r.Request.Network == "") {
		t.Errorf("run %s request network = %q, want %q", r.ID, r.Request.Network, network)
	}
	return log
}

// reachLines returns the "reach" lines of a probe's log, each as "T (HOST): RESULT".
func reachLines(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if _, after, ok := strings.Cut(line, " reach "); ok {
			out = append(out, after)
		}
	}
	return out
}

// witness is a TCP server on every address of this machine, standing in for any service bound to 0.0.0.0:
// it counts the connections it accepts and closes them.
type witness struct {
	port     int
	accepted atomic.Int64
}

func startWitness(t *testing.T) *witness {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatalf("listening on 0.0.0.0: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	w := &witness{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			w.accepted.Add(1)
			c.Close()
		}
	}()
	return w
}

// bridgePeer starts busybox httpd in a network namespace of its own attached to the shared buildkitd's bridge,
// at the 250th address of its subnet, as a build container running a server would be, and returns its
// IP:PORT once it answers.
func bridgePeer(t *testing.T) string {
	t.Helper()
	subnet, err := netip.ParsePrefix(buildNetwork.BridgeSubnet)
	if err != nil || buildNetwork.BridgeName == "" {
		t.Fatalf("the shared buildkitd's network = %+v, want a bridge and a subnet", buildNetwork)
	}
	a := subnet.Addr().As4()
	a[3] = 250
	n := os.Getpid() % 100000
	return netnsServer(t, fmt.Sprintf("kilnb%d", n), netip.PrefixFrom(netip.AddrFrom4(a), subnet.Bits()), t.TempDir(),
		func(veth string) [][]string {
			return [][]string{{"ip", "link", "set", veth, "master", buildNetwork.BridgeName}}
		}, "")
}

// egressServer starts busybox httpd in a network namespace of its own, joined to this machine by a veth pair
// on a /30 of 10.199.0.0/16, serving hello.txt with body; it stands for the world a build downloads from. It
// returns the server's IP:PORT.
func egressServer(t *testing.T, body string) string {
	t.Helper()
	n := os.Getpid()%250*256 + int(time.Now().UnixNano()%64)*4 // a /30 of 10.199.0.0/16, per process and call
	host := fmt.Sprintf("10.199.%d.%d", n/256, n%256+1)
	peer := netip.MustParsePrefix(fmt.Sprintf("10.199.%d.%d/30", n/256, n%256+2))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte(body+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return netnsServer(t, fmt.Sprintf("kilnt%d", n), peer, dir,
		func(veth string) [][]string { return [][]string{{"ip", "addr", "add", host + "/30", "dev", veth}} }, host)
}

// netnsServer starts busybox httpd serving dir on port 8080 of addr, in a network namespace named ns, joined
// to this machine by a veth pair whose end on this side the commands of attach set up (an address, a bridge),
// with a default route through gateway unless it is "". It returns IP:PORT once the server answers inside its
// namespace. The namespace, the pair and the server go when the test ends.
func netnsServer(t *testing.T, ns string, addr netip.Prefix, dir string, attach func(veth string) [][]string, gateway string) string {
	t.Helper()
	veth, vpeer := ns+"h", ns+"p"
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("ip", "link", "add", veth, "type", "veth", "peer", "name", vpeer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	sh("ip", "link", "set", vpeer, "netns", ns)
	for _, cmd := range attach(veth) {
		sh(cmd...)
	}
	sh("ip", "link", "set", veth, "up")
	sh("ip", "netns", "exec", ns, "ip", "addr", "add", addr.String(), "dev", vpeer)
	sh("ip", "netns", "exec", ns, "ip", "link", "set", vpeer, "up")
	sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	if gateway != "" {
		sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", gateway)
	}

	ip := addr.Addr().String()
	httpd := exec.Command("ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", ip+":8080", "-h", dir)
	if err := httpd.Start(); err != nil {
		t.Fatalf("starting busybox httpd in %s: %v", ns, err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-w", "1", ip, "8080", "-e", "/bin/true").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("busybox httpd in %s does not answer on %s:8080", ns, ip)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ip + ":8080"
}

// portOf returns the port of a host:port or URL.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host // a URL, perhaps with credentials in it: only its host:port is wanted
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("SplitHostPort(%s): %v", serve.RedactURL(addr), err)
	}
	return port
}

// TestNetworkIsolation runs RUN steps on the isolated default network and on none, on the real buildkitd
// (which TestMain's supervisor starts isolated). A default step reaches none of Kiln's services, on 127.0.0.1
// or through its gateway, nor a server bound to every address of the machine, nor a server on its bridge (as
// another build's container would be), while it does reach a server out in the world (a network namespace of
// the test's own): so nc works, and the failures are the firewall's.
// A step with no network reaches nothing. The probes wait out nc's 2s timeouts: it takes a minute or so.
func TestNetworkIsolation(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	w := startWitness(t)
	body := "egress-" + nonce()
	egress := egressServer(t, body)
	ports := map[string]string{
		"api":      portOf(t, k.APIURL()),
		"nats":     portOf(t, k.NATSURL()),
		"registry": portOf(t, reg),
		"witness":  strconv.Itoa(w.port),
	}
	var targets []string
	for _, host := range []string{"127.0.0.1", "GW"} {
		for _, name := range []string{"api", "nats", "registry", "witness"} {
			targets = append(targets, host+":"+ports[name])
		}
	}
	targets = append(targets, bridgePeer(t)) // another build's container, on the same bridge

	t.Run("default", func(t *testing.T) {
		log := probe(t, k, reg, "default", egress, targets)
		if !regexp.MustCompile(`gateway: 10\.\d+\.\d+\.1\b`).MatchString(log) {
			t.Errorf("probe log has no gateway on the build bridge (gateway: 10.x.y.1):\n%s", log)
		}
		lines := reachLines(log)
		if len(lines) != len(targets) {
			t.Fatalf("probe log has %d reach lines, want one per target (%d):\n%s", len(lines), len(targets), log)
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, ": failed") {
				t.Errorf("a default RUN step: reach %s, want failed", l)
			}
		}
		if !strings.Contains(log, body) {
			t.Errorf("probe log does not hold %q, the egress server's answer: the step could not reach the world\n%s", body, log)
		}
		if n := w.accepted.Load(); n != 0 {
			t.Errorf("the server on 0.0.0.0 accepted %d connections from a default RUN step, want 0", n)
		}
	})

	t.Run("none", func(t *testing.T) {
		log := probe(t, k, reg, "none", egress, []string{"127.0.0.1:" + ports["witness"]})
		if !strings.Contains(log, "links: lo\n") {
			t.Errorf("probe log does not say \"links: lo\", want loopback only:\n%s", log)
		}
		if !strings.Contains(log, "egress: failed") || strings.Contains(log, body) {
			t.Errorf("a RUN step with no network reached the egress server, want it not to:\n%s", log)
		}
		if n := w.accepted.Load(); n != 0 {
			t.Errorf("the server on 0.0.0.0 accepted %d connections, want 0", n)
		}
	})

	t.Run("host refused", func(t *testing.T) {
		_, err := k.submitDir(t, t.TempDir(), api.BuildRequest{Network: "host"})
		if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), "--allow-host-network") {
			t.Errorf("SubmitRun(network host) without --allow-host-network = %v, want a 400 naming the flag", err)
		}
		_, stderr, code := k.cli(t, "build", "--network", "host", "--no-wait", t.TempDir())
		if code == 0 || !strings.Contains(stderr, "--allow-host-network") {
			t.Errorf("kiln build --network host = exit %d, %q, want a failure naming --allow-host-network", code, stderr)
		}
	})
}

// TestNetworkHost: on a Kiln started with AllowHostNetwork, kiln build --network host gives a RUN step the
// machine's own network, where it reaches a server on 127.0.0.1.
func TestNetworkHost(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.AllowHostNetwork = true })
	reg := k.pushBase(t)
	body := "host-" + nonce()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, body) }))
	t.Cleanup(srv.Close)
	port := portOf(t, srv.URL)

	dir := t.TempDir()
	df := fmt.Sprintf("FROM %s/base/busybox:1\nRUN echo %s && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 %s\n", reg, nonce(), port)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := k.cli(t, "build", "--network", "host", "--no-push", "--no-wait", dir)
	id := regexp.MustCompile(`Queued a run with ID: (\S+)`).FindStringSubmatch(stdout)
	if code != 0 || id == nil {
		t.Fatalf("kiln build --network host = exit %d, %q, %q, want a queued run", code, stdout, stderr)
	}
	r := k.waitDone(t, id[1])
	log := k.logOf(t, id[1])
	if r.Status != "Succeeded" || r.Request.Network != "host" {
		t.Fatalf("run %s = %s (%s), network %q, want Succeeded on host\n%s", r.ID, r.Status, r.Error, r.Request.Network, log)
	}
	if !strings.Contains(log, body) {
		t.Errorf("a RUN step on the host's network did not reach the server on 127.0.0.1 (no %q in its log):\n%s", body, log)
	}
}
