package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/kilnbuild/kiln/store"
)

// secretCmd is `kiln secret set|list|delete`: the secrets task files use as {{.Secrets.ID}}.
func secretCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("needs a verb: set NAME, list or delete NAME")
	}
	verb, args := args[0], args[1:]
	synopsis := map[string]string{
		"set":    "secret set NAME [--value-file FILE]\n\nThe value is read from FILE, or else from standard input; one trailing newline is dropped.",
		"list":   "secret list",
		"delete": "secret delete NAME",
	}[verb]
	if synopsis == "" {
		return usagef("unknown verb %q: want set, list or delete", verb)
	}
	var srv serverFlags
	fs := newFlags("secret "+verb, synopsis)
	srv.add(fs)
	valueFile := fs.String("value-file", "", "`file` holding the value, for set (default: standard input)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c := srv.client()
	switch verb {
	case "list":
		if len(pos) != 0 {
			return usagef("list takes no arguments")
		}
		secrets, err := c.ListSecrets(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tUPDATED")
		for _, s := range secrets {
			fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.UpdatedAt.Format("2006-01-02 15:04:05Z"))
		}
		return tw.Flush()
	case "delete":
		if len(pos) != 1 {
			return usagef("delete needs exactly one NAME")
		}
		if err := c.DeleteSecret(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Deleted secret %s.\n", pos[0])
		return nil
	}
	if len(pos) != 1 {
		return usagef("set needs exactly one NAME")
	}
	src := stdin
	if *valueFile != "" {
		f, err := os.Open(*valueFile)
		if err != nil {
			return fmt.Errorf("reading --value-file: %w", err)
		}
		defer f.Close()
		src = f
	}
	value, err := io.ReadAll(io.LimitReader(src, store.MaxSecretSize+2))
	if err != nil {
		return fmt.Errorf("reading the value: %w", err)
	}
	value = bytes.TrimSuffix(bytes.TrimSuffix(value, []byte("\n")), []byte("\r"))
	if err := c.SetSecret(ctx, pos[0], value); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Set secret %s.\n", pos[0])
	return nil
}
