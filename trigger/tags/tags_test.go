package tags

import (
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

func TestRenderTags(t *testing.T) {
	queued := time.Date(2026, 12, 31, 23, 59, 58, 0, time.FixedZone("CET", 3600)) // 22:59:58 UTC
	tests := []struct {
		name     string
		tag      string
		registry string
		want     string
	}{
		{"run ID", "app:{{.Run.ID}}", "registry.local", "registry.local/app:k7"},
		{"date in UTC", "app:{{.Run.Date}}", "registry.local", "registry.local/app:20261231-225958z"},
		{"registry", "{{.Run.Registry}}/app:1", "registry.local:5000", "registry.local:5000/app:1"},
		{"default registry before a repository", "acme/app:1", "registry.local", "registry.local/acme/app:1"},
		{"explicit host kept", "ghcr.io/acme/app:{{.Run.ID}}", "registry.local", "ghcr.io/acme/app:k7"},
		{"explicit host and port kept", "reg:5000/app:1", "registry.local", "reg:5000/app:1"},
		{"localhost kept", "localhost/app:1", "registry.local", "localhost/app:1"},
		{"no default registry, explicit host", "ghcr.io/app:1", "", "ghcr.io/app:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render([]string{tt.tag}, Run{ID: "k7", Queued: queued}, tt.registry)
			if err != nil || len(got) != 1 || got[0] != tt.want {
				t.Errorf("Render(%q) = %q, %v, want %q", tt.tag, got, err, tt.want)
			}
		})
	}
}

func TestRenderTagsErrors(t *testing.T) {
	tests := []struct {
		name     string
		tag      string
		registry string
		want     string // in the message
	}{
		{"does not parse", "app:{{.Run.ID", "registry.local", "not a valid template"},
		{"unknown field", "app:{{.Run.Branch}}", "registry.local", "Branch"},
		{"unknown top-level field", "app:{{.Commit}}", "registry.local", "Commit"},
		{"bad characters", "app:a b", "registry.local", "not a valid image reference"},
		{"no tag", "acme/app", "registry.local", "not a valid image reference"},
		{"no registry and none by default", "acme/app:1", "", "not a valid image reference"},
		{"empty", "", "registry.local", "not a valid image reference"},
		{"URL", "http://x/y:1", "registry.local", "is a URL (http://...)"},
		{"URL with a registry", "https://ghcr.io/acme/app:1", "registry.local", "is a URL (https://...)"},
		{"URL from a template", "http://{{.Run.Registry}}/app:{{.Run.ID}}", "registry.local", "is a URL (http://...)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render([]string{"ghcr.io/ok:1", tt.tag}, Run{ID: "k7", Queued: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}, tt.registry)
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "tag \""+tt.tag+"\"") {
				t.Errorf("Render(%q) = %v, want invalid naming the tag and %q", tt.tag, err, tt.want)
			}
		})
	}
}

func TestRenderGitFields(t *testing.T) {
	run := Run{ID: "k9", Commit: "abc123", Branch: "main", TaskName: "web", TriggeredBy: "commit", Queued: time.Unix(0, 0)}
	got, err := Render([]string{"{{.Run.TaskName}}:{{.Run.Branch}}-{{.Run.Commit}}-{{.Run.TriggeredBy}}-{{.Run.ID}}"}, run, "reg.example:5000")
	if want := "reg.example:5000/web:main-abc123-commit-k9"; err != nil || len(got) != 1 || got[0] != want {
		t.Errorf("Render(git fields) = %v, %v, want %s", got, err, want)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		tag  string
		ok   bool
	}{
		{"every field", "app:{{.Run.Commit}}-{{.Run.Branch}}-{{.Run.TaskName}}-{{.Run.TriggeredBy}}-{{.Run.Date}}-{{.Run.ID}}", true},
		{"registry field", "{{.Run.Registry}}/app:1", true},
		{"unknown field", "app:{{.Run.Nope}}", false},
		{"does not parse", "app:{{.Run.ID", false},
		{"not a reference", "App Name:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check([]string{tt.tag}, "reg.example"); (err == nil) != tt.ok {
				t.Errorf("Check(%q) = %v, want ok %v", tt.tag, err, tt.ok)
			}
		})
	}
}

// TestRenderBombs: a tag that would make far more than a tag is refused by its limit, quickly and in a
// short message that names the tag and the limit but holds nothing of the expansion.
func TestRenderBombs(t *testing.T) {
	tests := []struct {
		name, tag, want string
	}{
		{"a range that writes", "x{{range 20000000}}xxxxxxxxxx{{end}}", "a range may make at most 1000 iterations"},
		{"a range that writes nothing", "{{range 100000000}}{{end}}", "a range may make at most 1000 iterations"},
		{"printf's width", `app:{{printf "%0200000000d" 1}}`, "width or precision"},
		{"a range under the limit", "app:{{range 1000}}{{range 1000}}xxxxxxxxxx{{end}}{{end}}", "over the 4 KiB limit"},
		{"a long tag", "app:{{.Run.Nope}}" + strings.Repeat("x", 100000), "can't evaluate field Nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render([]string{tt.tag}, Run{ID: "k1", Queued: time.Unix(0, 0)}, "127.0.0.1:5000")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render(%.40q) = %v, want an error saying %q", tt.tag, err, tt.want)
			}
			if len(err.Error()) > 512 {
				t.Errorf("Render(%.40q) = an error of %d bytes, want a short one", tt.tag, len(err.Error()))
			}
			if got := proto.ErrorCode(err); got != proto.Invalid {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, got, proto.Invalid)
			}
		})
	}
}
