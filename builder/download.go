package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/kilnbuild/kiln/proto"
)

// DownloadContext downloads a tar or tar.gz build context from url and extracts it into dir with Extract.
//
// url is http:// or https://; it is named in errors and in log without its password and query, which may hold a
// signature (a SAS token on Azure Blob Storage, a signed S3 URL). A URL that is not one, an answer other than
// 200 OK (404, 403...) and a server that cannot be reached or breaks off are kind proto.Invalid naming the URL
// and the status or the failure; ctx ending is proto.Unavailable. What Extract refuses keeps Extract's kind, and
// maxBytes is Extract's limit on the uncompressed archive. It writes a line to log before and after, as a build
// log would.
func DownloadContext(ctx context.Context, url, dir string, maxBytes int64, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	err := download(ctx, url, dir, maxBytes, log)
	if err != nil {
		fmt.Fprintln(log, err)
	}
	return err
}

// download does DownloadContext's work but for writing the error to log.
func download(ctx context.Context, rawURL, dir string, maxBytes int64, log io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return proto.Errorf(proto.Invalid, "the build context URL %q is not an http:// or https:// URL", shownURL(u))
	}
	shown := shownURL(u)
	fmt.Fprintf(log, "Downloading the build context from %s\n", shown)
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return proto.Errorf(proto.Invalid, "downloading the build context from %s: %v", shown, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return downloadError(ctx, shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proto.Errorf(proto.Invalid, "downloading the build context from %s: %s", shown, resp.Status)
	}
	body := &downloadReader{r: resp.Body, shown: shown}
	if err := Extract(ctx, body, dir, maxBytes); err != nil {
		if ctx.Err() != nil {
			return proto.Errorf(proto.Unavailable, "downloading the build context from %s: stopped: %w", shown, context.Cause(ctx))
		}
		return err
	}
	fmt.Fprintf(log, "Downloaded and extracted %s in %s\n", byteSize(body.n), since(start))
	return nil
}

// downloadReader reads a download's body, counting it and giving its read errors kind proto.Invalid (a ctx that
// ended is told apart once Extract returns).
type downloadReader struct {
	r     io.Reader
	shown string
	n     int64
}

func (d *downloadReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF {
		err = proto.Errorf(proto.Invalid, "downloading the build context from %s: %v", d.shown, err)
	}
	return n, err
}

// downloadError is the error for a download that failed on the way: proto.Unavailable when ctx ended, and
// otherwise proto.Invalid with the failure, without the URL that net/http puts in it (shown is named instead).
func downloadError(ctx context.Context, shown string, err error) error {
	if ctx.Err() != nil {
		return proto.Errorf(proto.Unavailable, "downloading the build context from %s: stopped: %w", shown, context.Cause(ctx))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return proto.Errorf(proto.Invalid, "downloading the build context from %s: %v", shown, err)
}

// shownURL is u as it may be shown: without its password and with its query, if any, replaced by "REDACTED".
func shownURL(u *url.URL) string {
	if u == nil {
		return "(an unparsable URL)"
	}
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "REDACTED"
	}
	c.Fragment, c.RawFragment = "", ""
	return c.Redacted()
}
