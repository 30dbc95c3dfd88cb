package api

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/kilnbuild/kiln/proto"
)

// PackContext writes dir as a gzip-compressed tar to w, as docker build sends a context.
//
// It follows dir/.dockerignore by docker's rules, "!" exceptions included, and never descends into an
// excluded directory that no exception can reach into. The Dockerfile (a path relative to dir; "" means
// "Dockerfile") and .dockerignore are sent even when ignored, as docker does, and .git is never sent. Entries
// come in sorted order; symlinks stay symlinks; modes and mtimes (to the nanosecond, in PAX headers) are kept,
// with uid and gid 0 and no user names, so that the same tree always packs to the same bytes.
func PackContext(ctx context.Context, dir, dockerfile string, w io.Writer) error {
	root, err := filepath.EvalSymlinks(dir) // the walk would not go into a root that is a symlink
	if err != nil {
		return proto.Errorf(proto.Invalid, "the build context %s is not a directory: %v", dir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return proto.Errorf(proto.Invalid, "the build context %s is not a directory", dir)
	}
	df, err := dockerfileIn(root, dockerfile)
	if err != nil {
		return err
	}
	pm, err := ignoreMatcher(root, df)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed) // contexts are mostly sources: speed over size
	if err != nil {
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	p := &packer{root: root, pm: pm, tw: tar.NewWriter(zw)}
	if err := filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return p.visit(full, d)
	}); err != nil {
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	if err := p.tw.Close(); err != nil {
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	return nil
}

// dockerfileIn returns the slash path of the Dockerfile inside dir. A Dockerfile that is not there is not an
// error here: the run fails with BuildKit's own message, as every other Dockerfile problem does.
func dockerfileIn(dir, dockerfile string) (string, error) {
	if dockerfile == "" {
		dockerfile = defaultDockerfile
	}
	rel := dockerfile
	if filepath.IsAbs(dockerfile) {
		abs, err := filepath.Abs(dir)
		if err == nil {
			rel, err = filepath.Rel(abs, dockerfile)
		}
		if err != nil {
			rel = dockerfile
		}
	}
	if !filepath.IsLocal(rel) {
		return "", proto.Errorf(proto.Invalid, "the Dockerfile %s is not inside the build context %s", dockerfile, dir)
	}
	return filepath.ToSlash(filepath.Clean(rel)), nil
}

// ignoreMatcher reads dir/.dockerignore, if there is one, and adds the exceptions docker adds so that the
// Dockerfile df and .dockerignore itself are always sent.
func ignoreMatcher(dir, df string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	defer f.Close()
	excludes, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	for _, keep := range []string{".dockerignore", df} {
		if ignored, _ := patternmatcher.MatchesOrParentMatches(keep, excludes); ignored {
			excludes = append(excludes, "!"+keep)
		}
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "%s has a bad pattern: %v", f.Name(), err)
	}
	return pm, nil
}

// packer writes the entries of a walk of root that .dockerignore lets through.
type packer struct {
	root string
	pm   *patternmatcher.PatternMatcher
	tw   *tar.Writer
	// dirs and matches are the directories above the current entry and how each matched the patterns, so
	// that an entry is matched against its parent's results as docker does.
	dirs    []string
	matches []patternmatcher.MatchInfo
}

// visit packs one entry of the walk, or skips it, or skips the directory it is.
func (p *packer) visit(full string, d fs.DirEntry) error {
	rel, err := filepath.Rel(p.root, full)
	if err != nil || rel == "." {
		return err
	}
	if d.Name() == ".git" {
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	}
	excluded, err := p.excluded(rel, d.IsDir())
	if err != nil {
		return err
	}
	if excluded {
		if d.IsDir() && !p.exceptionInside(rel) {
			return filepath.SkipDir
		}
		return nil
	}
	return p.add(full, rel, d)
}

// excluded reports whether .dockerignore leaves rel out.
func (p *packer) excluded(rel string, isDir bool) (bool, error) {
	for len(p.dirs) > 0 && !strings.HasPrefix(rel, p.dirs[len(p.dirs)-1]+string(filepath.Separator)) {
		p.dirs, p.matches = p.dirs[:len(p.dirs)-1], p.matches[:len(p.matches)-1]
	}
	var parent patternmatcher.MatchInfo
	if len(p.matches) > 0 {
		parent = p.matches[len(p.matches)-1]
	}
	excluded, info, err := p.pm.MatchesUsingParentResults(rel, parent)
	if err != nil {
		return false, proto.Errorf(proto.Invalid, "matching %s against .dockerignore: %v", rel, err)
	}
	if isDir {
		p.dirs, p.matches = append(p.dirs, rel), append(p.matches, info)
	}
	return excluded, nil
}

// exceptionInside reports whether some "!" exception may match a path inside the excluded directory dir, so
// that the walk must go in. It compares the pattern element by element with dir: it says yes unless an
// element cannot match.
func (p *packer) exceptionInside(dir string) bool {
	dirEls := strings.Split(filepath.ToSlash(dir), "/")
	for _, pat := range p.pm.Patterns() {
		if !pat.Exclusion() {
			continue
		}
		patEls := strings.Split(filepath.ToSlash(pat.String()), "/")
		may := true
		for i := 0; i < len(dirEls) && i < len(patEls) && may; i++ {
			if strings.Contains(patEls[i], "**") {
				break // it may match any number of directories
			}
			ok, err := path.Match(patEls[i], dirEls[i])
			may = ok || err != nil
		}
		if may {
			return true
		}
	}
	return false
}

// add writes the entry full, named rel in the archive.
func (p *packer) add(full, rel string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	var link string
	switch mode := fi.Mode(); {
	case mode&fs.ModeSymlink != 0:
		if link, err = os.Readlink(full); err != nil {
			return err
		}
	case mode&fs.ModeSocket != 0:
		return nil // a socket is no file to send; docker leaves them out too
	case !mode.IsRegular() && !mode.IsDir():
		return proto.Errorf(proto.Invalid,
			"%s is a device or a fifo, which a build context cannot hold: list it in .dockerignore", full)
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	// The whole time, not USTAR's seconds: the run's copy of the context keeps it, and a build tool that tells
	// files apart by size and time (BuildKit does, within a context) has a nanosecond to go by, not a second.
	hdr.Format = tar.FormatPAX
	hdr.ModTime = fi.ModTime()
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := p.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(p.tw, f); err != nil {
		return fmt.Errorf("adding %s: %w", rel, err)
	}
	return nil
}
