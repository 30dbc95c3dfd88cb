package buildkitd

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/cmd/buildkitd/config"
)

func TestBridgeName(t *testing.T) {
	a, b := bridgeName("/var/lib/kiln/buildkit"), bridgeName("/tmp/kiln-e2e-1/buildkit")
	for _, name := range []string{a, b} {
		if len(name) > maxBridgeName || !strings.HasPrefix(name, "kiln") || !bridgeNameRE.MatchString(name) {
			t.Errorf("bridgeName() = %q, want \"kiln\" and hex digits, at most %d bytes", name, maxBridgeName)
		}
	}
	if a == b {
		t.Errorf("bridgeName() = %q for two roots, want a bridge each", a)
	}
	if got := bridgeName("/var/lib/kiln/buildkit/"); got != a {
		t.Errorf("bridgeName(root/) = %q, want %q, as for root", got, a)
	}
}

func TestBridgeSubnet(t *testing.T) {
	const root = "/var/lib/kiln/buildkit"
	first, err := bridgeSubnet(root, nil)
	if err != nil {
		t.Fatalf("bridgeSubnet(%s, nil) = %v", root, err)
	}
	lo, hi := netip.MustParsePrefix("10.200.0.0/24"), netip.MustParsePrefix("10.250.255.0/24")
	if first.Bits() != 24 || first.Addr().Less(lo.Addr()) || hi.Addr().Less(first.Addr()) {
		t.Fatalf("bridgeSubnet(%s, nil) = %s, want a /24 from %s to %s", root, first, lo, hi)
	}
	if other, _ := bridgeSubnet("/srv/kiln/buildkit", nil); other == first {
		t.Errorf("bridgeSubnet() = %s for two roots, want different subnets (their hashes differ)", first)
	}

	tests := []struct {
		name  string
		taken []netip.Prefix
		want  func(p netip.Prefix) bool
		what  string
	}{
		{name: "machine's addresses elsewhere", taken: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.0/8")},
			want: func(p netip.Prefix) bool { return p == first }, what: "the hash's subnet"},
		{name: "hash's subnet taken", taken: []netip.Prefix{first},
			want: func(p netip.Prefix) bool { return p == nthSubnet((index(first)+1)%subnetCount) }, what: "the next /24"},
		{name: "a wider network holds it", taken: []netip.Prefix{netip.PrefixFrom(first.Addr(), 16).Masked()},
			want: func(p netip.Prefix) bool { return !p.Overlaps(netip.PrefixFrom(first.Addr(), 16).Masked()) }, what: "a /24 outside the /16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bridgeSubnet(root, tt.taken)
			if err != nil || !tt.want(got) {
				t.Errorf("bridgeSubnet(%s, %v) = %s, %v, want %s", root, tt.taken, got, err, tt.what)
			}
		})
	}

	all := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if got, err := bridgeSubnet(root, all); err == nil || !strings.Contains(err.Error(), "Network.BridgeSubnet") {
		t.Errorf("bridgeSubnet(%s, 10.0.0.0/8) = %s, %v, want an error naming Network.BridgeSubnet", root, got, err)
	}
}

// index is the position of the /24 p among the subnets bridgeSubnet picks from.
func index(p netip.Prefix) int {
	a, f := p.Addr().As4(), firstSubnet.As4()
	return (int(a[1])-int(f[1]))*256 + int(a[2])
}

func TestNthSubnet(t *testing.T) {
	tests := []struct {
		i    int
		want string
	}{
		{0, "10.200.0.0/24"},
		{1, "10.200.1.0/24"},
		{256, "10.201.0.0/24"},
		{subnetCount - 1, "10.250.255.0/24"},
	}
	for _, tt := range tests {
		if got := nthSubnet(tt.i).String(); got != tt.want {
			t.Errorf("nthSubnet(%d) = %s, want %s", tt.i, got, tt.want)
		}
	}
}

func TestNetworkResolve(t *testing.T) {
	const root = "/var/lib/kiln/buildkit"
	tests := []struct {
		name    string
		in      Network
		want    Network // zero BridgeSubnet: any derived one
		wantErr string
	}{
		{name: "all derived", in: Network{}, want: Network{CNIBinaryPath: "/usr/lib/cni", BridgeName: bridgeName(root)}},
		{name: "all given", in: Network{CNIBinaryPath: "/opt/cni/bin", BridgeName: "kilnbr0", BridgeSubnet: "10.99.0.0/16"},
			want: Network{CNIBinaryPath: "/opt/cni/bin", BridgeName: "kilnbr0", BridgeSubnet: "10.99.0.0/16"}},
		{name: "name too long", in: Network{BridgeName: "kiln-much-too-long"}, wantErr: "Network.BridgeName"},
		{name: "name with a space", in: Network{BridgeName: "kiln 0"}, wantErr: "Network.BridgeName"},
		{name: "subnet not a prefix", in: Network{BridgeSubnet: "10.99.0.1"}, wantErr: "Network.BridgeSubnet"},
		{name: "subnet not masked", in: Network{BridgeSubnet: "10.99.0.1/24"}, wantErr: "Network.BridgeSubnet"},
		{name: "subnet IPv6", in: Network{BridgeSubnet: "fd00::/64"}, wantErr: "Network.BridgeSubnet"},
		{name: "subnet too small", in: Network{BridgeSubnet: "10.99.0.0/31"}, wantErr: "Network.BridgeSubnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.resolve(root, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve(%+v) = %v, want an error naming %s", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve(%+v) = %v", tt.in, err)
			}
			if tt.want.BridgeSubnet == "" {
				if _, err := netip.ParsePrefix(got.BridgeSubnet); err != nil {
					t.Errorf("resolve(%+v).BridgeSubnet = %q, want a subnet", tt.in, got.BridgeSubnet)
				}
				tt.want.BridgeSubnet = got.BridgeSubnet
			}
			if got != tt.want {
				t.Errorf("resolve(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestNetworkTOML reads the file Kiln writes with BuildKit's own config loader.
func TestNetworkTOML(t *testing.T) {
	n := Network{CNIBinaryPath: `/opt/cni "bin"`, BridgeName: "kiln0a1b2c3d", BridgeSubnet: "10.213.4.0/24"}
	dir := filepath.Join(t.TempDir(), "root")
	mirrors := []string{"127.0.0.1:5001", "mirror.local"}
	path, err := n.writeConfig(dir, mirrors)
	if err != nil {
		t.Fatalf("writeConfig() = %v", err)
	}
	if path != filepath.Join(dir, configFile) {
		t.Errorf("writeConfig() = %s, want %s", path, filepath.Join(dir, configFile))
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("config.Load(%q) = %v", body, err)
	}
	got := cfg.Workers.OCI.NetworkConfig
	want := config.NetworkConfig{Mode: "bridge", CNIBinaryPath: n.CNIBinaryPath, BridgeName: n.BridgeName, BridgeSubnet: n.BridgeSubnet}
	if got != want {
		t.Errorf("buildkitd reads %+v from\n%s\nwant %+v", got, body, want)
	}
	if got := cfg.Registries["docker.io"].Mirrors; !slices.Equal(got, mirrors) {
		t.Errorf("buildkitd reads the mirrors of docker.io as %q from\n%s\nwant %q", got, body, mirrors)
	}
}

func TestCheckMirrors(t *testing.T) {
	for _, m := range []string{"127.0.0.1:5000", "mirror.local", "mirror.local:443/dockerhub"} {
		if err := checkMirrors([]string{m}); err != nil {
			t.Errorf("checkMirrors(%q) = %v, want nil", m, err)
		}
	}
	for _, m := range []string{"", "https://mirror.local", "mirror.local\"\n[x]", "a b"} {
		if err := checkMirrors([]string{m}); err == nil {
			t.Errorf("checkMirrors(%q) = nil, want an error", m)
		}
	}
}

func TestCheckPlugins(t *testing.T) {
	dir := t.TempDir()
	if err := (Network{CNIBinaryPath: dir}).checkPlugins(); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("checkPlugins() in an empty directory = %v, want an error saying to run make deps", err)
	}
	writeFile(t, filepath.Join(dir, "bridge"), 0o755)
	if err := (Network{CNIBinaryPath: dir}).checkPlugins(); err != nil {
		t.Errorf("checkPlugins() with a bridge plugin = %v, want nil", err)
	}
}

// TestHostPrefixes checks that the machine's loopback is listed, and that the interface named is left out.
func TestHostPrefixes(t *testing.T) {
	lo := netip.MustParsePrefix("127.0.0.0/8")
	got, err := hostPrefixes("")
	if err != nil {
		t.Fatalf("hostPrefixes(\"\") = %v", err)
	}
	if !overlapsAny(lo, got) {
		t.Errorf("hostPrefixes(\"\") = %v, want 127.0.0.0/8 among them", got)
	}
	got, err = hostPrefixes("lo")
	if err != nil {
		t.Fatalf("hostPrefixes(lo) = %v", err)
	}
	if overlapsAny(lo, got) {
		t.Errorf("hostPrefixes(lo) = %v, want lo's addresses left out", got)
	}
}
