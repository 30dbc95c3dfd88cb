package builder

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
)

// fileStore keeps, under dir, one file for each blob and mode that a checkout wrote, so that the next checkout
// of the same content hard-links it instead of writing it again. Creating a file costs far more than linking
// one (on the machine the benchmark ran on, 5,000 empty files took 30 to 40 times as long as 5,000 links), and
// most files of a commit are the previous commit's, so a warm checkout is mostly links. A checkout writes a file
// it does not find in the store into its own directory, then, if fill is set, links it into the store.
//
// A file of the store is shared by every checkout linked to it, so it must never change. Nothing of Kiln writes
// into a build context, but a store file is checked before every link all the same: it must still be a regular
// file with the mode and the modification time derived from its blob's hash (see blobTime), which a write or a
// chmod through any link would have changed. One that is not is replaced by the next checkout's copy (renamed
// over it: the checkouts that hold the old one keep it). Two entries of one checkout never share a file, since
// BuildKit would send them as hard links into the image.
//
// Nothing is removed from the store; it is safe for concurrent use by any number of processes, since every
// change to it is a link or a rename.
type fileStore struct {
	dir string
	// fill is whether a checkout puts the files it wrote into the store. Linking them in costs about as much
	// as writing them on a slow file system, which the first build of a repository, perhaps its only one, is
	// spared.
	fill bool
}

// path is where the store keeps blob h with mode perm (0644 or 0755).
func (s fileStore) path(h plumbing.Hash, perm fs.FileMode) string {
	hex := h.String()
	suffix := ".r"
	if perm&0o111 != 0 {
		suffix = ".x"
	}
	return filepath.Join(s.dir, hex[:2], hex[2:]+suffix)
}

// blobTime is the modification time of every checked-out file of blob h (git keeps none): a time from 2000 to
// 2017 (never before 1980, which zip refuses), to the microsecond, derived from h, so that two different blobs
// almost surely never share one. BuildKit tells a changed file of a context from an unchanged one by its size
// and modification time, so equal times must mean equal content, and they do.
func blobTime(h plumbing.Hash) time.Time {
	sec := int64(binary.BigEndian.Uint32(h[0:4]) % (1 << 29))
	usec := int64(binary.BigEndian.Uint32(h[4:8]) % 1e6)
	return time.Unix(946684800+sec, usec*1000) // from 2000-01-01 UTC
}

// fresh returns the store's file of blob h with mode perm, at p, if it is there untouched since it was written.
func (s fileStore) fresh(p string, h plumbing.Hash, perm fs.FileMode) (fs.FileInfo, bool) {
	fi, err := os.Lstat(p)
	ok := err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == perm && fi.ModTime().Equal(blobTime(h))
	return fi, ok
}

// link makes name, in the directory open as dir, a hard link to the store file p.
func (s fileStore) link(p string, dir *os.File, name string) error {
	return unix.Linkat(unix.AT_FDCWD, p, int(dir.Fd()), name, 0)
}

// adopt links the file name, in the directory open as dir, into the store at p, in place of whatever is there.
func (s fileStore) adopt(dir *os.File, name, p string) error {
	err := unix.Linkat(int(dir.Fd()), name, unix.AT_FDCWD, p, 0)
	if errors.Is(err, syscall.ENOENT) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		err = unix.Linkat(int(dir.Fd()), name, unix.AT_FDCWD, p, 0)
	}
	if !errors.Is(err, syscall.EEXIST) {
		return err
	}
	// A stale file, or one another checkout put there since: replace it.
	tmp := p + ".tmp-" + rand.Text()
	if err := unix.Linkat(int(dir.Fd()), name, unix.AT_FDCWD, tmp, 0); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// cannotLink reports whether a failed link means that the checkout should write copies instead: the store is
// on another file system than the checkout, or the file system does not allow links.
func cannotLink(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP)
}
