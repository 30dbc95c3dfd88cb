package deploy

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kilnModule is the module path of Kiln's own packages.
const kilnModule = "github.com/kilnbuild/kiln"

// TestImportsOnlyOutsideLibraries fails when a file under deploy imports one of Kiln's packages: what Kiln starts
// by itself must stay replaceable by outside services, so it may not depend on the rest of Kiln.
func TestImportsOnlyOutsideLibraries(t *testing.T) {
	var files int
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
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if p == kilnModule || strings.HasPrefix(p, kilnModule+"/") {
				t.Errorf("%s imports %s, want outside libraries only", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading deploy's sources: %v", err)
	}
	if files < 10 {
		t.Fatalf("read %d Go files under deploy, want the natsd, ociregistry and buildkitd packages' files", files)
	}
}
