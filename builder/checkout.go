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

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/kilnbuild/kiln/proto"
)

// checkoutStats says what a checkout wrote.
type checkoutStats struct {
	files int
	bytes int64
}

// checkout writes the tree of commit, or its subtree at subdir ("" for the root), into dest, an existing empty
// directory, as git would check it out: regular files with mode 0644 or, when executable, 0755 (whatever the
// umask), symbolic links as links to their target as it is, and directories. A submodule becomes an empty
// directory, with a line in log, as git leaves it without --recurse-submodules, and so does an entry named .git,
// which git refuses to check out. Every write goes through an os.Root on dest, so that no entry of a crafted
// tree lands outside it. A subdir that is not a directory of the commit is kind proto.Invalid.
func checkout(ctx context.Context, store storer.EncodedObjectStorer, commit plumbing.Hash, subdir, dest string, log io.Writer) (checkoutStats, error) {
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
	root, err := os.OpenRoot(dest)
	if err != nil {
		return checkoutStats{}, fmt.Errorf("checking out commit %s: %w", commit, err)
	}
	defer root.Close()
	w := &treeWriter{store: store, root: root, log: log, buf: make([]byte, 128<<10)}
	if err := w.tree(ctx, tree, "."); err != nil {
		return w.stats, err
	}
	return w.stats, nil
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

// treeWriter writes trees below root.
type treeWriter struct {
	store storer.EncodedObjectStorer
	root  *os.Root
	log   io.Writer
	buf   []byte
	stats checkoutStats
}

// tree writes the entries of t into the directory dir (relative to the root), which exists.
func (w *treeWriter) tree(ctx context.Context, t *object.Tree, dir string) error {
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return proto.Errorf(proto.Invalid, "the commit has an entry %q in %q, which is not a valid file name", e.Name, dir)
		}
		name := path.Join(dir, e.Name)
		if strings.EqualFold(e.Name, ".git") {
			fmt.Fprintf(w.log, "Skipping %s: git does not check out an entry named .git\n", name)
			continue
		}
		var err error
		switch e.Mode {
		case filemode.Dir:
			err = w.dir(ctx, name, e.Hash)
		case filemode.Regular, filemode.Deprecated:
			err = w.file(name, e.Hash, 0o644)
		case filemode.Executable:
			err = w.file(name, e.Hash, 0o755)
		case filemode.Symlink:
			err = w.symlink(name, e.Hash)
		case filemode.Submodule:
			fmt.Fprintf(w.log, "Skipping submodule %s (commit %s): submodules are not fetched\n", name, short(e.Hash))
			err = w.mkdir(name)
		default:
			return proto.Errorf(proto.Invalid, "the commit has an entry %q of unsupported mode %s", name, e.Mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// dir creates the directory name and writes the tree h into it.
func (w *treeWriter) dir(ctx context.Context, name string, h plumbing.Hash) error {
	t, err := object.GetTree(w.store, h)
	if err != nil {
		return fmt.Errorf("reading the tree of %s: %w", name, err)
	}
	if err := w.mkdir(name); err != nil {
		return err
	}
	return w.tree(ctx, t, name)
}

// mkdir creates the directory name with mode 0755.
func (w *treeWriter) mkdir(name string) error {
	if err := w.root.Mkdir(name, 0o755); err != nil {
		return checkoutError(name, err)
	}
	if err := w.root.Chmod(name, 0o755); err != nil {
		return checkoutError(name, err)
	}
	return nil
}

// file writes the blob h to the new file name with mode perm.
func (w *treeWriter) file(name string, h plumbing.Hash, perm fs.FileMode) error {
	blob, err := object.GetBlob(w.store, h)
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", name, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", name, err)
	}
	defer r.Close()
	f, err := w.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return checkoutError(name, err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, r, w.buf)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checking out %s: %w", name, err)
	}
	w.stats.files++
	w.stats.bytes += n
	return nil
}

// symlink creates the symbolic link name to the target held in the blob h.
func (w *treeWriter) symlink(name string, h plumbing.Hash) error {
	blob, err := object.GetBlob(w.store, h)
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", name, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", name, err)
	}
	defer r.Close()
	target, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return fmt.Errorf("reading %s from the git cache: %w", name, err)
	}
	if err := w.root.Symlink(string(target), name); err != nil {
		return checkoutError(name, err)
	}
	w.stats.files++
	return nil
}

// checkoutError is the error for an entry that could not be written: kind proto.Invalid when a crafted tree
// names an entry twice, a plain error otherwise.
func checkoutError(name string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return proto.Errorf(proto.Invalid, "the commit has an entry %q that cannot be checked out: %w", name, err)
	}
	return fmt.Errorf("checking out %s: %w", name, err)
}
