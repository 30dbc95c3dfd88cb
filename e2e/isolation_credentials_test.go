package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/nats-io/nats.go"

	"github.com/kilnbuild/kiln/cmd/kiln/serve"
	"github.com/kilnbuild/kiln/trigger/api"
)

// readCreds returns the user and password in the data directory's file name ("user:password").
func readCreds(t *testing.T, k *kiln, name string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.DataDir(), name))
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	user, password, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user == "" || password == "" {
		t.Fatalf("%s = %q, want user:password", name, b)
	}
	return user, password
}

// TestNATSNeedsCredentials: Kiln's embedded NATS lets in no one without the user and password of its data
// directory; a build that reached it could otherwise read every secret off JetStream.
func TestNATSNeedsCredentials(t *testing.T) {
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0 })
	bare := serve.RedactURL(k.NATSURL())
	if bare == k.NATSURL() {
		t.Fatalf("NATSURL() = %s, want the credentials in it", bare)
	}
	user, password := readCreds(t, k, "nats-credentials")
	tests := []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{name: "anonymous"},
		{name: "wrong password", opts: []nats.Option{nats.UserInfo(user, "guess")}},
		{name: "the data directory's", opts: []nats.Option{nats.UserInfo(user, password)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(bare, append(tt.opts, nats.MaxReconnects(0))...)
			if err == nil {
				defer nc.Close()
			}
			if tt.ok && err != nil {
				t.Fatalf("nats.Connect(%s) = %v, want a connection", bare, err)
			}
			if !tt.ok && !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("nats.Connect(%s) = %v, want %v", bare, err, nats.ErrAuthorization)
			}
			if !tt.ok {
				return
			}
			// What an intruder would have done: read a stored secret straight off JetStream's API.
			if _, err := nc.Request("$JS.API.STREAM.INFO.KV_kiln_secrets", nil, 10*time.Second); err != nil {
				t.Errorf("a JetStream API request with the data directory's credentials = %v, want an answer", err)
			}
		})
	}
}

// TestRegistryNeedsCredentials: the embedded registry refuses anonymous pushes and deletes while Kiln's own runs
// push to it, and still serves anonymous pulls on loopback.
func TestRegistryNeedsCredentials(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t) // a run pushing to the registry, with the credentials Kiln gave its worker
	base, err := name.ParseReference(reg + "/base/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(base)
	if err != nil {
		t.Fatalf("anonymous remote.Head(%s) on loopback = %v, want the image", base, err)
	}

	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := name.ParseReference(reg + "/base/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(intruder, img); !unauthorized(err) {
		t.Errorf("anonymous remote.Write(%s) = %v, want 401 Unauthorized", intruder, err)
	}
	byDigest, err := name.ParseReference(reg + "/base/busybox@" + desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(byDigest); !unauthorized(err) {
		t.Errorf("anonymous remote.Delete(%s) = %v, want 401 Unauthorized", byDigest, err)
	}
	after, err := remote.Head(base)
	if err != nil || after.Digest != desc.Digest {
		t.Errorf("remote.Head(%s) after the refused push and delete = %v, %v; want %s still", base, after, err, desc.Digest)
	}
	if err := remote.Write(intruder, img, k.registryAuth(t)); err != nil {
		t.Errorf("remote.Write(%s) with the data directory's credentials = %v", intruder, err)
	}
}

// unauthorized reports whether err is a registry's 401.
func unauthorized(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized
}

// TestAPINeedsToken: with no --token-file, Kiln makes a token, on loopback too, and writes it to the client
// config, where the CLI finds it with no flag.
func TestAPINeedsToken(t *testing.T) {
	config := filepath.Join(t.TempDir(), "kiln", "config.json")
	k := startKiln(t, func(c *serve.Config) { c.Workers = 0; c.ClientConfig = config })
	for _, tt := range []struct {
		name  string
		token string
		want  int
	}{
		{name: "no token", want: http.StatusUnauthorized},
		{name: "wrong token", token: "guess", want: http.StatusUnauthorized},
		{name: "the token", token: k.Token(), want: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, k.APIURL()+"/v1/runs", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET /v1/runs with token %q = %d, want %d", tt.token, resp.StatusCode, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name   string
		config string
		want   int
	}{
		{name: "client config", config: config, want: 0},
		{name: "no client config", config: filepath.Join(t.TempDir(), "none.json"), want: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(kilnBin, "runs", "list")
			cmd.Env = append(os.Environ(), "KILN_SERVER="+k.APIURL(), "KILN_TOKEN=", "KILN_CONFIG="+tt.config)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != tt.want {
				t.Errorf("kiln runs list with KILN_CONFIG=%s = exit %d (%v), want %d\n%s", tt.config, got, err, tt.want, out.String())
			}
		})
	}
}

// TestCredentialsStayPrivate: the files holding what Kiln made are its owner's alone, and no password or token
// appears in kiln serve's log or in a run's.
func TestCredentialsStayPrivate(t *testing.T) {
	config := filepath.Join(t.TempDir(), "kiln", "config.json")
	k := startKiln(t, func(c *serve.Config) { c.ClientConfig = config })
	reg := k.pushBase(t)
	run := k.submitFiles(t, map[string]string{"Dockerfile": "FROM " + reg + "/base/busybox:1\nRUN echo " + nonce() + "\n"},
		api.BuildRequest{Tags: []string{"private:1"}})
	if r := k.waitDone(t, run.ID); r.Status != "Succeeded" {
		t.Fatalf("run %s = %s (%q), want Succeeded\n%s", r.ID, r.Status, r.Error, k.logOf(t, r.ID))
	}

	for _, p := range []string{
		filepath.Join(k.DataDir(), "api-token"),
		filepath.Join(k.DataDir(), "nats-credentials"),
		filepath.Join(k.DataDir(), "registry-credentials"),
		config,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode of %s = %v, want 0600", p, got)
		}
	}
	if fi, err := os.Stat(filepath.Dir(config)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("mode of %s = %v (%v), want 0700", filepath.Dir(config), fi.Mode().Perm(), err)
	}
	if b, err := os.ReadFile(config); err != nil || !strings.Contains(string(b), k.Token()) || !strings.Contains(string(b), k.APIURL()) {
		t.Errorf("client config = %s (%v), want the token under %s", b, err, k.APIURL())
	}

	_, natsPassword := readCreds(t, k, "nats-credentials")
	_, registryPassword := readCreds(t, k, "registry-credentials")
	logs := map[string]string{"kiln serve's log": k.log.String(), "the run's log": k.logOf(t, run.ID)}
	if !strings.Contains(logs["kiln serve's log"], "NATS JetStream embedded") {
		t.Fatalf("kiln serve's log has no line about NATS, so it cannot be checked:\n%s", logs["kiln serve's log"])
	}
	for where, log := range logs {
		for what, secret := range map[string]string{"NATS password": natsPassword, "registry password": registryPassword, "API token": k.Token()} {
			if strings.Contains(log, secret) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
}
