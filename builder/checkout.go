package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/kilnbuild/kiln/proto"
	"golang.org/x/sys/unix"
)

// checkoutStats says what a checkout wrote: files and bytes in all, and of the files how many were linked to
// what the file store held already.
type checkoutStats struct {
	files, reused int
	bytes         int64
}

// checkout writes the tree of commit, or its subtree at subdir ("" for the root), into dest, an existing empty
// directory, as git would check it out: regular files with mode 0644 or, when executable, 0755 (whatever the
// umask), symbolic links as links to their target as it is, and directories. A submodule becomes an empty
// directory, with a line in log, as git leaves it without --recurse-submodules; an entry named .git, which git
// refuses to check out, is skipped with a line in log. Files get a modification time derived from their
// content (see blobTime). A subdir that is not a directory of the commit is kind proto.Invalid.
//
// Each file is a hard link to the file store's file of its content and mode when the store has one, and is
// written into dest, and then linked into the store if files.fill is set, when it has not (see fileStore).
//
// Every entry is created by its name alone in its directory, open as a descriptor (mkdirat, openat, linkat,
// symlinkat), and directories are opened without following links, so that no entry of a crafted tree lands
// outside dest.
func checkout(ctx context.Context, store storer.EncodedObjectStorer, files fileStore, commit plumbing.Hash, subdir, dest string, log io.Writer) (checkoutStats, error) {
	c, err := object.GetCommit(store, commit)
	if err != nil {
		return checkoutStats{}, fmt.Errorf("reading commit %s from the git cache: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return checkoutStats{}, fmt.Errorf("reading the tree of commit %s: %w", commit, err)
	}
	if subdir != "" {
		if tree, err = subtree(store, tree, commit, subdir); err != nil {
			return checkoutStats{}, err
		}
	}
	top, err := os.Open(dest)
	if err != nil {
		return checkoutStats{}, fmt.Errorf("checking out commit %s: %w", commit, err)
	}
	defer top.Close()
	w := &treeWriter{store: store, files: files, linked: map[string]bool{}, log: log, buf: make([]byte, 128<<10)}
	err = w.tree(ctx, tree, top, ".")
	return w.stats, err
}

// subtree returns the directory at subdir of tree, or kind proto.Invalid naming it when there is none.
func subtree(store storer.EncodedObjectStorer, tree *object.Tree, commit plumbing.Hash, subdir string) (*object.Tree, error) {
	e, err := tree.FindEntry(subdir)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, proto.Errorf(proto.Invalid, "the directory %q is not in commit %s", subdir, commit)
	}
	if err != nil {
		return nil, fmt.Errorf("looking for %q in commit %s: %w", subdir, commit, err)
	}
	if e.Mode != filemode.Dir {
		return nil, proto.Errorf(proto.Invalid, "%q is not a directory in commit %s", subdir, commit)
	}
	t, err := object.GetTree(store, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("reading %q of commit %s: %w", subdir, commit, err)
	}
	return t, nil
}

// treeWriter writes trees into directories.
type treeWriter struct {
	store storer.EncodedObjectStorer
	files fileStore
	// linked holds the store files this checkout links to, which it does not link twice; noLinks is set once
	// the file system refuses a link, after which every file is a copy.
	linked  map[string]bool
	noLinks bool
	log     io.Writer
	buf     []byte
	stats   checkoutStats
}

// tree writes the entries of t into the directory dir, which is name relative to the checkout's root.
func (w *treeWriter) tree(ctx context.Context, t *object.Tree, dir *os.File, name string) error {
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return proto.Errorf(proto.Invalid, "the commit has an entry %q in %q, which is not a valid file name", e.Name, name)
		}
		rel := path.Join(name, e.Name)
		if strings.EqualFold(e.Name, ".git") {
			fmt.Fprintf(w.log, "Skipping %s: git does not check out an entry named .git\n", rel)
			continue
		}
		var err error
		switch e.Mode {
		case filemode.Dir:
			err = w.dir(ctx, dir, rel, e.Name, e.Hash)
		case filemode.Regular, filemode.Deprecated:
			err = w.file(dir, rel, e.Name, e.Hash, 0o644)
		case filemode.Executable:
			err = w.file(dir, rel, e.Name, e.Hash, 0o755)
		case filemode.Symlink:
			err = w.symlink(dir, rel, e.Name, e.Hash)
		case filemode.Submodule:
			fmt.Fprintf(w.log, "Skipping submodule %s (commit %s): submodules are not fetched\n", rel, short(e.Hash))
			var sub *os.File
			if sub, err = w.mkdir(dir, rel, e.Name); err == nil {
				sub.Close()
			}
		default:
			return proto.Errorf(proto.Invalid, "the commit has an entry %q of unsupported mode %s", rel, e.Mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dir creates the directory base in dir, which is rel from the root, and writes the tree h into it.
func (w *treeWriter) dir(ctx context.Context, dir *os.File, rel, base string, h plumbing.Hash) error {
	t, err := object.GetTree(w.store, h)
	if err != nil {
		return fmt.Errorf("reading the tree of %s: %w", rel, err)
	}
	sub, err := w.mkdir(dir, rel, base)
	if err != nil {
		return err
	}
	defer sub.Close()
	return w.tree(ctx, t, sub, rel)
}

// mkdir creates the directory base, mode 0755, in dir, and opens it.
func (w *treeWriter) mkdir(dir *os.File, rel, base string) (*os.File, error) {
	if err := unix.Mkdirat(int(dir.Fd()), base, 0o755); err != nil {
		return nil, checkoutError(rel, err)
	}
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, checkoutError(rel, err)
	}
	sub := os.NewFile(uintptr(fd), rel)
	if err := sub.Chmod(0o755); err != nil {
		sub.Close()
		return nil, checkoutError(rel, err)
	}
	return sub, nil
}

// file checks out the blob h as the file base, mode perm, in dir: a link to the file store's file of it when
// there is one this checkout does not link to yet, or else a copy, which then goes into the store.
func (w *treeWriter) file(dir *os.File, rel, base string, h plumbing.Hash, perm fs.FileMode) error {
	p := w.files.path(h, perm)
	store := !w.noLinks && !w.linked[p]
	if store {
		if fi, ok := w.files.fresh(p, h, perm); ok {
			err := w.files.link(p, dir, base)
			switch {
			case err == nil:
				w.linked[p] = true
				w.stats.files++
				w.stats.reused++
				w.stats.bytes += fi.Size()
				return nil
			case errors.Is(err, syscall.EMLINK):
				store = false // that file has all the links it may have: this one gets a copy of its own
			case cannotLink(err):
				w.noLinks, store = true, false
			default:
				return checkoutError(rel, err)
			}
		}
	}
	if err := w.write(dir, rel, base, h, perm); err != nil {
		return err
	}
	if store && w.files.fill {
		// The store is a cache: a file it cannot take is still checked out.
		if err := w.files.adopt(dir, base, p); err == nil {
			w.linked[p] = true
		} else if cannotLink(err) {
			w.noLinks = true
		}
	}
	return nil
}

// write writes the blob h to the new file base, mode perm, in dir.
func (w *treeWriter) write(dir *os.File, rel, base string, h plumbing.Hash, perm fs.FileMode) error {
	blob, err := object.GetBlob(w.store, h)
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", rel, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", rel, err)
	}
	defer r.Close()
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
	if err != nil {
		return checkoutError(rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, r, w.buf)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		t := unix.NsecToTimeval(blobTime(h).UnixNano())
		err = unix.Futimes(fd, []unix.Timeval{t, t})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checking out %s: %w", rel, err)
	}
	w.stats.files++
	w.stats.bytes += n
	return nil
}

// symlink creates the symbolic link base in dir, to the target held in the blob h.
func (w *treeWriter) symlink(dir *os.File, rel, base string, h plumbing.Hash) error {
	blob, err := object.GetBlob(w.store, h)
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", rel, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", rel, err)
	}
	defer r.Close()
	target, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", rel, err)
	}
	if err := unix.Symlinkat(string(target), int(dir.Fd()), base); err != nil {
		return checkoutError(rel, err)
	}
	w.stats.files++
	return nil
}

// checkoutError is the error for an entry that could not be created: kind proto.Invalid when a crafted tree
// names an entry twice, a plain error otherwise.
func checkoutError(rel string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return proto.Errorf(proto.Invalid, "the commit has an entry %q that cannot be checked out: %w", rel, err)
	}
	return fmt.Errorf("checking out %s: %w", rel, err)
}
