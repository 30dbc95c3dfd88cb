// Package clientconfig reads and writes the Kiln client's configuration file: the API token of each Kiln server
// the local user talks to. `kiln serve` writes the token it generates there, and every client command reads it,
// so that a Kiln on this machine needs no flags and no environment to be used.
//
// The file is $KILN_CONFIG, else $XDG_CONFIG_HOME/kiln/config.json, else ~/.config/kiln/config.json:
//
//	{"servers": {"http://127.0.0.1:8080": {"token": "..."}}}
//
// It is written with mode 0600 in a directory of mode 0700, and written whole through a rename, keeping what it
// held for other servers and any other field.
package clientconfig
