package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSecretsMasked runs task files that put a secret where a run's text goes: into an image reference that
// fails to pull (so into the step's error, the run's error and the log's last line), and through base64 in a
// step's output. The secret, in any of those forms, is in no answer of the API; *** is where it was.
func TestSecretsMasked(t *testing.T) {
	k := startKiln(t)
	reg := k.pushBase(t)
	base := reg + "/base/busybox:1"
	secret := "kilnsecret" + nonce()
	if err := k.api.SetSecret(context.Background(), "masked", []byte(secret)); err != nil {
		t.Fatalf("SetSecret() = %v", err)
	}

	t.Run("in the image reference of a failing step", func(t *testing.T) {
		run, out, _ := k.runFile(t, map[string]string{"acb.yaml": `secrets:
  - id: masked
steps:
  - id: pull
    cmd: ` + reg + `/nothere/x:{{.Secrets.masked}} true
`})
		if run == nil || run.Status == "Succeeded" {
			t.Fatalf("kiln run = %v, want a run that failed\n%s", run, out)
		}
		log := k.logOf(t, run.ID)
		lines := strings.Split(strings.TrimSpace(log), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "Run "+run.ID) || !strings.Contains(last, "***") {
			t.Errorf("the log's last line = %q, want the run's end with *** for the secret", last)
		}
		if pull := stepOf(t, run, "pull"); !strings.Contains(pull.Error, "***") {
			t.Errorf("step pull's error = %q, want *** for the secret in it", pull.Error)
		}
		if !strings.Contains(run.Error, "***") {
			t.Errorf("the run's error = %q, want *** for the secret in it", run.Error)
		}
		answers := map[string]string{
			"kiln run's output":      out,
			"the log":                log,
			"GET /v1/runs/" + run.ID: k.get(t, k.APIURL()+"/v1/runs/"+run.ID),
			"GET /v1/runs":           k.get(t, k.APIURL()+"/v1/runs"),
			"GET /v1/secrets":        k.get(t, k.APIURL()+"/v1/secrets"),
		}
		for what, text := range answers {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the secret:\n%s", what, text)
			}
		}
	})

	t.Run("base64 in a step's output", func(t *testing.T) {
		run, out, code := k.runFile(t, map[string]string{"acb.yaml": `secrets:
  - id: masked
steps:
  - id: enc
    cmd: ` + base + ` sh -c "echo -n {{.Secrets.masked}} | base64; echo; echo -n user:{{.Secrets.masked}} | base64"
`})
		if code != 0 || run == nil || run.Status != "Succeeded" {
			t.Fatalf("kiln run = exit %d\n%s", code, out)
		}
		log := k.logOf(t, run.ID)
		if !strings.Contains(log, "[enc] ***\n") {
			t.Errorf("the log has no line [enc] *** where the secret's base64 was:\n%s", log)
		}
		whole := base64.StdEncoding.EncodeToString([]byte(secret))
		// In "user:SECRET", the secret starts 5 bytes in: the characters from the 7th to the last of its own
		// bits are made of the secret alone.
		embedded := base64.StdEncoding.EncodeToString([]byte("user:" + secret))[7 : 8*(5+len(secret))/6]
		for what, text := range map[string]string{"kiln run's output": out, "the log": log} {
			if strings.Contains(text, whole) || strings.Contains(text, embedded) || strings.Contains(text, secret) {
				t.Errorf("%s holds the secret, base64-encoded:\n%s", what, text)
			}
		}
		if !strings.Contains(log, base64.StdEncoding.EncodeToString([]byte("user:" + secret))[:7]+"***") {
			t.Errorf("the log does not show user: encoded, then ***:\n%s", log)
		}
	})
}

// get returns the body of a GET of url, asked with the API token.
func (k *kiln) get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+k.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}
