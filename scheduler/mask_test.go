package scheduler

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/proto"
)

func TestMasker(t *testing.T) {
	// odd makes different standard and URL-safe base64 (+/ against -_), and a length not a multiple of 3.
	odd := "\xfb\xef\xbe>?pw"
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{name: "plain", secrets: []string{"hunter22"}, in: "the password is hunter22, yes", want: "the password is ***, yes"},
		{name: "twice, side by side", secrets: []string{"hunter22"}, in: "hunter22hunter22 and hunter22", want: "*** and ***"},
		{name: "base64 padded", secrets: []string{"hunter2"}, in: "Basic aHVudGVyMg== sent", want: "Basic *** sent"},
		{name: "base64 unpadded", secrets: []string{"hunter2"}, in: "token=aHVudGVyMg;", want: "token=***;"},
		{name: "base64 standard", secrets: []string{odd}, in: "a " + base64.StdEncoding.EncodeToString([]byte(odd)) + " b", want: "a *** b"},
		{name: "base64 URL-safe", secrets: []string{odd}, in: "a " + base64.URLEncoding.EncodeToString([]byte(odd)) + " b", want: "a *** b"},
		{name: "base64 URL-safe unpadded", secrets: []string{odd}, in: "a " + base64.RawURLEncoding.EncodeToString([]byte(odd)) + " b", want: "a *** b"},
		{name: "in a URL's query", secrets: []string{"p@ss w/rd&more"}, in: "GET https://h/x?token=" + url.QueryEscape("p@ss w/rd&more") + "&a=1", want: "GET https://h/x?token=***&a=1"},
		{name: "in a URL's path", secrets: []string{"p@ss w/rd&more"}, in: "GET https://h/" + url.PathEscape("p@ss w/rd&more") + "/manifests", want: "GET https://h/***/manifests"},
		{name: "overlapping", secrets: []string{"abcdef12", "ef123456"}, in: "xxabcdef123456yy", want: "xx***yy"},
		{name: "overlapping, shorter first", secrets: []string{"ef12", "abcdef123456"}, in: "xxabcdef123456yy ef12", want: "xx***yy ***"},
		{name: "one inside another", secrets: []string{"secret", "longsecretvalue"}, in: "a longsecretvalue and a secret", want: "a *** and a ***"},
		{name: "a line of a secret of several lines", secrets: []string{"-----BEGIN KEY-----\nMIIEpAIBAAKCAQEA\n-----END KEY-----\n"}, in: "key: MIIEpAIBAAKCAQEA", want: "key: ***"},
		{name: "too short to mask", secrets: []string{"abc"}, in: "abc abcabc", want: "abc abcabc"},
		{name: "empty", secrets: []string{""}, in: "nothing to hide", want: "nothing to hide"},
		{name: "none in the text", secrets: []string{"hunter22"}, in: "hunter2 is not it", want: "hunter2 is not it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMasker(tt.secrets...)
			if got := m.maskString(tt.in); got != tt.want {
				t.Errorf("maskString(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestMaskerBase64Embedded checks that a secret encoded inside a longer string, at every alignment, has every
// base64 character made of its bits alone hidden, and the encoded bytes around it left readable.
func TestMaskerBase64Embedded(t *testing.T) {
	for _, secret := range []string{"hunter22", "correct horse battery staple!", "\xfb\xef\xbe>?pw1"} {
		m := newMasker(secret)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
			for before := range 6 {
				for _, after := range []string{"", "x", ":y", "zzzzzz"} {
					plain := strings.Repeat("u", before) + secret + after
					encoded := enc.EncodeToString([]byte(plain))
					m.mu.RLock()
					hidden := m.hidden([]byte(encoded))
					m.mu.RUnlock()
					lo, hi := 8*before, 8*(before+len(secret)) // the secret's bits
					for c := range len(encoded) {
						inside := 6*c >= lo && 6*c+6 <= hi && encoded[c] != '='
						if inside && (hidden == nil || !hidden[c]) {
							t.Errorf("mask(base64(%q)) = %q: character %d, of the secret's bits alone, is not hidden",
								plain, m.maskString(encoded), c)
							break
						}
						if 6*c+6 <= lo && hidden != nil && hidden[c] {
							t.Errorf("mask(base64(%q)) = %q: character %d, before the secret, is hidden", plain, m.maskString(encoded), c)
							break
						}
					}
				}
			}
		}
	}
}

func TestMaskerAddsLater(t *testing.T) {
	m := newMasker()
	if got := m.maskString("token ghp_abcdef"); got != "token ghp_abcdef" {
		t.Errorf("maskString() with no secrets = %q, want it unchanged", got)
	}
	m.add("ghp_abcdef")
	if got := m.maskString("token ghp_abcdef"); got != "token ***" {
		t.Errorf("maskString() after add = %q, want %q", got, "token ***")
	}
}

func TestMaskerRecord(t *testing.T) {
	m := newMasker("hunter22")
	steps := m.steps([]*proto.StepResult{{Id: "a", Error: "pulling reg/x:hunter22: not found",
		Images: []*proto.Image{{Reference: "reg/x:hunter22"}}}})
	if got := steps[0].GetError(); got != "pulling reg/x:***: not found" {
		t.Errorf("steps()[0].Error = %q, want %q", got, "pulling reg/x:***: not found")
	}
	if got := steps[0].GetImages()[0].GetReference(); got != "reg/x:***" {
		t.Errorf("steps()[0].Images[0] = %q, want %q", got, "reg/x:***")
	}
}

// leakyGit is a git fetcher that shows the token it is given, as a careless one would: in a line of log
// and, base64-encoded in a basic-auth header, in its error.
type leakyGit struct{}

func (leakyGit) Fetch(ctx context.Context, req builder.GitRequest, dest string, log io.Writer) (string, error) {
	fmt.Fprintf(log, "fetching %s with %s\n", req.URL, req.Token)
	auth := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + req.Token))
	return "", fmt.Errorf("fetching %s: 401 for Authorization: Basic %s", req.URL, auth)
}

// TestFetchGitMasksTheToken checks that a task's git token is one of the run's secrets once it is read.
func TestFetchGitMasksTheToken(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := context.Background()
	const token = "ghp_0123456789abcdef"
	src := &proto.GitContext{Url: "https://git.example/repo.git", Ref: "refs/heads/main"}
	if err := st.CreateTask(ctx, &proto.Task{Name: "private", Source: src, GitToken: token}); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: st, Git: leakyGit{}}
	var out bytes.Buffer
	log := newRunLog(&out)
	run := &proto.Run{Id: "k1", Spec: &proto.BuildSpec{TaskName: "private", Git: src}}
	_, err := w.fetchGit(ctx, run, t.TempDir(), log)
	log.Flush()
	if err == nil {
		t.Fatal("fetchGit() = nil, want the fetcher's error")
	}
	if got := out.String(); strings.Contains(got, token) || !strings.Contains(got, "with ***") {
		t.Errorf("log = %q, want the token masked", got)
	}
	if got := log.secrets.maskString(err.Error()); strings.Contains(got, base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))[20:32]) || !strings.Contains(got, "***") {
		t.Errorf("masked error = %q, want the token's base64 masked", got)
	}
}
