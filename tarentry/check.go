package tarentry

import (
	"archive/tar"
	"path"
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/proto"
)

// Check returns hdr's name cleaned (slash-separated, relative, "." for the context's root), or a proto.Invalid
// error naming the entry when a build context must not hold it:
//   - a name that is empty, absolute or has a ".." element, or a root "." that is not a directory;
//   - a symbolic link whose target is empty, absolute, or outside the context once resolved from the link's
//     directory;
//   - a hard link whose target is empty, absolute or has a ".." element (a hard link's target is another entry
//     of the archive, named from its root, so it needs none);
//   - a device, a fifo, or any type other than a file, a directory, the two links and a pax global header.
//
// A pax global header (git archive writes one) holds no file: Check accepts it whatever its name, with the name
// "", and callers skip it. Check says nothing of a hard link's target being an earlier entry: only the
// extraction, which has seen them, can tell.
func Check(hdr *tar.Header) (string, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return "", nil
	}
	raw := hdr.Name
	switch {
	case raw == "":
		return "", proto.Errorf(proto.Invalid, "the build context has an entry with no name")
	case path.IsAbs(raw):
		return "", proto.Errorf(proto.Invalid, "the build context entry %q has an absolute name", raw)
	case hasDotDot(raw):
		return "", proto.Errorf(proto.Invalid, "the build context entry %q has a \"..\" in its name", raw)
	}
	name := path.Clean(raw)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return name, nil
	case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		if name == "." {
			return "", proto.Errorf(proto.Invalid,
				"the build context entry %q is not a directory but names the context's root", raw)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return "", proto.Errorf(proto.Invalid,
			"the build context entry %q is a device or a fifo, which a build context cannot hold", raw)
	default:
		return "", proto.Errorf(proto.Invalid, "the build context entry %q has the unsupported tar type %q",
			raw, string(hdr.Typeflag))
	}
	switch t := hdr.Linkname; hdr.Typeflag {
	case tar.TypeSymlink:
		// A relative target is resolved from the link's directory; an absolute one leaves the context when the
		// archive is unpacked anywhere but at the root.
		if t == "" || path.IsAbs(t) || !local(path.Join(path.Dir(name), t)) {
			return "", proto.Errorf(proto.Invalid,
				"the build context has a symbolic link %q to %q, which points outside the context", raw, t)
		}
	case tar.TypeLink:
		if t == "" || path.IsAbs(t) || hasDotDot(t) {
			return "", proto.Errorf(proto.Invalid,
				"the build context has a hard link %q to %q: a hard link names another entry of the archive, "+
					"from its root, without \"..\"", raw, t)
		}
	}
	return name, nil
}

// LinkTarget returns the cleaned name of the entry a hard link hdr, which Check accepted, points to.
func LinkTarget(hdr *tar.Header) string {
	return path.Clean(hdr.Linkname)
}

// hasDotDot reports whether a slash-separated name has a ".." element.
func hasDotDot(name string) bool {
	return slices.Contains(strings.Split(name, "/"), "..")
}

// local reports whether a clean slash-separated path stays below the directory it is relative to.
func local(clean string) bool {
	return clean != ".." && !strings.HasPrefix(clean, "../") && !path.IsAbs(clean)
}
