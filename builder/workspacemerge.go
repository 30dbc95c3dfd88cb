package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"google.golang.org/grpc"
)

// workspaceTarget receives the workspace an Exec's command left, from BuildKit's local exporter, and merges it
// into the host directory (see workspaceSync).
//
// The client's own target of the local exporter either leaves deleted files in place (mode=copy) or sends every
// file whether it changed or not (mode=delete): seconds of copying at every step for a workspace of 100 MB in
// 5,000 files, against less than a tenth of a second here when little changed, only the changed files' data
// crossing.
// Ownership is kept as the command left it when this process runs as root, as on a docker volume; otherwise
// every file is this process's, as the client's target does.
type workspaceTarget struct {
	w *workspaceSync
}

func (t workspaceTarget) Register(s *grpc.Server) {
	filesync.RegisterFileSendServer(s, t)
}

// DiffCopy receives one export.
func (t workspaceTarget) DiffCopy(stream filesync.FileSend_DiffCopyServer) error {
	if err := t.w.receive(stream.Context(), stream); err != nil {
		return fmt.Errorf("copying back the workspace: %w", err)
	}
	return nil
}

// receive merges the tree that stream brings into the host directory.
//
// fsutil's receiver does the transfer in its merge mode, which writes whatever the filter lets through and deletes
// nothing; the filter lets through what changed since the send. The deletions are made once everything else is
// written, before the receiver tells the sender it is done (FIN): the export, and so the Exec, ends only then.
func (w *workspaceSync) receive(ctx context.Context, stream fsutil.Stream) error {
	defer workspaceLocks.lock(w.dir, false)()
	w.mu.Lock()
	sent := w.sent
	w.mu.Unlock()
	if sent == nil {
		return errors.New("the workspace was never sent to buildkitd")
	}
	root, err := os.OpenRoot(w.dir)
	if err != nil {
		return err
	}
	r := fsutil.NewRoot(root)
	defer r.Close()
	m := &merge{root: root, sent: sent, seen: map[string]bool{}, owner: os.Getuid() == 0,
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	s := &mergeStream{Stream: stream, m: m}
	err = fsutil.ReceiveRoot(ctx, s, r, fsutil.ReceiveOpt{Merge: true, Filter: m.filter})
	if m.err != nil {
		return m.err
	}
	if s.done {
		return nil // the sender may close the stream before the receiver reads its end: too late to matter
	}
	return err
}

// mergeStream is the stream of a receive, which finishes the merge when the receiver says it is done, and tells
// the sender of the merge's failure instead if it failed: the export, and so the Exec, fails with it.
type mergeStream struct {
	fsutil.Stream
	m    *merge
	done bool // the receiver said it is done, and the deletions are made
}

func (s *mergeStream) SendMsg(msg any) error {
	if p, ok := msg.(*fstypes.Packet); ok && p.Type == fstypes.PACKET_FIN {
		if s.m.err == nil {
			s.m.err = s.m.finish()
		}
		if s.m.err != nil {
			return s.Stream.SendMsg(&fstypes.Packet{Type: fstypes.PACKET_ERR, Data: []byte(s.m.err.Error())})
		}
		s.done = true
	}
	return s.Stream.SendMsg(msg)
}

// merge decides, path by path, what of a tree received is written to the host directory root, and then deletes
// what the tree no longer has. fsutil calls filter for every path received, in order, from one goroutine, before
// it writes the path.
type merge struct {
	root     *os.Root
	sent     map[string]*fstypes.Stat
	owner    bool   // whether the received ownership is kept: this process runs as root
	uid, gid uint32 // this process's, for everything when !owner

	seen   map[string]bool // the paths received
	remade []remadeDir
	err    error // the first failure of filter
}

// remadeDir is a directory the command did not change, made again because the host no longer had it: fsutil's
// receiver needs the directory of every path it is given, written or not.
type remadeDir struct {
	path  string
	aside string // where what the host had there instead was moved, if anything
}

// filter reports whether the path p received, of metadata st, is to be written: whether the command made or
// changed it.
func (m *merge) filter(p string, st *fstypes.Stat) bool {
	if !m.owner {
		st.Uid, st.Gid = m.uid, m.gid
	}
	m.seen[p] = true
	old, ok := m.sent[p]
	if !ok || !sameStat(old, st, m.owner) {
		return true
	}
	if !st.IsDir() {
		return false
	}
	fi, err := m.root.Lstat(p)
	if err == nil && fi.IsDir() {
		return false
	}
	// Another Exec deleted the directory, or put something else in its place, meanwhile.
	if n := len(m.remade); n > 0 && m.remade[n-1].path == p {
		return true // filter sees each path twice
	}
	d := remadeDir{path: p}
	if err == nil {
		d.aside = filepath.Join(filepath.Dir(p), ".kiln-aside-"+identity.NewID())
		if err := m.root.Rename(p, d.aside); err != nil && m.err == nil {
			m.err = err
		}
	}
	m.remade = append(m.remade, d)
	return true
}

// finish makes the deletions of the command, and undoes what filter remade for nothing.
func (m *merge) finish() error {
	if err := m.deleteRemoved(); err != nil {
		return err
	}
	for _, d := range slices.Backward(m.remade) {
		err := m.root.Remove(d.path)
		switch {
		case err == nil && d.aside != "":
			err = m.root.Rename(d.aside, d.path)
		case err == nil:
		case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
			// The command wrote in it: it replaces what the host had there.
			err = nil
			if d.aside != "" {
				err = m.root.RemoveAll(d.aside)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteRemoved deletes from the host what was sent and not received, where the host still has it as it was
// sent.
func (m *merge) deleteRemoved() error {
	var gone []string
	for p := range m.sent {
		if !m.seen[p] {
			gone = append(gone, p)
		}
	}
	slices.Sort(gone)
	slices.Reverse(gone) // what is in a directory before the directory
	for _, p := range gone {
		fi, err := m.root.Lstat(p)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return err
		}
		old := m.sent[p]
		if old.IsDir() {
			if !fi.IsDir() {
				continue
			}
			// A directory that another Exec wrote in meanwhile is not empty, and is kept.
			if err := m.root.Remove(p); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
				return err
			}
			continue
		}
		same, err := m.unchanged(p, old, fi)
		if err != nil {
			return err
		}
		if !same {
			continue // changed on the host meanwhile: another Exec's change wins over this deletion
		}
		if err := m.root.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// unchanged reports whether the host's file p, of info fi, is still as it was sent, of metadata old.
func (m *merge) unchanged(p string, old *fstypes.Stat, fi os.FileInfo) (bool, error) {
	if os.FileMode(old.Mode)&os.ModeSymlink == 0 && old.Linkname != "" {
		// A hard link is sent as a link to the first path of its file, without its size: that path has them.
		first, ok := m.sent[old.Linkname]
		if !ok {
			return false, nil
		}
		old = first
	}
	now := &fstypes.Stat{
		Mode:    uint32(fi.Mode()) &^ uint32(os.ModeSocket),
		Size:    fi.Size(),
		ModTime: fi.ModTime().UnixNano(),
	}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		now.Uid, now.Gid = sys.Uid, sys.Gid
		rdev := uint64(sys.Rdev) // encoded as fsutil does
		now.Devmajor, now.Devminor = int64((rdev>>8)&0xfff), int64((rdev&0xff)|((rdev>>12)&0xfff00))
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		link, err := m.root.Readlink(p)
		if err != nil {
			return false, err
		}
		now.Linkname = link
	}
	return sameStat(old, now, m.owner), nil
}

// sameStat reports whether a and b have the same metadata, as fsutil's DiffMetadata compares them: type, mode,
// link target and device always, ownership when owner, size and modification time except for directories.
func sameStat(a, b *fstypes.Stat, owner bool) bool {
	if a.Mode != b.Mode || a.Linkname != b.Linkname || a.Devmajor != b.Devmajor || a.Devminor != b.Devminor {
		return false
	}
	if owner && (a.Uid != b.Uid || a.Gid != b.Gid) {
		return false
	}
	return a.IsDir() || (a.Size == b.Size && a.ModTime == b.ModTime)
}

// workspaceLocks are the locks of the workspace directories of this process's Execs.
var workspaceLocks dirLocks

// dirLocks hands out one read-write lock per directory, forgotten once no one holds or waits for it.
type dirLocks struct {
	mu    sync.Mutex
	locks map[string]*dirLock
}

type dirLock struct {
	sync.RWMutex
	users int
}

// lock waits for dir's lock, shared or exclusive, and returns how to unlock it.
func (l *dirLocks) lock(dir string, shared bool) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*dirLock{}
	}
	d := l.locks[dir]
	if d == nil {
		d = &dirLock{}
		l.locks[dir] = d
	}
	d.users++
	l.mu.Unlock()
	if shared {
		d.RLock()
	} else {
		d.Lock()
	}
	return func() {
		if shared {
			d.RUnlock()
		} else {
			d.Unlock()
		}
		l.mu.Lock()
		if d.users--; d.users == 0 {
			delete(l.locks, dir)
		}
		l.mu.Unlock()
	}
}
