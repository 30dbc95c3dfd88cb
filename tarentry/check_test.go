package tarentry

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestCheckAccepts(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
		want string
	}{
		{"file", tar.Header{Typeflag: tar.TypeReg, Name: "Dockerfile"}, "Dockerfile"},
		{"file with dot slash", tar.Header{Typeflag: tar.TypeReg, Name: "./a//b"}, "a/b"},
		{"dotted names", tar.Header{Typeflag: tar.TypeReg, Name: "a/.../..data"}, "a/.../..data"},
		{"root directory", tar.Header{Typeflag: tar.TypeDir, Name: "./"}, "."},
		{"symlink up, inside", tar.Header{Typeflag: tar.TypeSymlink, Name: "a/up", Linkname: "../b"}, "a/up"},
		{"symlink to itself", tar.Header{Typeflag: tar.TypeSymlink, Name: "a/self", Linkname: "."}, "a/self"},
		{"hard link", tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "a/x"}, "hl"},
		{"pax global header", tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Check(&tt.hdr)
			if err != nil || got != tt.want {
				t.Errorf("Check(%q) = %q, %v, want %q, nil", tt.hdr.Name, got, err, tt.want)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdr  tar.Header
		want string // in the message
	}{
		{"no name", tar.Header{Typeflag: tar.TypeReg}, "no name"},
		{"absolute", tar.Header{Typeflag: tar.TypeReg, Name: "/etc/passwd"}, `"/etc/passwd" has an absolute name`},
		{"dot dot", tar.Header{Typeflag: tar.TypeReg, Name: "a/../../x"}, `"a/../../x" has a ".."`},
		{"dot dot that stays inside", tar.Header{Typeflag: tar.TypeDir, Name: "a/../b/"}, `"a/../b/" has a ".."`},
		{"file at the root", tar.Header{Typeflag: tar.TypeReg, Name: "./"}, "names the context's root"},
		{"symlink out", tar.Header{Typeflag: tar.TypeSymlink, Name: "a/l", Linkname: "../../etc"}, `symbolic link "a/l" to "../../etc"`},
		{"symlink absolute", tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "/etc"}, `symbolic link "l" to "/etc"`},
		{"symlink empty", tar.Header{Typeflag: tar.TypeSymlink, Name: "l"}, `symbolic link "l" to ""`},
		{"hard link out", tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../x"}, `hard link "hl" to "../x"`},
		{"hard link through dot dot", tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "a/../x"}, `hard link "hl" to "a/../x"`},
		{"hard link absolute", tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "/x"}, `hard link "hl" to "/x"`},
		{"hard link empty", tar.Header{Typeflag: tar.TypeLink, Name: "hl"}, `hard link "hl" to ""`},
		{"device", tar.Header{Typeflag: tar.TypeChar, Name: "null"}, `"null" is a device or a fifo`},
		{"fifo", tar.Header{Typeflag: tar.TypeFifo, Name: "p"}, `"p" is a device or a fifo`},
		{"sparse", tar.Header{Typeflag: tar.TypeGNUSparse, Name: "s"}, `"s" has the unsupported tar type "S"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(&tt.hdr)
			if proto.ErrorCode(err) != proto.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check(%q) = %v, want invalid naming %s", tt.hdr.Name, err, tt.want)
			}
		})
	}
}
