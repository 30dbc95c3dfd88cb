package builder

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestDownloadContext(t *testing.T) {
	plain := tarOf(t, file("Dockerfile", "FROM scratch\n", 0o644), dir("app", 0o755), file("app/run.sh", "echo hi\n", 0o755))
	archives := map[string][]byte{"/ctx.tar.gz": gzipOf(t, plain), "/ctx.tar": plain, "/notes.txt": []byte("not an archive at all\n")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := archives[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	files := map[string]string{"Dockerfile": "-rw-r--r-- FROM scratch\n", "app": "d", "app/run.sh": "-rwxr-xr-x echo hi\n"}

	tests := []struct {
		name     string
		url      string
		maxBytes int64
		wantCode proto.Code // "" for success
		want     string     // in the error's message
	}{
		{name: "tar.gz", url: srv.URL + "/ctx.tar.gz"},
		{name: "tar", url: srv.URL + "/ctx.tar"},
		{name: "signed URL", url: srv.URL + "/ctx.tar.gz?sig=s3cr3t&se=2030"},
		{name: "not found", url: srv.URL + "/missing.tar.gz?sig=s3cr3t", wantCode: proto.Invalid,
			want: "downloading the build context from " + srv.URL + "/missing.tar.gz?REDACTED: 404 Not Found"},
		{name: "not an archive", url: srv.URL + "/notes.txt", wantCode: proto.Invalid, want: "not a tar or gzip archive"},
		{name: "too large", url: srv.URL + "/ctx.tar.gz", maxBytes: 100, wantCode: proto.TooLarge, want: "larger than the limit"},
		{name: "unreachable", url: gone.URL + "/ctx.tar.gz", wantCode: proto.Invalid, want: "connection refused"},
		{name: "not http", url: "ftp://example.com/ctx.tar.gz", wantCode: proto.Invalid, want: "not an http:// or https:// URL"},
		{name: "password", url: strings.Replace(srv.URL, "://", "://u:s3cr3t@", 1) + "/missing", wantCode: proto.Invalid, want: "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := t.TempDir()
			var log bytes.Buffer
			err := DownloadContext(t.Context(), tt.url, dest, tt.maxBytes, &log)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("DownloadContext(%s) = %v\n%s", tt.url, err, log.String())
				}
				if got := listTree(t, dest); !maps.Equal(got, files) {
					t.Errorf("DownloadContext(%s) extracted\n%q\nwant\n%q", tt.url, got, files)
				}
			} else {
				if proto.ErrorCode(err) != tt.wantCode || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("DownloadContext(%s) = %v (%s), want kind %s and %q", tt.url, err, proto.ErrorCode(err), tt.wantCode, tt.want)
				}
				if !strings.Contains(log.String(), err.Error()) {
					t.Errorf("DownloadContext(%s) logged\n%s\nwant the error", tt.url, log.String())
				}
			}
			if strings.Contains(log.String(), "s3cr3t") || (err != nil && strings.Contains(err.Error(), "s3cr3t")) {
				t.Errorf("DownloadContext(%s) told the URL's secret: %v\n%s", tt.url, err, log.String())
			}
		})
	}
}
