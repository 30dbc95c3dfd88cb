package builder

import "testing"

func TestBaseImage(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name   string
		vertex string
		want   BaseImage
		wantOK bool
	}{
		{name: "stage step", vertex: "[build 1/3] FROM 127.0.0.1:5000/base:1@" + d, want: BaseImage{"127.0.0.1:5000/base:1", d}, wantOK: true},
		{name: "platform prefix", vertex: "[linux/arm64 stage-0 1/2] FROM docker.io/library/alpine:3@" + d, want: BaseImage{"docker.io/library/alpine:3", d}, wantOK: true},
		{name: "stage with no instruction", vertex: "FROM docker.io/library/alpine:3@" + d, want: BaseImage{"docker.io/library/alpine:3", d}, wantOK: true},
		{name: "not resolved", vertex: "[1/2] FROM docker.io/library/alpine:3"},
		{name: "metadata", vertex: "[internal] load metadata for docker.io/library/alpine:3"},
		{name: "run step", vertex: "[2/2] RUN echo FROM x@" + d},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := baseImage(tt.vertex)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("baseImage(%q) = %v, %v, want %v, %v", tt.vertex, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
