package clientconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetTokenKeepsOtherServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln", "config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	before := `{"servers": {"https://kiln.example": {"token": "other", "note": "kept"}}, "theme": "dark"}`
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetToken(path, "http://127.0.0.1:8080/", "t1"); err != nil {
		t.Fatalf("SetToken = %v", err)
	}
	if err := SetToken(path, "http://127.0.0.1:8080", "t2"); err != nil {
		t.Fatalf("SetToken again = %v", err)
	}
	tests := []struct {
		name, server, want string
	}{
		{name: "set", server: "http://127.0.0.1:8080", want: "t2"},
		{name: "trailing slash", server: "http://127.0.0.1:8080/", want: "t2"},
		{name: "kept", server: "https://kiln.example", want: "other"},
		{name: "unknown", server: "http://127.0.0.1:9090", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Token(path, tt.server); err != nil || got != tt.want {
				t.Errorf("Token(%s) = %q, %v; want %q", tt.server, got, err, tt.want)
			}
		})
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Theme   string
		Servers map[string]map[string]string
	}
	if err := json.Unmarshal(b, &top); err != nil || top.Theme != "dark" || top.Servers["https://kiln.example"]["note"] != "kept" {
		t.Errorf("the file after SetToken = %s (%v), want its other fields kept", b, err)
	}
}

func TestSetTokenModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "config.json")
	if err := SetToken(path, "http://127.0.0.1:8080", "t"); err != nil {
		t.Fatalf("SetToken = %v", err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", p, got, want)
		}
	}
}

func TestTokenErrors(t *testing.T) {
	dir := t.TempDir()
	if got, err := Token(filepath.Join(dir, "missing.json"), "http://x"); err != nil || got != "" {
		t.Errorf("Token(a missing file) = %q, %v; want no token and no error", got, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Token(bad, "http://x"); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Token(a file that is not JSON) = %v, want an error naming %s", err, bad)
	}
	if err := SetToken(bad, "http://x", "t"); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("SetToken(a file that is not JSON) = %v, want an error naming %s", err, bad)
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		name, kilnConfig, xdg, home, want string
	}{
		{name: "KILN_CONFIG", kilnConfig: "/etc/k.json", xdg: "/x", home: "/h", want: "/etc/k.json"},
		{name: "XDG_CONFIG_HOME", xdg: "/x", home: "/h", want: "/x/kiln/config.json"},
		{name: "home", home: "/h", want: "/h/.config/kiln/config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KILN_CONFIG", tt.kilnConfig)
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			if got, err := DefaultPath(); err != nil || got != tt.want {
				t.Errorf("DefaultPath() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
