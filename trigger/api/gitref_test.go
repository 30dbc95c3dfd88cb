package api

import (
	"strings"
	"testing"

	gproto "google.golang.org/protobuf/proto"

	"github.com/kilnbuild/kiln/proto"
)

func TestParseGitContext(t *testing.T) {
	tests := []struct {
		in   string
		want *proto.GitContext
	}{
		{"https://github.com/acme/app.git", &proto.GitContext{Url: "https://github.com/acme/app.git"}},
		{"https://github.com/acme/app.git#main", &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "main"}},
		{"https://github.com/acme/app.git#main:docker/app", &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "main", Subdir: "docker/app"}},
		{"https://github.com/acme/app.git#:docker", &proto.GitContext{Url: "https://github.com/acme/app.git", Subdir: "docker"}},
		{"https://github.com/acme/app.git#release/1.2:./a/../b/", &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "release/1.2", Subdir: "b"}},
		{"https://github.com/acme/app.git#refs/tags/v1:.", &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "refs/tags/v1"}},
		{"http://git.local:3000/acme/app", &proto.GitContext{Url: "http://git.local:3000/acme/app"}},
		{" https://github.com/acme/app.git#main ", &proto.GitContext{Url: "https://github.com/acme/app.git", Ref: "main"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseGitContext(tt.in)
			if err != nil || !gproto.Equal(got, tt.want) {
				t.Errorf("ParseGitContext(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseGitContextRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // in the message
	}{
		{"empty", "", "not a valid http or https URL"},
		{"ssh", "ssh://git@github.com/acme/app.git", "only http and https"},
		{"scp style", "git@github.com:acme/app.git", "http or https"},
		{"file", "file:///srv/app.git", "only http and https"},
		{"token in URL", "https://x-access-token:ghp_abc@github.com/acme/app.git", "credentials in the URL are refused"},
		{"user in URL", "https://me@github.com/acme/app.git", "credentials in the URL are refused"},
		{"no host", "https:///acme/app.git", "names no host"},
		{"no path", "https://github.com/#main", "names no repository"},
		{"query", "https://github.com/acme/app.git?token=1", "no query string"},
		{"bad ref", "https://github.com/acme/app.git#ma..in", `"ma..in"`},
		{"ref with space", "https://github.com/acme/app.git#a b", `"a b"`},
		{"ref starting with a dash", "https://github.com/acme/app.git#-x", `"-x"`},
		{"subdir outside", "https://github.com/acme/app.git#main:../etc", `"../etc"`},
		{"subdir absolute", "https://github.com/acme/app.git#main:/etc", `"/etc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGitContext(tt.in)
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseGitContext(%q) = %v, %v; want an invalid error naming %s", tt.in, got, err, tt.want)
			}
			if strings.Contains(err.Error(), "ghp_abc") {
				t.Errorf("ParseGitContext(%q) error %q repeats the credentials", tt.in, err)
			}
		})
	}
}

func TestGitContextRoundTrip(t *testing.T) {
	for _, in := range []string{
		"https://h/a.git", "https://h/a.git#main", "https://h/a.git#main:sub/dir", "https://h/a.git#:sub",
	} {
		g, err := ParseGitContext(in)
		if err != nil {
			t.Fatalf("ParseGitContext(%q): %v", in, err)
		}
		if got := formatGitContext(g); got != in {
			t.Errorf("formatGitContext(ParseGitContext(%q)) = %q, want it back", in, got)
		}
	}
}

func TestIsGitContextURL(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"https://github.com/acme/app.git", true},
		{"https://github.com/acme/app.git/", true},
		{"https://github.com/acme/app#main", true},
		{"https://github.com/acme/app#:sub", true},
		{"https://files.example/ctx.tar.gz", false},
		{"https://files.example/ctx.tgz?sig=abc", false},
		{"https://files.example/app.git.tar.gz", false},
	}
	for _, tt := range tests {
		if got := isGitContextURL(tt.in); got != tt.want {
			t.Errorf("isGitContextURL(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
