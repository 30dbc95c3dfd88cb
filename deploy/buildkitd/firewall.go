package buildkitd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// firewallComment marks the rules the supervisor installs, for whoever lists the machine's firewall.
const firewallComment = "kiln: builds reach no service of this machine"

// firewall keeps the containers on one bridge from reaching this machine and each other, over IPv4 and IPv6:
// every packet that comes in on the bridge and is addressed to the machine itself is dropped (INPUT), and so is
// every packet from one port of the bridge to another (FORWARD, in and out on the bridge, which the kernel's
// bridge netfilter shows iptables). Without the first a RUN step could reach any service listening on 0.0.0.0
// (or ::) through its gateway, the bridge's address; without the second, a server another build runs at the
// same time. Packets forwarded out of the bridge, the containers' way to the world, pass.
type firewall struct {
	bridge string
	tools  []string // the paths of iptables and ip6tables
}

// firewallTools are the programs a firewall drives, one per IP version.
var firewallTools = []string{"iptables", "ip6tables"}

// newFirewall returns the firewall of bridge, driving the programs named tools as found in $PATH. Its error
// says how to install one that is missing.
func newFirewall(bridge string, tools ...string) (*firewall, error) {
	f := &firewall{bridge: bridge}
	for _, name := range tools {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("%s is not installed, and without it a build could reach this machine's services: "+
				"install iptables (make deps)", name)
		}
		f.tools = append(f.tools, p)
	}
	return f, nil
}

// rules are the chains the firewall puts a rule of its own first in, and what each matches beside the comment.
func (f *firewall) rules() [][]string {
	return [][]string{
		{"INPUT", "-i", f.bridge},
		{"FORWARD", "-i", f.bridge, "-o", f.bridge},
	}
}

// rule returns the arguments that apply op (-C, -I, -D) to rule r.
func (f *firewall) rule(op string, r []string) []string {
	args := append([]string{"-w", op}, r...)
	return append(args, "-m", "comment", "--comment", firewallComment, "-j", "DROP")
}

// bridgeNetfilter are the switches that make the kernel show packets crossing a bridge to iptables and
// ip6tables, without which the FORWARD rule sees nothing of the traffic between two containers of a bridge.
var bridgeNetfilter = []string{
	"/proc/sys/net/bridge/bridge-nf-call-iptables",
	"/proc/sys/net/bridge/bridge-nf-call-ip6tables",
}

// install puts each rule first in its chain of each tool, unless it is there already, after turning on the
// kernel's bridge netfilter (as Docker and Kubernetes do): a machine without it is an error, since the builds
// of one bridge would reach each other.
func (f *firewall) install(ctx context.Context) error {
	for _, p := range bridgeNetfilter {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("the kernel's bridge netfilter is off (%v), so builds on one bridge would reach each "+
				"other: load the br_netfilter module", err)
		}
		if strings.TrimSpace(string(b)) != "1" {
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("turning on the kernel's bridge netfilter: %w", err)
			}
		}
	}
	for _, tool := range f.tools {
		for _, r := range f.rules() {
			has, err := f.has(ctx, tool, r)
			if err != nil {
				return err
			}
			if has {
				continue
			}
			if err := runTool(ctx, tool, f.rule("-I", r)...); err != nil {
				return fmt.Errorf("closing this machine to the builds on %s: %w", f.bridge, err)
			}
		}
	}
	return nil
}

// remove deletes the rules from their chains, every copy of each, and does nothing where they are absent.
func (f *firewall) remove(ctx context.Context) error {
	var errs []error
	for _, tool := range f.tools {
		for _, r := range f.rules() {
			for {
				has, err := f.has(ctx, tool, r)
				if err != nil {
					errs = append(errs, err)
					break
				}
				if !has {
					break
				}
				if err := runTool(ctx, tool, f.rule("-D", r)...); err != nil {
					errs = append(errs, fmt.Errorf("removing the firewall rule of %s: %w", f.bridge, err))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// has reports whether tool's chain holds rule r. iptables -C exits 1 when it does not.
func (f *firewall) has(ctx context.Context, tool string, r []string) (bool, error) {
	err := runTool(ctx, tool, f.rule("-C", r)...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil
	}
	return false, fmt.Errorf("checking the firewall rule of %s: %w", f.bridge, err)
}

// runTool runs the program at path with args, and returns an error that holds its output if it fails.
func runTool(ctx context.Context, path string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return &toolError{cmd: path + " " + strings.Join(args, " "), out: strings.TrimSpace(out.String()), err: err}
	}
	return nil
}

// toolError is a program that failed, with what it said.
type toolError struct {
	cmd, out string
	err      error
}

func (e *toolError) Error() string {
	if e.out == "" {
		return fmt.Sprintf("%s: %v", e.cmd, e.err)
	}
	return fmt.Sprintf("%s: %v: %s", e.cmd, e.err, e.out)
}

func (e *toolError) Unwrap() error { return e.err }
