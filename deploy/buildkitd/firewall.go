package buildkitd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// firewallComment marks the rules the supervisor installs, for whoever lists the machine's firewall.
const firewallComment = "kiln: builds reach no service of this machine"

// firewall keeps the containers on one bridge from reaching this machine: every packet that comes in on the
// bridge and is addressed to the machine itself is dropped, over IPv4 and IPv6. Without it a RUN step could
// reach any service listening on 0.0.0.0 (or ::) through its gateway, the bridge's address. Forwarded packets,
// the containers' way out to the world, are another chain's business and pass.
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

// rule returns the arguments that apply op (-C, -I, -D) to the firewall's rule.
func (f *firewall) rule(op string) []string {
	return []string{"-w", op, "INPUT", "-i", f.bridge, "-m", "comment", "--comment", firewallComment, "-j", "DROP"}
}

// install puts the rule first in each tool's INPUT chain, unless it is there already.
func (f *firewall) install(ctx context.Context) error {
	for _, tool := range f.tools {
		has, err := f.has(ctx, tool)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		if err := runTool(ctx, tool, f.rule("-I")...); err != nil {
			return fmt.Errorf("closing this machine to the builds on %s: %w", f.bridge, err)
		}
	}
	return nil
}

// remove deletes the rule from each tool's INPUT chain, every copy of it, and does nothing where it is absent.
func (f *firewall) remove(ctx context.Context) error {
	var errs []error
	for _, tool := range f.tools {
		for {
			has, err := f.has(ctx, tool)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if !has {
				break
			}
			if err := runTool(ctx, tool, f.rule("-D")...); err != nil {
				errs = append(errs, fmt.Errorf("removing the firewall rule of %s: %w", f.bridge, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// has reports whether tool's INPUT chain holds the rule. iptables -C exits 1 when it does not.
func (f *firewall) has(ctx context.Context, tool string) (bool, error) {
	err := runTool(ctx, tool, f.rule("-C")...)
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
