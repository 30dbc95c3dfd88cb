package trigger

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports fails when a trigger package imports a part of Kiln other than proto, store and trigger itself:
// triggers and workers run as separate processes, linked only by the events in proto.
func TestImports(t *testing.T) {
	const module = "github.com/kilnbuild/kiln/"
	allowed := func(p string) bool {
		rel := strings.TrimPrefix(p, module)
		return rel == "proto" || rel == "store" || rel == "trigger" || strings.HasPrefix(rel, "trigger/")
	}
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !allowed(p) {
				t.Errorf("%s imports %s, want only proto, store and trigger packages of Kiln", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking trigger: %v", err)
	}
	if files < 2 {
		t.Fatalf("found %d Go files under trigger, want the whole tree", files)
	}
}
