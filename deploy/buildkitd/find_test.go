package buildkitd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile creates path with mode and removes it when the test ends.
func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}

func TestFindBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	besideExe := filepath.Dir(exe)

	tests := []struct {
		name      string
		beside    os.FileMode // mode of a file next to the executable; 0 for none
		inPath    bool        // whether $PATH has one
		wantIn    string      // directory of the path FindBinary returns; "" for an error
		wantError string
	}{
		{name: "next to the executable", beside: 0o755, wantIn: besideExe},
		{name: "next to the executable wins", beside: 0o755, inPath: true, wantIn: besideExe},
		{name: "in PATH", inPath: true, wantIn: "path"},
		{name: "not executable beside, in PATH", beside: 0o644, inPath: true, wantIn: "path"},
		{name: "nowhere", wantError: "make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "kiln-find-binary-" + strings.ReplaceAll(tt.name, " ", "-")
			pathDir := t.TempDir()
			t.Setenv("PATH", pathDir)
			if tt.beside != 0 {
				writeFile(t, filepath.Join(besideExe, name), tt.beside)
			}
			if tt.inPath {
				writeFile(t, filepath.Join(pathDir, name), 0o755)
			}
			want := filepath.Join(besideExe, name)
			if tt.wantIn == "path" {
				want = filepath.Join(pathDir, name)
			}

			got, err := FindBinary(name)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("FindBinary(%q) = %q, %v, want an error containing %q", name, got, err, tt.wantError)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("FindBinary(%q) = %q, %v, want %q", name, got, err, want)
			}
		})
	}
}
