package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/kilnbuild/kiln/proto"
)

// GitCache fetches commits of remote repositories into per-repository caches under dir, and checks them out.
//
// Each repository has a bare git repository of its own under dir, named by a hash of its URL, that keeps every
// object ever fetched from it, so that the next build of the same repository fetches only the objects that are
// new. Fetches are shallow (depth 1), of one ref or commit, without tags. Fetches of the same repository take
// turns: in one process through a lock per repository, across processes sharing dir through an flock(2) on a
// file next to the cache. Checkouts run side by side, since a cache only ever gains objects.
//
// The files checked out are kept as well, under dir/files, one per content and mode, and later checkouts
// hard-link those they need instead of writing them again (see fileStore), which makes checking out a commit
// that differs from an earlier one in a few files a matter of links. The first Fetch of a repository keeps none,
// so that a repository built once costs neither the links nor the space; the second keeps them all. A checkout
// into a directory on another file system than dir writes copies.
//
// Nothing is ever removed from dir: deleting it (or one repository's directory, when no Fetch runs) is how to
// reclaim the space.
//
// A GitCache is safe for concurrent use.
type GitCache struct {
	dir   string
	locks repoLocks
}

// NewGitCache returns a GitCache that keeps its caches under dir, created when the first Fetch needs it.
func NewGitCache(dir string) *GitCache {
	return &GitCache{dir: dir}
}

// GitRequest says which files of which repository a Fetch checks out.
type GitRequest struct {
	URL    string // https://host/owner/repo.git (no credentials in it)
	Ref    string // branch, tag or other ref to fetch, "main", "refs/heads/main", "refs/tags/v1", "refs/pull/7/head"; "" = the remote's HEAD
	Commit string // the commit to build (40 hex); "" = whatever Ref points to now
	Subdir string // the directory inside the repository that is the context; "" = the root
	Token  string // for private repositories over HTTPS; "" = anonymous
}

// Fetch puts the files of req's commit (its Subdir) into dest (an existing empty directory) and returns the commit it checked out.
//
// It fetches the commit into the repository's cache, shallow and alone: by its hash when req.Commit is set, which
// the server must allow (GitHub does; git http-backend needs uploadpack.allowAnySHA1InWant=true or
// uploadpack.allowReachableSHA1InWant=true in the repository's config), and otherwise by fetching req.Ref,
// deepened until the commit turns up, so that what is built is req.Commit even when the branch has moved on
// since. Then it writes the commit's tree, or its Subdir, into dest (see checkout for how). A token is sent as the
// password of HTTP basic authentication, with the user name x-access-token, which GitHub, Gitea and GitLab take.
//
// It writes what it does to log, a line at a time, as a build log would. Errors are written to log as well. A
// request that is wrong, and whatever the remote refuses or fails at (authentication required or refused, no such
// repository, ref or commit, a server that cannot be reached) is kind proto.Invalid with git's message; ctx ending
// is proto.Unavailable. req.Token appears in no error and no line of log.
func (c *GitCache) Fetch(ctx context.Context, req GitRequest, dest string, log io.Writer) (commit string, err error) {
	if log == nil {
		log = io.Discard
	}
	log = redactWriter{w: log, token: req.Token}
	defer func() {
		if err != nil {
			fmt.Fprintln(log, err)
		}
	}()
	want, subdir, err := req.check()
	if err != nil {
		return "", err
	}
	if err := emptyDir(dest); err != nil {
		return "", err
	}
	what := req.describe(want)
	fmt.Fprintf(log, "Fetching %s\n", what)
	start := time.Now()

	repo, got, err := c.fetch(ctx, req, want, log)
	if err != nil {
		return "", fetchError(ctx, "fetching "+what, err, req.Token)
	}
	defer repo.Close()
	fmt.Fprintf(log, "Fetched %s in %s (cache: %d objects new, %s)\n", short(got), since(start),
		repo.objects, byteSize(repo.bytes))

	start = time.Now()
	files := fileStore{dir: filepath.Join(c.dir, "files"), fill: !repo.created}
	stats, err := checkout(ctx, repo.store, files, got, subdir, dest, log)
	if err != nil {
		if ctx.Err() != nil {
			return "", proto.Errorf(proto.Unavailable, "checking out %s: stopped: %w", short(got), context.Cause(ctx))
		}
		return "", err
	}
	where := ""
	if subdir != "" {
		where = " of " + subdir
	}
	fmt.Fprintf(log, "Checked out %d files%s (%s) of %s in %s (%d linked from earlier checkouts)\n",
		stats.files, where, byteSize(stats.bytes), short(got), since(start), stats.reused)
	return got.String(), nil
}

// fetch makes sure that the cache of req's repository holds want (or, when want is zero, what req.Ref points to
// now) and returns the cache, open for the checkout, and the commit. It holds the repository's locks while it
// writes to the cache; the checkout needs none, since a cache only ever gains objects.
func (c *GitCache) fetch(ctx context.Context, req GitRequest, want plumbing.Hash, log io.Writer) (*repoCache, plumbing.Hash, error) {
	key := cacheKey(req.URL)
	release, err := c.locks.acquire(ctx, key)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	defer release()
	unlock, err := c.lockFile(ctx, key)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	defer unlock()
	repo, err := openRepoCache(filepath.Join(c.dir, key+".git"), req.URL, req.Token)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	got, err := repo.fetch(ctx, req.Ref, want, log)
	if err != nil {
		repo.Close()
		return nil, plumbing.ZeroHash, err
	}
	return repo, got, nil
}

// lockFile takes the file lock of the repository cache key, creating dir if needed.
func (c *GitCache) lockFile(ctx context.Context, key string) (unlock func(), err error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the git cache: %w", err)
	}
	return lockFile(ctx, filepath.Join(c.dir, key+".lock"))
}

// check refuses a request that cannot be fetched with kind proto.Invalid, and returns its commit (zero when
// none is given) and its Subdir, cleaned ("" for the root).
func (req GitRequest) check() (plumbing.Hash, string, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the git URL %q is not a URL", redact(req.URL, req.Token))
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the git URL %q is not an https:// (or http://) URL", u.Redacted())
	}
	if u.User != nil {
		return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the git URL %s has credentials in it: give a token apart", u.Redacted())
	}
	if strings.ContainsAny(req.Ref, ":*?[\\^~ \t\n") || strings.Contains(req.Ref, "..") || strings.HasPrefix(req.Ref, "-") || strings.HasPrefix(req.Ref, "+") {
		return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the git ref %q is not a valid ref name", req.Ref)
	}
	var commit plumbing.Hash
	if req.Commit != "" {
		if len(req.Commit) != 40 || !plumbing.IsHash(req.Commit) {
			return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the git commit %q is not 40 hexadecimal digits", req.Commit)
		}
		commit = plumbing.NewHash(strings.ToLower(req.Commit))
	}
	subdir := path.Clean("/" + req.Subdir)[1:]
	if path.IsAbs(req.Subdir) || strings.Contains("/"+req.Subdir+"/", "/../") {
		return plumbing.ZeroHash, "", proto.Errorf(proto.Invalid, "the context directory %q is not a relative path inside the repository", req.Subdir)
	}
	return commit, subdir, nil
}

// describe names what req fetches, for the log: "https://host/repo.git main at 1a2b3c4".
func (req GitRequest) describe(commit plumbing.Hash) string {
	s := req.URL + " " + refOrHEAD(req.Ref)
	if !commit.IsZero() {
		s += " at " + short(commit)
	}
	return s
}

// cacheKey names the cache of the repository at url: a hash of it, so that any URL makes a safe file name.
func cacheKey(url string) string {
	sum := sha256.Sum256([]byte(strings.TrimSuffix(url, "/")))
	return hex.EncodeToString(sum[:16])
}

// emptyDir checks that dir is an existing empty directory.
func emptyDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checking out: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("checking out: %w", err)
		}
		return fmt.Errorf("checking out: %s is not empty", dir)
	}
	return nil
}

// since is the time from start, rounded for a log.
func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}

// byteSize is n in B, kB or MB, for a log.
func byteSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}
