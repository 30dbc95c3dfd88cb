package buildkitd

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
)

// netnsDir is where buildkitd's CNI provider keeps the network namespaces of its containers, each bind-mounted
// on a file named by its ID; ipamDir is where the host-local IPAM plugin records which ID holds which address
// of BuildKit's network, named "buildkit" by every buildkitd.
const (
	netnsDir = "net/cni"
	ipamDir  = "/var/lib/cni/networks/buildkit"
)

// releaseNamespaces takes down the network namespaces a buildkitd that is not running any more left under root,
// and frees the addresses of subnet they held. A buildkitd releases those an earlier one left when it starts,
// through CNI; this is for when none will start again on root: the supervisor stops while the buildkitd that it
// would have restarted is down. Without it the mounts keep root from being removed, and the addresses stay
// taken. The CNI plugins' NAT rules of those namespaces are left: they match addresses no one holds.
func releaseNamespaces(root string, subnet netip.Prefix, ipam string) error {
	dir := filepath.Join(root, netnsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finding buildkitd's network namespaces: %w", err)
	}
	ids := make(map[string]bool)
	var errs []error
	for _, e := range entries {
		// MNT_DETACH lets go of a namespace that a dying process still holds.
		if err := unmountRemove(filepath.Join(dir, e.Name()), syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("taking down a network namespace: %w", err))
			continue
		}
		ids[e.Name()] = true
	}
	if len(ids) > 0 && subnet.IsValid() {
		errs = append(errs, freeAddresses(ipam, subnet, ids))
	}
	return errors.Join(errs...)
}

// freeAddresses removes the host-local IPAM records, in dir, of the addresses of subnet held by one of ids. A
// record is a file named by the address whose first line is the ID holding it.
func freeAddresses(dir string, subnet netip.Prefix, ids map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the addresses of BuildKit's network: %w", err)
	}
	var errs []error
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil || !subnet.Contains(addr) {
			continue // the lock, last_reserved_ip.0, another buildkitd's address
		}
		p := filepath.Join(dir, e.Name())
		if id, err := firstLine(p); err != nil || !ids[id] {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("freeing %s of BuildKit's network: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// firstLine returns the first line of the file at path, without its end.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	return sc.Text(), sc.Err()
}
