package taskfile

import (
	"reflect"
	"testing"
)

func TestParseCmd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Cmd
	}{
		{"image only", "hello-world", &Cmd{Image: "hello-world", Args: []string{}}},
		{"image and args", "bash echo hello world", &Cmd{Image: "bash", Args: []string{"echo", "hello", "world"}}},
		{"registry, tag and quotes", `docker.io/bash:3.0 -c 'echo "$HOME" && ls'`,
			&Cmd{Image: "docker.io/bash:3.0", Args: []string{"-c", `echo "$HOME" && ls`}}},
		{"private registry with a port", "127.0.0.1:5000/tools/lint:v1 run ./...",
			&Cmd{Image: "127.0.0.1:5000/tools/lint:v1", Args: []string{"run", "./..."}}},
		{"by digest", "alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123 true",
			&Cmd{Image: "alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123", Args: []string{"true"}}},
		{"blanks around", "  \n alpine   true \n", &Cmd{Image: "alpine", Args: []string{"true"}}},
		{"empty argument", `alpine echo ""`, &Cmd{Image: "alpine", Args: []string{"echo", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmd(tt.in)
			if err != nil {
				t.Fatalf("ParseCmd(%q) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseCmd(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseCmdErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string
	}{
		{"empty", "", "cmd: is empty"},
		{"blank", "  \t ", "cmd: is empty"},
		{"bad image", "Bad/Image echo", `cmd: "Bad/Image" is not an image reference`},
		{"flag for an image", "-it alpine", `"-it" is not an image reference`},
		{"unclosed quote", "alpine echo 'hi", "single quote"},
		{"alias left unexpanded", "$Registry/app:1", `"$Registry/app:1" is not an image reference`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCmd(tt.in)
			wantError(t, err, 0, "cmd", tt.msg)
		})
	}
}

func TestCmdStepErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"bad image", "steps:\n  - cmd: Alpine\n", 2, "steps[0].cmd", "is not an image reference"},
		{"empty", "steps:\n  - cmd: \"\"\n", 2, "steps[0].cmd", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), "acb.yaml", testData())
			wantError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

func TestCmdFile(t *testing.T) {
	c, err := ParseCmd("alpine echo hi")
	if err != nil {
		t.Fatal(err)
	}
	f := CmdFile(c)
	// The same command as a task file, loaded, is the same File.
	want := mustLoad(t, "steps:\n  - cmd: alpine echo hi\n")
	want.Steps[0].Line = 0
	want.Steps[0].Env = nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("CmdFile() =\n%+v\nwant\n%+v", f, want)
	}
}

// TestParseCmdRefusesDocker: the docker CLI needs a daemon Kiln does not have; the error says what to write.
func TestParseCmdRefusesDocker(t *testing.T) {
	for _, in := range []string{"docker build -t app .", "docker:24-cli ps", "docker.io/library/docker images"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseCmd(in)
			wantError(t, err, 0, "cmd", "needs a Docker daemon, and Kiln has none: steps run on BuildKit. Build an image with a build step")
		})
	}
	_, err := Load([]byte("steps:\n  - build: -t app .\n  - cmd: docker push app\n"), "acb.yaml", testData())
	wantError(t, err, 3, "steps[1].cmd", `"docker push app" runs the docker CLI`)
	if _, err := ParseCmd("myorg/docker run"); err != nil {
		t.Errorf("ParseCmd(myorg/docker run) = %v, want no error: it is not Docker Hub's docker", err)
	}
}

func TestCmdRef(t *testing.T) {
	tests := []struct{ image, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"myorg/tool", "docker.io/myorg/tool:latest"},
		{"docker.io/bash:3.0", "docker.io/library/bash:3.0"},
		{"127.0.0.1:5000/tools/lint", "127.0.0.1:5000/tools/lint:latest"},
		{"localhost/app:1", "localhost/app:1"},
		{"registry.local/app:k1", "registry.local/app:k1"},
		{"mcr.microsoft.com/azure-cli", "mcr.microsoft.com/azure-cli:latest"},
		{"alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123",
			"docker.io/library/alpine@sha256:0123456789012345678901234567890123456789012345678901234567890123"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			c := &Cmd{Image: tt.image}
			if got := c.Ref(); got != tt.want {
				t.Errorf("Cmd{Image: %q}.Ref() = %q, want %q", tt.image, got, tt.want)
			}
		})
	}
}
