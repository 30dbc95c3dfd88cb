package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// The context benchContextKey builds: ctxKeyFiles files of ctxKeyFileBytes (hex text, which compresses about as
// source does) in ctxKeyDirs directories, and a Dockerfile that copies all of it into the image.
const (
	ctxKeyFiles     = 1000
	ctxKeyDirs      = 20
	ctxKeyFileBytes = 20_000
	ctxKeyDocker    = "FROM scratch\nCOPY . /ctx/\n"
)

// contextKeyResults are what benchContextKey measured, a sample per round for each side: the whole Build, and
// the bytes BuildKit's file sync sent of the context.
type contextKeyResults struct {
	Own, Shared         []time.Duration
	OwnSent, SharedSent []int64
}

// benchContextKey measures what a build context's own BuildKit key costs a warm build: rounds builds of a
// context of 20 MB in 1,000 files, each from a new directory holding a copy of it (the same files and times, as
// a run's unpacked upload has them) with one file changed, through builder.Builder on the benchmark's buildkitd.
// One side gives each build a key of its own (what a changed upload, keyed by its archive's digest, or a URL
// context gets), so that BuildKit
// receives the whole context every time; the other gives every build one key (what all builds shared before
// the key, and what the builds of one git commit share now), so that BuildKit receives only what differs from
// the previous build's context. The sides alternate, after a build of each that is not counted.
func benchContextKey(ctx context.Context, buildkitAddr, tmp string, rounds int) (contextKeyResults, error) {
	var r contextKeyResults
	dir := filepath.Join(tmp, "contextkey")
	defer os.RemoveAll(dir)
	master := filepath.Join(dir, "master")
	if err := writeKeyContext(master); err != nil {
		return r, err
	}
	b, err := builder.New(ctx, buildkitAddr)
	if err != nil {
		return r, err
	}
	defer b.Close()
	shared := "bench-shared-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := -1; i < rounds; i++ { // round -1 fills BuildKit's copy of the shared key, and is not counted
		for side, key := range []string{"", shared} {
			took, sent, err := keyBuild(ctx, b, dir, master, key, fmt.Sprintf("%d-%d", i+1, side))
			if err != nil {
				return r, err
			}
			switch {
			case i < 0:
			case key == "":
				r.Own, r.OwnSent = append(r.Own, took), append(r.OwnSent, sent)
			default:
				r.Shared, r.SharedSent = append(r.Shared, took), append(r.SharedSent, sent)
			}
		}
	}
	return r, nil
}

// writeKeyContext writes the benchmark's context into dir: pseudo-random hex files, the same at every run, all
// with one modification time.
func writeKeyContext(dir string) error {
	rng := rand.New(rand.NewChaCha8([32]byte{'k', 'e', 'y'}))
	raw := make([]byte, ctxKeyFileBytes/2)
	for i := range ctxKeyFiles {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", i%ctxKeyDirs))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%04d.txt", i)), []byte(hex.EncodeToString(raw)), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(ctxKeyDocker), 0o644); err != nil {
		return err
	}
	t := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
}

// keyBuild copies master into a new directory, changes one of its files, and times a Build of it under key,
// returning the time and the bytes of the context BuildKit's file sync sent.
func keyBuild(ctx context.Context, b *builder.Builder, dir, master, key, name string) (time.Duration, int64, error) {
	work := filepath.Join(dir, "build-"+name)
	defer os.RemoveAll(work)
	if err := os.CopyFS(filepath.Join(work, "context"), os.DirFS(master)); err != nil {
		return 0, 0, err
	}
	ctxDir := filepath.Join(work, "context")
	if err := copyTimes(master, ctxDir); err != nil {
		return 0, 0, err
	}
	changed := filepath.Join(ctxDir, "pkg00", "file0000.txt")
	if err := os.WriteFile(changed, []byte("changed by build "+name+"\n"), 0o644); err != nil {
		return 0, 0, err
	}
	var log strings.Builder
	req := builder.Request{ContextDir: ctxDir, OutputDir: filepath.Join(work, "oci"), ContextKey: key}
	start := time.Now()
	if _, err := b.Build(ctx, req, &log); err != nil {
		return 0, 0, fmt.Errorf("building the 20 MB context: %w\n%s", err, log.String())
	}
	took := time.Since(start)
	return took, contextSent(log.String()), nil
}

// copyTimes gives every path under dst the modification time of the same path under src, as an unpacked
// upload keeps them.
func copyTimes(src, dst string) error {
	return filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return os.Chtimes(filepath.Join(dst, rel), fi.ModTime(), fi.ModTime())
	})
}

// sentLine is BuildKit's plain progress line of a finished transfer of the build context.
var sentLine = regexp.MustCompile(`transferring context: ([0-9.]+)(B|kB|MB|GB)\b.* done`)

// contextSent returns the most bytes a finished context transfer in a build's log reports.
func contextSent(log string) int64 {
	var most int64
	for _, m := range sentLine.FindAllStringSubmatch(log, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		n := int64(v * map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]])
		most = max(most, n)
	}
	return most
}

func (r contextKeyResults) markdown() string {
	var b strings.Builder
	own, shared := quantile(r.Own, 0.5), quantile(r.Shared, 0.5)
	fmt.Fprintf(&b, "## A warm build of a larger context: a key of its own vs one shared key\n\n")
	fmt.Fprintf(&b, "What a build context's own BuildKit key costs (builder.Request.ContextKey; see README, build contexts). "+
		"A context of %d files of hex text, %.0f MB in all, in %d directories, with `%s`; each of %d rounds copies it "+
		"into a new directory (the same files and times, as an unpacked upload has them), changes one file, and "+
		"builds it through builder.Builder, exporting an OCI layout, once with a key of its own (what a changed upload, "+
		"keyed by its archive's digest, or a URL context gets: BuildKit receives the whole context) and once under one key shared by all of that side's builds "+
		"(what every build shared before, and what builds of one git commit share now: BuildKit receives only what "+
		"differs from the previous build), alternately, after one uncounted build of each.\n\n",
		ctxKeyFiles, float64(ctxKeyFiles*ctxKeyFileBytes)/1e6, ctxKeyDirs, strings.ReplaceAll(ctxKeyDocker, "\n", " "), len(r.Own))
	fmt.Fprintf(&b, "| key | build median | context sent (median) |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| its own | %s | %s |\n", ms(own), size(medianInt(r.OwnSent)))
	fmt.Fprintf(&b, "| shared | %s | %s |\n\n", ms(shared), size(medianInt(r.SharedSent)))
	fmt.Fprintf(&b, "A key of its own: %.2f× the shared key's median build (%s more).\n\n", float64(own)/float64(shared), ms(own-shared))
	return b.String()
}

// medianInt is the median of ns (0 for none).
func medianInt(ns []int64) int64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	return s[len(s)/2]
}

// size is n bytes in kB below a megabyte, in MB above.
func size(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return mb(n)
}
