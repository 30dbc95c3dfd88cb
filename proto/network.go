package proto

import "strings"

// The networks a run's RUN steps and cmd steps may have (BuildSpec.network, Task.network). A spec keeps
// NetworkDefault as "", so that runs and tasks saved before the field existed are isolated too.
const (
	// NetworkDefault is a network namespace of the step's own on BuildKit's bridge: the world through NAT,
	// nothing of the machine that runs it.
	NetworkDefault = "default"
	// NetworkHost is the host's network, Kiln's own services included; it needs kiln serve --allow-host-network.
	NetworkHost = "host"
	// NetworkNone is loopback only.
	NetworkNone = "none"
)

// Networks lists the values ParseNetwork takes, for messages and help texts.
var Networks = []string{NetworkDefault, NetworkHost, NetworkNone}

// ParseNetwork returns the network s names as a spec keeps it: "" for NetworkDefault (or ""), s for the others.
// Any other value is kind Invalid, naming field and the values allowed; so is NetworkHost when allowHost is
// false, naming the flag that allows it. The API checks a request with it, and a worker checks a run again
// before running it, so that a task saved while host network was allowed does not get it once it is not.
func ParseNetwork(field, s string, allowHost bool) (string, error) {
	switch s {
	case "", NetworkDefault:
		return "", nil
	case NetworkNone:
		return s, nil
	case NetworkHost:
		if !allowHost {
			return "", Errorf(Invalid, "%s %q is refused: this Kiln was not started with --allow-host-network, "+
				"and a step on the host's network reaches every service of the machine, Kiln's own included", field, s)
		}
		return s, nil
	}
	return "", Errorf(Invalid, "%s %q is not one of %s", field, s, strings.Join(Networks, ", "))
}
