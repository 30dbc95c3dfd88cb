package buildkitd

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReleaseNamespaces: a namespace left bind-mounted under root is unmounted and removed, so that root can be
// removed, and the address it held in the supervisor's subnet is freed; other addresses, of other IDs or of
// other subnets, and the IPAM plugin's own files stay.
func TestReleaseNamespaces(t *testing.T) {
	root, ipam := t.TempDir(), t.TempDir()
	dir := filepath.Join(root, netnsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A bind mount of a file stands for the bind mount of a network namespace: both are mounts on a file.
	src := filepath.Join(t.TempDir(), "ns")
	ns := filepath.Join(dir, "left1")
	for _, p := range []string{src, ns} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(src, ns, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(ns, syscall.MNT_DETACH) })

	records := map[string]string{
		"10.9.9.2":           "left1\r\neth0", // this root's namespace, in its subnet: freed
		"10.9.9.3":           "other\r\neth0", // another ID in the subnet: kept
		"10.8.0.2":           "left1\r\neth0", // the same ID in another buildkitd's subnet: kept
		"last_reserved_ip.0": "10.9.9.3",      // the plugin's own
		"lock":               "",
	}
	for name, content := range records {
		if err := os.WriteFile(filepath.Join(ipam, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if err := releaseNamespaces(root, netip.MustParsePrefix("10.9.9.0/24"), ipam); err != nil {
		t.Fatalf("releaseNamespaces() = %v", err)
	}
	if _, err := os.Stat(ns); !os.IsNotExist(err) {
		t.Errorf("after releaseNamespaces, stat %s = %v, want not exist", ns, err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Errorf("removing root after releaseNamespaces: %v", err)
	}
	for name := range records {
		_, err := os.Stat(filepath.Join(ipam, name))
		if gone, want := os.IsNotExist(err), name == "10.9.9.2"; gone != want {
			t.Errorf("IPAM record %s gone = %v, want %v", name, gone, want)
		}
	}
}

// TestReleaseNamespacesNone: a root that never had a namespace is no error.
func TestReleaseNamespacesNone(t *testing.T) {
	if err := releaseNamespaces(t.TempDir(), netip.MustParsePrefix("10.9.9.0/24"), t.TempDir()); err != nil {
		t.Errorf("releaseNamespaces(empty root) = %v, want nil", err)
	}
}
