package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportArrows keeps the architecture true: trigger and scheduler never import each other, builder, store
// and deploy import nothing of Kiln's but proto, proto imports nothing of Kiln's, and only cmd wires everything.
// A package's code and its own tests are held to the arrows; an external test package (package x_test), like
// e2e, may start the real parts it is tested with (trigger/webhook's tests run the embedded registry).
func TestImportArrows(t *testing.T) {
	const mod = "github.com/kilnbuild/kiln/"
	allowed := map[string][]string{ // a package's top-level folder → the folders of Kiln it may import
		"proto":     {},
		"tarentry":  {"proto"}, // which tar entries a build context may hold: the API's check and the worker's extraction
		"builder":   {"proto", "tarentry"},
		"store":     {"proto"},
		"deploy":    {"proto"},
		"taskfile":  {"proto"},
		"trigger":   {"proto", "store", "taskfile", "tarentry"},
		"scheduler": {"proto", "builder", "store", "taskfile", "tarentry"},
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		top, _, _ := strings.Cut(pkg, "/")
		may, ruled := allowed[top]
		if !ruled {
			continue // cmd and e2e wire and test everything
		}
		checked++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			impTop, _, _ := strings.Cut(strings.TrimPrefix(imp, mod), "/")
			if impTop == top || contains(may, impTop) {
				continue
			}
			t.Errorf("%s imports %s: %s may import only %v of Kiln's", pkg, strings.TrimPrefix(imp, mod), top, may)
		}
	}
	if checked < 8 {
		t.Errorf("checked %d packages, want at least the eight ruled folders: is go list finding them?", checked)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
