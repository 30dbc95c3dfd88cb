package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/cmd/kiln/clientconfig"
	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/trigger/api"
)

// stringList is a flag that may be given many times: -t a -t b.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// keyValues is a repeatable K=V flag: --build-arg A=1 --build-arg B=2.
type keyValues map[string]string

func (kv keyValues) String() string { return "" }
func (kv keyValues) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	kv[k] = val
	return nil
}

// network is the value of --network: default, host or none, as the API takes them.
type network string

// networkUsage is the help text of --network.
const networkUsage = "`network` of the RUN steps: default (isolated: the world, nothing of the server's machine), " +
	"host (the machine's own; the server must run with --allow-host-network) or none"

func (n *network) String() string { return string(*n) }
func (n *network) Set(v string) error {
	if !slices.Contains(proto.Networks, v) {
		return fmt.Errorf("%q is not one of %s", v, strings.Join(proto.Networks, ", "))
	}
	*n = network(v)
	return nil
}

// newFlags returns a FlagSet for a verb that prints its usage to stderr and reports errors instead of exiting.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: kiln %s\n\nFlags:\n", synopsis)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses args with flags and positional arguments in any order, as `kiln build DIR -t x` should work,
// and returns the positional ones. -h prints the usage.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil { // on -h the flag package has printed the usage already
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// serverFlags adds --server and --token to a client verb.
type serverFlags struct{ server, token string }

func (s *serverFlags) add(fs *flag.FlagSet) {
	server := os.Getenv("KILN_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	fs.StringVar(&s.server, "server", server, "Kiln server `URL` (or $KILN_SERVER)")
	fs.StringVar(&s.token, "token", os.Getenv("KILN_TOKEN"), "bearer `token` for the server (or $KILN_TOKEN, or the client config's)")
}

// client is a client of the server, with the token of --token, else $KILN_TOKEN, else the one the client config
// holds for the server (which `kiln serve` writes there). A client config that cannot be read is reported on
// stderr, and the client goes on without its token: the server then says that one is needed.
func (s *serverFlags) client() *api.Client {
	token := s.token
	if token == "" {
		var err error
		if token, err = configToken(s.server); err != nil {
			fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
		}
	}
	return api.NewClient(s.server, token)
}

// configToken is the token the local user's client config holds for server.
func configToken(server string) (string, error) {
	path, err := clientconfig.DefaultPath()
	if err != nil {
		return "", err
	}
	return clientconfig.Token(path, server)
}
