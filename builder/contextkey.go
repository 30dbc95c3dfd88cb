package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/moby/buildkit/identity"
	"golang.org/x/sys/unix"
)

// BuildKit keeps, for each local directory a session sends it, a copy of what it received last, and a later
// transfer under the same key sends only the files whose size, modification time or mode differ from that copy:
// a file that matches on those is taken as it is, without its data being compared. The key is the source's name
// ("context", "dockerfile", "workspace"), the hint of the LLB that reads it, and the session's shared key. With
// one key for every build, a context with a file of the same name, size, mode and time as another context's
// would be built with the other's file. So no key is ever shared by two contents: a build's session key is its
// Request's ContextKey, which the caller gives only when it names the content, and otherwise a random one; an
// Exec's workspace is known by its directory and this process. (The Dockerfile frontend sends the Dockerfile and
// .dockerignore whole at every build, whatever the key, but they too are kept under the session's key.)

// sessionKey is the shared key of the session that sends a build's context: contextKey, prefixed so that it is
// never a random key, or a new random key when it is "".
func sessionKey(contextKey string) string {
	if contextKey == "" {
		return identity.NewID()
	}
	return "kiln-context:" + contextKey
}

// processKey tells this process's workspaces from another's of the same path, in a buildkitd that several
// processes share: a Kiln whose data was reset, or another Kiln, counts its runs, and so names their directories,
// from the start again.
var processKey = identity.NewID()

// workspaceKey is the hint that the BuildKit local source of the workspace dir is kept under: the same for every
// Exec of that directory in this process, so that each sends only what changed since the previous one, and no
// other directory's, not even one made at the same path after it was removed, since the key holds the
// directory's inode and birth time.
func workspaceKey(dir string) (string, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	born := "unknown" // a file system that keeps no birth time: the inode and the path still tell most apart
	if st.Mask&unix.STATX_BTIME != 0 {
		born = fmt.Sprintf("%d.%09d", st.Btime.Sec, st.Btime.Nsec)
	}
	return fmt.Sprintf("kiln-workspace:%s:%d:%s:%s", processKey, st.Ino, born, dir), nil
}

// DirContextKey is the Request.ContextKey of a build of the directory dir as it is now, which a later build of
// the same directory (a task file's build steps, one after another, on the run's workspace) may share to send
// BuildKit only what changed since: a key of this directory in this process, like an Exec's workspace, that
// no other directory shares, not even one made at the same path after dir was removed.
func DirContextKey(dir string) (string, error) {
	key, err := workspaceKey(dir)
	if err != nil {
		return "", err
	}
	return "dir:" + key, nil
}

// GitContextKey is the Request.ContextKey of a build of the checkout that GitCache.Fetch makes of commit of the
// repository at url, the directory subdir of it ("" for its root): the same commit and directory always check
// out to the same files, with the same modes and times (see blobTime), so that a build of a commit built before
// sends only what BuildKit lacks of it. An empty commit gives "", a key of the build's own.
func GitContextKey(url, commit, subdir string) string {
	if commit == "" {
		return ""
	}
	h := sha256.Sum256([]byte("git\x00" + url + "\x00" + commit + "\x00" + subdir))
	return "git:" + hex.EncodeToString(h[:])
}

// UploadContextKey is the ContextKey of a context unpacked from an uploaded archive whose digest
// ("sha256:...") is digest: the archive holds every file's content, mode and time, so the same archive always
// unpacks to the same files, and two archives of one digest are the same archive.
func UploadContextKey(digest string) string {
	return "upload:" + digest
}
