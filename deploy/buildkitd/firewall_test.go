package buildkitd

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// rulesOn counts the rules of tool's chain that name bridge, as iptables -S lists them.
func rulesOn(t *testing.T, tool, chain, bridge string) int {
	t.Helper()
	out, err := exec.Command(tool, "-w", "-S", chain).CombinedOutput()
	if err != nil {
		t.Fatalf("%s -S %s: %v\n%s", tool, chain, err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "-i "+bridge+" ") && strings.HasSuffix(line, "-j DROP") {
			n++
		}
	}
	return n
}

// TestFirewall runs the real iptables and ip6tables on a bridge name no interface has.
func TestFirewall(t *testing.T) {
	bridge := "kilnfw" + strconv.Itoa(os.Getpid())
	fw, err := newFirewall(bridge, firewallTools...)
	if err != nil {
		t.Fatalf("newFirewall() = %v", err)
	}
	t.Cleanup(func() { fw.remove(t.Context()) })

	for range 2 { // installing twice leaves one rule
		if err := fw.install(t.Context()); err != nil {
			t.Fatalf("install() = %v", err)
		}
	}
	for _, tool := range firewallTools {
		for _, chain := range []string{"INPUT", "FORWARD"} {
			if got := rulesOn(t, tool, chain, bridge); got != 1 {
				t.Errorf("%s %s rules dropping packets from %s after install = %d, want 1", tool, chain, bridge, got)
			}
		}
	}

	for range 2 { // removing what is gone is no error
		if err := fw.remove(t.Context()); err != nil {
			t.Fatalf("remove() = %v", err)
		}
	}
	for _, tool := range firewallTools {
		for _, chain := range []string{"INPUT", "FORWARD"} {
			if got := rulesOn(t, tool, chain, bridge); got != 0 {
				t.Errorf("%s %s rules dropping packets from %s after remove = %d, want 0", tool, chain, bridge, got)
			}
		}
	}
}

func TestFirewallMissingTool(t *testing.T) {
	_, err := newFirewall("kilnfw0", "iptables", "no-such-iptables")
	if err == nil || !strings.Contains(err.Error(), "no-such-iptables") || !strings.Contains(err.Error(), "make deps") {
		t.Errorf("newFirewall(no-such-iptables) = %v, want an error naming it and saying to run make deps", err)
	}
}

// TestFirewallError checks that a rule iptables refuses comes back as an error with iptables' own words.
func TestFirewallError(t *testing.T) {
	fw, err := newFirewall("kilnaverylongname12345", "iptables")
	if err != nil {
		t.Fatalf("newFirewall() = %v", err)
	}
	err = fw.install(t.Context())
	if err == nil || !strings.Contains(err.Error(), "IFNAMSIZ") {
		t.Errorf("install() with a name longer than IFNAMSIZ = %v, want iptables' error", err)
	}
	fw.remove(t.Context())
}
