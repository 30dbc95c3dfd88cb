package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

// fuzzSecret is the one task secret of the fuzzers.
const fuzzSecret = "It's a Secret to Everybody"

// seed adds the real payloads under testdata/dir (see testdata/README.md) to f, each by add.
func seed(f *testing.F, dir string, add func(body []byte)) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// hexHMAC is the hex HMAC-SHA256 of b under key.
func hexHMAC(key string, b []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// checkKind fails unless err is nil or of a kind that blames the sender.
func checkKind(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if code := proto.ErrorCode(err); code != proto.Invalid && code != proto.Unauthorized {
		t.Fatalf("%s: error %q of kind %s, want invalid or unauthorized", what, err, code)
	}
}

// FuzzGitHubDelivery reads a GitHub delivery as serveGitHub does, past the store: its content type, its
// signature headers, its body hashed as it streams in, the payload of a form, the event. Nothing panics,
// every error blames the sender, and a body signed with the secret over its raw bytes is proven.
func FuzzGitHubDelivery(f *testing.F) {
	seed(f, "github", func(b []byte) {
		f.Add("push", "application/json", b, true, "")
		f.Add("pull_request", "application/x-www-form-urlencoded", []byte(url.Values{"payload": {string(b)}}.Encode()), true, "")
		f.Add("ping", "application/json", b, false, "sha256=00")
	})
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte, signed bool, hubHeader string) {
		header := http.Header{}
		if signed {
			hubHeader = "sha256=" + hexHMAC(fuzzSecret, body)
		}
		header.Set(hubSignatureHeader, hubHeader)
		mediaType, err := payloadMediaType(contentType)
		checkKind(t, "payloadMediaType", err)
		if err != nil {
			return
		}
		sigs, err := readSignatures(header)
		checkKind(t, "readSignatures", err)
		if err != nil {
			return
		}
		v := newVerifier([]string{fuzzSecret, "another secret"}, mediaType)
		for rest := body; len(rest) > 0; { // in uneven pieces, as a body arrives
			n := min(len(rest), 1+len(rest)%7)
			_, _ = v.Write(rest[:n])
			rest = rest[n:]
		}
		proven := v.proven(sigs)
		if signed && !proven[fuzzSecret] {
			t.Fatalf("a body signed over its raw bytes is not proven")
		}
		if proven["another secret"] {
			t.Fatalf("a body is proven by a secret that did not sign it")
		}
		payload := body
		if mediaType == mediaForm {
			payload, err = formValue(body)
			checkKind(t, "formValue", err)
			if err != nil {
				return
			}
		}
		e, err := decodeGitHub(event, payload)
		checkKind(t, "decodeGitHub", err)
		if err != nil {
			return
		}
		_, _, err = githubChange(event, e)
		checkKind(t, "githubChange", err)
	})
}

// FuzzGiteaDelivery sends a payload as Gitea and Forgejo do, as JSON or as a form, signed over the payload
// in every header they write: the signature is always proven, the form always gives the payload back
// unchanged, and reading it never panics or fails with anything but the sender's fault.
func FuzzGiteaDelivery(f *testing.F) {
	seed(f, "gitea", func(b []byte) {
		f.Add(b, false, "push")
		f.Add(b, true, "push")
	})
	f.Add([]byte("a+b%20c&payload=x"), true, "pull_request")
	f.Fuzz(func(t *testing.T, payload []byte, form bool, event string) {
		body, mediaType := payload, mediaJSON
		if form {
			body, mediaType = []byte(url.Values{"payload": {string(payload)}}.Encode()), mediaForm
		}
		sig := hexHMAC(fuzzSecret, payload)
		for _, name := range []string{hubSignatureHeader, giteaSignatureHeader, gogsSignatureHeader, forgejoSignatureHeader} {
			header := http.Header{}
			if name == hubSignatureHeader {
				header.Set(name, "sha256="+sig)
			} else {
				header.Set(name, sig)
			}
			sigs, err := readSignatures(header)
			if err != nil {
				t.Fatalf("readSignatures(%s) = %v", name, err)
			}
			v := newVerifier([]string{"another secret", fuzzSecret}, mediaType)
			_, _ = v.Write(body)
			if proven := v.proven(sigs); !proven[fuzzSecret] || proven["another secret"] {
				t.Fatalf("signed in %s: proven %v, want the secret alone", name, proven)
			}
		}
		got := body
		if form {
			var err error
			if got, err = formValue(body); err != nil {
				t.Fatalf("formValue(%q) = %v", body, err)
			}
		}
		if string(got) != string(payload) {
			t.Fatalf("payload read back = %q, want %q", got, payload)
		}
		e, err := decodeGitHub(event, got)
		checkKind(t, "decodeGitHub", err)
		if err == nil {
			_, _, err = githubChange(event, e)
			checkKind(t, "githubChange", err)
		}
	})
}

// FuzzGitLabDelivery reads a GitLab hook's body as serveGitLab does once its token is proven: nothing panics,
// and every error blames the sender.
func FuzzGitLabDelivery(f *testing.F) {
	seed(f, "gitlab", func(b []byte) {
		f.Add("Push Hook", b)
		f.Add("Tag Push Hook", b)
		f.Add("Merge Request Hook", b)
	})
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		p, err := decodeGitLab(event, body)
		checkKind(t, "decodeGitLab", err)
		if err != nil {
			return
		}
		_, _, err = gitlabChange(p)
		checkKind(t, "gitlabChange", err)
		_, _, err = gitlabMergeRequestChange(p)
		checkKind(t, "gitlabMergeRequestChange", err)
		_ = newRepository(p.Project.GitHTTPURL, p.Project.WebURL, p.Project.GitSSHURL)
	})
}

// FuzzFormPayload decodes any form body: no panic, errors blame the sender, and when url.ParseQuery reads
// the body without an error and its first field is the payload, both read the same value.
func FuzzFormPayload(f *testing.F) {
	f.Add([]byte("payload=%7B%22a%22%3A1%7D"))
	f.Add([]byte("payload=a+b&payload=c"))
	f.Add([]byte("x=1&pay%6Coad=%zz"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := formValue(body)
		checkKind(t, "formValue", err)
		q, qerr := url.ParseQuery(string(body))
		if err != nil || qerr != nil {
			return
		}
		if want, ok := q["payload"]; ok && want[0] != string(got) {
			t.Fatalf("formValue(%q) = %q, url.ParseQuery's payload = %q", body, got, want[0])
		}
	})
}
