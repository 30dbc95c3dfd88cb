package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	gofs "io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"google.golang.org/grpc"
)

// workspaceSource is the name the session gives the workspace under for BuildKit's local source.
const workspaceSource = "workspace"

// workspace is the state an Exec mounts at /workspace: a copy, inside buildkitd, of the host directory of key
// (workspaceSync.key) as the session of sessionID sends it.
//
// The copy is what keeps the transfer incremental. BuildKit sends only what changed since its last transfer of
// the same directory (the same key), into a snapshot it keeps for that; but a snapshot that an exec writes on
// top of is sealed, and the next transfer would start from nothing and send every file. The copy is made on
// buildkitd's disk, cached while the directory does not change, and is what the command writes on.
//
// BuildKit keys that cache by the files' content, not their times: a copy cached from a directory with the same
// content and other modification times would come back with the old times, and the copy back would take every
// file for changed by the command. stamp, the directory's metadata as the Exec starts, goes into the copy's
// definition (as a pattern no file can match), so that the cached copy is only reused for the same metadata.
func workspace(sessionID, key, stamp string) llb.State {
	local := llb.Local(workspaceSource,
		llb.SessionID(sessionID),
		llb.SharedKeyHint(key),
		llb.WithCustomName("send the workspace"))
	return llb.Scratch().File(
		llb.Copy(local, "/", "/", &llb.CopyInfo{CopyDirContentsOnly: true,
			ExcludePatterns: []string{".kiln-workspace-stamp-" + stamp}}),
		llb.WithCustomName("copy the workspace"))
}

// stamp is a digest of the metadata of every path of the workspace (type, mode, size, modification time, link
// target), read while no copy back writes to it.
func (w *workspaceSync) stamp() (string, error) {
	defer workspaceLocks.lock(w.dir, true)()
	h := sha256.New()
	err := filepath.WalkDir(w.dir, func(p string, d gofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&gofs.ModeSymlink != 0 {
			target, _ = os.Readlink(p)
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%s\n", p[len(w.dir):], fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), target)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// workspaceSync is the workspace of one Exec on its way into buildkitd and back: it sends the host directory
// dir, remembers what it sent, and copies back only what the command changed of that.
//
// The copy back is a merge, so that Execs running at once on one workspace, as a task file's parallel steps do
// on a shared volume, keep each other's writes. Of the tree the command left, a path whose metadata (type,
// mode, size, modification time, link target, and ownership when this process runs as root) is the same as
// what was sent is not touched, and its data is not sent; a path that is new or changed is written, whatever
// the host has there now, so that when two commands change one file the one that ends last wins; a path that
// was sent and is no longer there is deleted from the host only if the host still has it as it was sent (a
// directory only once it is empty). What the host has that was never sent, written by another Exec meanwhile,
// is kept.
//
// The Execs of one process take turns on a directory (workspaceLocks): a copy back has it to itself, and a
// send never reads a file that a copy back is halfway through writing.
type workspaceSync struct {
	dir  string                  // the host directory, its symlinks resolved
	key  string                  // what BuildKit keeps its copy of dir under (workspaceKey)
	send filesync.FileSyncServer // BuildKit's sender, reading through sentFS

	mu   sync.Mutex
	sent map[string]*fstypes.Stat // what the last whole transfer sent, by path; nil before one
}

// newWorkspaceSync returns the sync of the host directory dir.
func newWorkspaceSync(dir string) (*workspaceSync, error) {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, err
	}
	key, err := workspaceKey(dir)
	if err != nil {
		return nil, err
	}
	w := &workspaceSync{dir: dir, key: key}
	p := filesync.NewFSSyncProvider(filesync.StaticDirSource{workspaceSource: sentFS{FS: fs, w: w}})
	send, ok := p.(filesync.FileSyncServer)
	if !ok {
		return nil, fmt.Errorf("BuildKit's file sync provider is a %T, not a FileSyncServer", p)
	}
	w.send = send
	return w, nil
}

// attachables are what the session offers buildkitd of the workspace: the source of BuildKit's local source and
// the target of its local exporter.
func (w *workspaceSync) attachables() []session.Attachable {
	return []session.Attachable{workspaceSender{w}, workspaceTarget{w}}
}

// sentFS is the workspace's directory as BuildKit's sender reads it, remembering each path's metadata as the
// sender gets it.
type sentFS struct {
	fsutil.FS
	w *workspaceSync
}

func (s sentFS) Walk(ctx context.Context, target string, fn gofs.WalkDirFunc) error {
	sent := map[string]*fstypes.Stat{}
	err := s.FS.Walk(ctx, target, func(p string, entry gofs.DirEntry, err error) error {
		if err == nil && entry != nil {
			fi, err := entry.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*fstypes.Stat); ok {
				sent[p] = st.Clone()
			}
		}
		return fn(p, entry, err)
	})
	if err == nil {
		s.w.mu.Lock()
		s.w.sent = sent
		s.w.mu.Unlock()
	}
	return err
}

// workspaceSender serves BuildKit's local source with the workspace, sharing the directory's lock with the other
// sends while it reads.
type workspaceSender struct {
	w *workspaceSync
}

func (s workspaceSender) Register(srv *grpc.Server) {
	filesync.RegisterFileSyncServer(srv, s)
}

func (s workspaceSender) DiffCopy(stream filesync.FileSync_DiffCopyServer) error {
	defer workspaceLocks.lock(s.w.dir, true)()
	return s.w.send.DiffCopy(stream)
}

func (s workspaceSender) TarStream(stream filesync.FileSync_TarStreamServer) error {
	defer workspaceLocks.lock(s.w.dir, true)()
	return s.w.send.TarStream(stream)
}
