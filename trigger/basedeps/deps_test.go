package basedeps

import (
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/proto"
)

func TestDeps(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	alpine := "index.docker.io/library/alpine:latest"
	golang := "index.docker.io/library/golang:1.26"
	tests := []struct {
		name       string
		dockerfile string
		buildArgs  map[string]string
		target     string
		want       []Dependency
		wantErr    []string // each must be in the error's message; the error must be proto.Invalid
	}{
		{
			name:       "single stage",
			dockerfile: "FROM alpine\nRUN true\n",
			want:       []Dependency{{Ref: alpine, Runtime: true, Stage: "0"}},
		},
		{
			name: "builder and runtime",
			dockerfile: `FROM golang:1.26 AS build
RUN go build -o /app .
FROM gcr.io/distroless/static:nonroot
COPY --from=build /app /app
`,
			want: []Dependency{
				{Ref: golang, Stage: "build"},
				{Ref: "gcr.io/distroless/static:nonroot", Runtime: true, Stage: "1"},
			},
		},
		{
			name:       "ARG default",
			dockerfile: "ARG VERSION=3.20\nFROM alpine:$VERSION\n",
			want:       []Dependency{{Ref: "index.docker.io/library/alpine:3.20", Runtime: true, Stage: "0"}},
		},
		{
			name:       "ARG overridden by a build arg",
			dockerfile: "ARG VERSION=3.20\nFROM alpine:${VERSION}\n",
			buildArgs:  map[string]string{"VERSION": "3.21", "UNDECLARED": "x"},
			want:       []Dependency{{Ref: "index.docker.io/library/alpine:3.21", Runtime: true, Stage: "0"}},
		},
		{
			name:       "ARG default from another ARG",
			dockerfile: "ARG REGISTRY=registry.example.com:5000\nARG IMAGE=$REGISTRY/team/base\nFROM ${IMAGE}:1\n",
			want:       []Dependency{{Ref: "registry.example.com:5000/team/base:1", Runtime: true, Stage: "0"}},
		},
		{
			name:       "default in the expression",
			dockerfile: "ARG TAG\nFROM alpine:${TAG:-3.19}\n",
			want:       []Dependency{{Ref: "index.docker.io/library/alpine:3.19", Runtime: true, Stage: "0"}},
		},
		{
			name:       "default in the expression overridden",
			dockerfile: "ARG TAG\nFROM alpine:${TAG:-3.19}\n",
			buildArgs:  map[string]string{"TAG": "edge"},
			want:       []Dependency{{Ref: "index.docker.io/library/alpine:edge", Runtime: true, Stage: "0"}},
		},
		{
			name:       "ARG after the first FROM is not seen by FROM",
			dockerfile: "FROM alpine AS a\nARG TAG=9\nFROM busybox:${TAG:-1}\n",
			want:       []Dependency{{Ref: "index.docker.io/library/busybox:1", Runtime: true, Stage: "1"}},
		},
		{
			name: "stage reference chain",
			dockerfile: `FROM debian:12 AS a
RUN apt-get update
FROM a AS b
RUN true
FROM B
`,
			want: []Dependency{{Ref: "index.docker.io/library/debian:12", Runtime: true, Stage: "a"}},
		},
		{
			name: "target selects an early stage",
			dockerfile: `FROM golang:1.26 AS build
FROM build AS test
RUN go test ./...
FROM alpine
COPY --from=build /app /app
`,
			target: "Test",
			want:   []Dependency{{Ref: golang, Runtime: true, Stage: "build"}},
		},
		{
			name:       "unknown target",
			dockerfile: "FROM alpine AS build\nFROM busybox\n",
			target:     "release",
			wantErr:    []string{`"release"`},
		},
		{
			name: "unused stage ignored",
			dockerfile: `FROM node:22 AS docs
RUN npm run docs
FROM alpine
`,
			want: []Dependency{{Ref: alpine, Runtime: true, Stage: "1"}},
		},
		{
			name:       "COPY --from an image",
			dockerfile: "FROM alpine\nCOPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/uv\n",
			want: []Dependency{
				{Ref: alpine, Runtime: true, Stage: "0"},
				{Ref: "ghcr.io/astral-sh/uv:0.5", Stage: "0"},
			},
		},
		{
			name: "COPY --from a stage and a stage index",
			dockerfile: `FROM python:3.13 AS deps
FROM rust:1 AS tools
FROM scratch AS unused
FROM alpine
COPY --from=DEPS /venv /venv
COPY --from=1 /bin/tool /bin/tool
`,
			want: []Dependency{
				{Ref: "index.docker.io/library/python:3.13", Stage: "deps"},
				{Ref: "index.docker.io/library/rust:1", Stage: "tools"},
				{Ref: alpine, Runtime: true, Stage: "3"},
			},
		},
		{
			name: "RUN --mount from a stage and an image",
			dockerfile: `FROM golang:1.26 AS src
FROM alpine
RUN --mount=from=src,target=/src --mount=type=bind,from=busybox:1.37,target=/bb --mount=type=cache,target=/c true
`,
			want: []Dependency{
				{Ref: golang, Stage: "src"},
				{Ref: alpine, Runtime: true, Stage: "1"},
				{Ref: "index.docker.io/library/busybox:1.37", Stage: "1"},
			},
		},
		{
			name: "scratch ignored",
			dockerfile: `FROM golang:1.26 AS build
FROM scratch
COPY --from=build /app /app
`,
			want: []Dependency{{Ref: golang, Stage: "build"}},
		},
		{
			name: "platform",
			dockerfile: `ARG ARCH=arm64
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
FROM --platform=linux/${ARCH} alpine
COPY --from=build /app /app
`,
			want: []Dependency{
				{Ref: golang, Platform: "$BUILDPLATFORM", Stage: "build"},
				{Ref: alpine, Runtime: true, Platform: "linux/arm64", Stage: "1"},
			},
		},
		{
			name:       "platform set by a build arg",
			dockerfile: "FROM --platform=$TARGETPLATFORM alpine\n",
			buildArgs:  map[string]string{"TARGETPLATFORM": "linux/riscv64"},
			want:       []Dependency{{Ref: alpine, Runtime: true, Platform: "linux/riscv64", Stage: "0"}},
		},
		{
			name:       "digest kept",
			dockerfile: "FROM alpine:3.20@" + digest + "\n",
			want:       []Dependency{{Ref: "index.docker.io/library/alpine@" + digest, Runtime: true, Stage: "0"}},
		},
		{
			name: "duplicates once, runtime wins",
			dockerfile: `FROM alpine AS one
FROM docker.io/library/alpine:latest AS two
FROM golang:1.26 AS three
FROM alpine
COPY --from=one / /1
COPY --from=two / /2
COPY --from=three / /3
COPY --from=golang:1.26 / /4
`,
			want: []Dependency{
				{Ref: alpine, Runtime: true, Stage: "3"},
				{Ref: golang, Stage: "three"},
			},
		},
		{
			name:       "empty expansion",
			dockerfile: "ARG IMAGE\n\nFROM ${IMAGE}\n",
			wantErr:    []string{"line 3", "FROM ${IMAGE}"},
		},
		{
			name:       "not a reference",
			dockerfile: "FROM alpine\nFROM Not_A/Ref::x AS bad\nFROM alpine\n",
			wantErr:    []string{"line 2", "Not_A/Ref::x"},
		},
		{
			name:       "base depends on the target platform",
			dockerfile: "FROM example.com/base-$TARGETARCH:1\n",
			wantErr:    []string{"line 1", "TARGETARCH"},
		},
		{
			name:       "unknown instruction",
			dockerfile: "FROM alpine\nRUNN true\n",
			wantErr:    []string{"line 2", "unknown instruction: RUNN"},
		},
		{
			name:       "FROM with two arguments",
			dockerfile: "FROM alpine\nFROM alpine AS\n",
			wantErr:    []string{"line 2", "FROM requires either one or three arguments"},
		},
		{
			name:       "no FROM",
			dockerfile: "ARG X=1\n",
			wantErr:    []string{"no FROM"},
		},
		{
			name:       "COPY --from with a variable",
			dockerfile: "ARG SRC=alpine\nFROM alpine\nCOPY --from=$SRC / /\n",
			wantErr:    []string{"line 3", "does not expand variables"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Dependencies([]byte(tt.dockerfile), tt.buildArgs, tt.target)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Dependencies() = %+v, want an error", got)
				}
				if code := proto.ErrorCode(err); code != proto.Invalid {
					t.Errorf("Dependencies() error kind = %s, want %s (%v)", code, proto.Invalid, err)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Dependencies() error = %q, want it to contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Dependencies() error = %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Dependencies() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
