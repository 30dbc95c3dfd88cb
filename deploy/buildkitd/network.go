package buildkitd

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"github.com/pelletier/go-toml/v2"
)

// Network is the bridge that buildkitd's OCI worker attaches each build container to, through BuildKit's own
// CNI bridge network: a container has its own network namespace with an address on the bridge, reaches the
// world through the machine's NAT, and sees nothing of this machine's loopback. A zero field is derived from
// the supervisor's Root, so that several supervised buildkitds on one machine each get their own bridge.
type Network struct {
	// CNIBinaryPath is the directory of the CNI plugins (bridge, host-local, loopback, firewall); "" is
	// /usr/lib/cni, where Debian's containernetworking-plugins puts them.
	CNIBinaryPath string
	// BridgeName is the bridge's interface name, at most 15 bytes; "" is "kiln" and 8 hex digits of a hash of
	// Root.
	BridgeName string
	// BridgeSubnet is the bridge's IPv4 subnet, such as "10.213.4.0/24"; "" is a /24 from 10.200.0.0/24 to
	// 10.250.255.0/24 picked by a hash of Root, or the next one after it that overlaps no address of this machine.
	BridgeSubnet string
}

// The defaults of Network.
const (
	defaultCNIBinaryPath = "/usr/lib/cni"
	bridgePrefix         = "kiln"
	maxBridgeName        = 15 // IFNAMSIZ less its NUL
)

// The /24 subnets a derived BridgeSubnet is picked from: subnetCount of them from firstSubnet, 10.200.0.0/24
// up to 10.250.255.0/24.
var firstSubnet = netip.MustParseAddr("10.200.0.0")

const subnetCount = 51 * 256

// configFile is the name of the buildkitd.toml the supervisor writes under Root.
const configFile = "kiln-buildkitd.toml"

// bridgeNameRE is what a bridge name may be: letters, digits and a few marks, as interface names are in practice.
var bridgeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// isolate prepares the network of cfg's buildkitd. Unless cfg.Config names an operator's own buildkitd.toml, it
// derives the bridge, checks that the CNI plugins and iptables are there, installs the firewall rules that
// close this machine to the bridge, and writes the buildkitd.toml that puts the OCI worker on it. It returns
// cfg with Config naming that file and Network resolved, and the firewall to remove once buildkitd has stopped (nil when cfg.Config
// was set). A machine that cannot isolate builds is an error: a sandbox that silently is none is worse than none.
func isolate(ctx context.Context, cfg Config) (Config, *firewall, error) {
	if cfg.Config != "" {
		return cfg, nil, nil
	}
	bridge := cfg.Network.BridgeName
	if bridge == "" {
		bridge = bridgeName(cfg.Root)
	}
	taken, err := hostPrefixes(bridge)
	if err != nil {
		return cfg, nil, err
	}
	n, err := cfg.Network.resolve(cfg.Root, taken)
	if err != nil {
		return cfg, nil, err
	}
	if err := checkMirrors(cfg.Mirrors); err != nil {
		return cfg, nil, err
	}
	if err := n.checkPlugins(); err != nil {
		return cfg, nil, err
	}
	fw, err := newFirewall(n.BridgeName, firewallTools...)
	if err != nil {
		return cfg, nil, err
	}
	if cfg.Config, err = n.writeConfig(cfg.Root, cfg.Mirrors); err != nil {
		return cfg, nil, err
	}
	if err := fw.install(ctx); err != nil {
		return cfg, nil, errors.Join(err, fw.remove(context.WithoutCancel(ctx)))
	}
	cfg.Network = n
	return cfg, fw, nil
}

// resolve returns n with its empty fields derived for root and the given ones checked. taken lists the
// subnets of this machine's addresses, except those on n's bridge (see hostPrefixes).
func (n Network) resolve(root string, taken []netip.Prefix) (Network, error) {
	if n.CNIBinaryPath == "" {
		n.CNIBinaryPath = defaultCNIBinaryPath
	}
	if n.BridgeName == "" {
		n.BridgeName = bridgeName(root)
	}
	if len(n.BridgeName) > maxBridgeName || !bridgeNameRE.MatchString(n.BridgeName) {
		return n, fmt.Errorf("bridge name %q (Network.BridgeName) must be 1 to %d letters, digits, '_', '.' or '-'",
			n.BridgeName, maxBridgeName)
	}
	if n.BridgeSubnet == "" {
		p, err := bridgeSubnet(root, taken)
		if err != nil {
			return n, err
		}
		n.BridgeSubnet = p.String()
		return n, nil
	}
	p, err := netip.ParsePrefix(n.BridgeSubnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 || p != p.Masked() {
		return n, fmt.Errorf("bridge subnet %q (Network.BridgeSubnet) is not an IPv4 subnet of at least 4 addresses, "+
			"such as 10.213.4.0/24", n.BridgeSubnet)
	}
	return n, nil
}

// bridgeName is the bridge of the buildkitd whose root is root: "kiln" and 8 hex digits of root's hash.
func bridgeName(root string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return bridgePrefix + hex.EncodeToString(sum[:4])
}

// bridgeSubnet picks the /24 of the buildkitd whose root is root: the one root's hash points at, or the first
// after it (wrapping around) that overlaps none of taken.
func bridgeSubnet(root string, taken []netip.Prefix) (netip.Prefix, error) {
	sum := sha256.Sum256([]byte("subnet " + filepath.Clean(root)))
	start := int(binary.BigEndian.Uint32(sum[:4]) % uint32(subnetCount))
	for i := range subnetCount {
		p := nthSubnet((start + i) % subnetCount)
		if !overlapsAny(p, taken) {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("every /24 from 10.200.0.0 to 10.250.255.0 overlaps an address of this machine: " +
		"give the build bridge a free subnet (Network.BridgeSubnet)")
}

// nthSubnet is the i-th /24 from firstSubnet.
func nthSubnet(i int) netip.Prefix {
	a := firstSubnet.As4()
	v := binary.BigEndian.Uint32(a[:]) + uint32(i)<<8
	binary.BigEndian.PutUint32(a[:], v)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	for _, q := range taken {
		if p.Overlaps(q) {
			return true
		}
	}
	return false
}

// hostPrefixes returns the subnets of the IPv4 addresses on this machine's interfaces, but for those on the
// interface named except: the supervisor's own bridge, left from its last start, holds the subnet it picked
// then, which it must pick again.
func hostPrefixes(except string) ([]netip.Prefix, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's network interfaces: %w", err)
	}
	var out []netip.Prefix
	for _, iface := range ifaces {
		if iface.Name == except {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			return nil, fmt.Errorf("listing the addresses of %s: %w", iface.Name, err)
		}
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok || ipnet.IP.To4() == nil {
				continue
			}
			addr, _ := netip.AddrFromSlice(ipnet.IP.To4())
			bits, _ := ipnet.Mask.Size()
			out = append(out, netip.PrefixFrom(addr, bits).Masked())
		}
	}
	return out, nil
}

// ociNetworkTOML is the [worker.oci] table of buildkitd.toml, as far as Kiln sets it; the keys are those of
// BuildKit's NetworkConfig (cmd/buildkitd/config).
type ociNetworkTOML struct {
	NetworkMode   string `toml:"networkMode"`
	CNIBinaryPath string `toml:"cniBinaryPath"`
	BridgeName    string `toml:"bridgeName"`
	BridgeSubnet  string `toml:"bridgeSubnet"`
}

// registryTOML is a [registry."HOST"] table of buildkitd.toml, as far as Kiln sets it (BuildKit's
// RegistryConfig).
type registryTOML struct {
	Mirrors []string `toml:"mirrors"`
}

// mirrorRE is what a mirror may be: a host, with a port and a path or not, and nothing BuildKit would read as
// more (a scheme, blanks, quotes).
var mirrorRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._/-]*)?$`)

// checkMirrors refuses a mirror that is not host[:port][/path].
func checkMirrors(mirrors []string) error {
	for _, m := range mirrors {
		if !mirrorRE.MatchString(m) {
			return fmt.Errorf("registry mirror %q (Config.Mirrors) is not a host[:port], such as mirror.local:5000", m)
		}
	}
	return nil
}

// toml returns the buildkitd.toml that runs the OCI worker on n's bridge and pulls Docker Hub's images through
// mirrors.
func (n Network) toml(mirrors []string) ([]byte, error) {
	var file struct {
		Worker struct {
			OCI ociNetworkTOML `toml:"oci"`
		} `toml:"worker"`
		Registry map[string]registryTOML `toml:"registry,omitempty"`
	}
	file.Worker.OCI = ociNetworkTOML{NetworkMode: "bridge", CNIBinaryPath: n.CNIBinaryPath, BridgeName: n.BridgeName,
		BridgeSubnet: n.BridgeSubnet}
	if len(mirrors) > 0 {
		file.Registry = map[string]registryTOML{"docker.io": {Mirrors: mirrors}}
	}
	body, err := toml.Marshal(file)
	if err != nil {
		return nil, fmt.Errorf("writing buildkitd.toml: %w", err)
	}
	return append([]byte("# Written by Kiln at each start of buildkitd; changes here are lost.\n\n"), body...), nil
}

// writeConfig writes n's buildkitd.toml, with mirrors for Docker Hub, under root and returns its path.
func (n Network) writeConfig(root string, mirrors []string) (string, error) {
	body, err := n.toml(mirrors)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("making buildkitd's root: %w", err)
	}
	path := filepath.Join(root, configFile)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return "", fmt.Errorf("writing buildkitd.toml: %w", err)
	}
	return path, nil
}

// removeBridge deletes the bridge named name, if this machine has one. buildkitd leaves its bridge behind when
// it stops; the supervisor removes it with the firewall rules, so that a machine that ran many (tests do, each
// with a root of its own) is not left with a bridge of each.
func removeBridge(ctx context.Context, name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if err := runTool(ctx, "ip", "link", "del", name); err != nil {
		return fmt.Errorf("removing the build bridge: %w", err)
	}
	return nil
}

// checkPlugins returns an error unless n's CNI directory holds the bridge plugin that BuildKit needs.
func (n Network) checkPlugins() error {
	p := filepath.Join(n.CNIBinaryPath, "bridge")
	if !isExecutable(p) {
		return fmt.Errorf("the CNI bridge plugin %s is missing: install containernetworking-plugins (make deps), "+
			"or say where the CNI plugins are (Network.CNIBinaryPath)", p)
	}
	return nil
}
