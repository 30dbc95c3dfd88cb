package taskfile

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package usable by both trigger/ and scheduler/: of Kiln's packages it may import only
// proto and its own (taskfile/tmpl, which holds to the same rule).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("tmpl/*.go")
	files = append(files, more...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/kilnbuild/kiln") && path != "github.com/kilnbuild/kiln/proto" &&
				!strings.HasPrefix(path, "github.com/kilnbuild/kiln/taskfile/") {
				t.Errorf("%s imports %s; taskfile may import only github.com/kilnbuild/kiln/proto and its own packages of Kiln's", name, path)
			}
		}
	}
}
