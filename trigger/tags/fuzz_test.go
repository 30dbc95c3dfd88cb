package tags

import (
	"testing"
	"time"

	"github.com/kilnbuild/kiln/proto"
	"github.com/kilnbuild/kiln/taskfile/tmpl"
)

// FuzzTagTemplate renders a tag template. Whatever the tag, it must not panic; an error is of kind Invalid
// (or Unavailable, every worker busy) and short; a tag rendered is within tmpl.TagLimits; and the render ends
// (the bound here is only a hang guard, far above the time limit).
func FuzzTagTemplate(f *testing.F) {
	for _, s := range []string{
		"app:{{.Run.ID}}", "{{.Run.Registry}}/app:{{.Run.Date}}", "app:{{.Run.Branch}}-{{.Run.Commit}}",
		"app:{{printf \"%.7s\" .Run.Commit}}", "localhost:5000/app:latest", "http://x/y:1", "app:{{.Run.Nope}}",
		"x{{range 20000000}}xxxxxxxxxx{{end}}", "{{range 100000000}}{{end}}", "app:{{printf \"%0200000000d\" 1}}",
		"{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}", "app:{{html (print .Run)}}",
	} {
		f.Add(s)
	}
	run := Run{ID: "k1", Commit: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Queued: time.Unix(0, 0)}
	f.Fuzz(func(t *testing.T, tag string) {
		start := time.Now()
		out, err := renderTag(tag, data{Run: run})
		if err != nil {
			if c := proto.ErrorCode(err); c != proto.Invalid && c != proto.Unavailable {
				t.Fatalf("renderTag() error %v of kind %q, want %q", err, c, proto.Invalid)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("renderTag() = an error of %d bytes, want at most 1 KiB", len(err.Error()))
			}
		}
		if len(out) > tmpl.TagLimits.Output {
			t.Errorf("renderTag() = %d bytes, over the %d bytes limit", len(out), tmpl.TagLimits.Output)
		}
		if _, err := Render([]string{tag}, run, "127.0.0.1:5000"); err != nil && len(err.Error()) > 1024 {
			t.Fatalf("Render() = an error of %d bytes, want at most 1 KiB", len(err.Error()))
		}
		if took := time.Since(start); took > 10*tmpl.TagLimits.Time {
			t.Errorf("rendering took %v", took)
		}
	})
}
