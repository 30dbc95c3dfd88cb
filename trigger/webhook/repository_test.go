package webhook

import "testing"

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "clone URL", in: "https://github.com/Codertocat/Hello-World.git", want: "https://github.com/Codertocat/Hello-World"},
		{name: "web URL", in: "https://github.com/Codertocat/Hello-World", want: "https://github.com/Codertocat/Hello-World"},
		{name: "trailing slash", in: "https://github.com/Codertocat/Hello-World/", want: "https://github.com/Codertocat/Hello-World"},
		{name: ".git and slash", in: "https://github.com/Codertocat/Hello-World.git/", want: "https://github.com/Codertocat/Hello-World"},
		{name: "scheme and host lowercased, path kept", in: "HTTPS://GitHub.COM/Codertocat/Hello-World", want: "https://github.com/Codertocat/Hello-World"},
		{name: "port kept", in: "http://127.0.0.1:3000/Test-CI/app.git", want: "http://127.0.0.1:3000/Test-CI/app"},
		{name: "ssh URL", in: "ssh://git@Gitea.example:2200/o/r.git", want: "ssh://git@gitea.example:2200/o/r"},
		{name: "scp-like", in: "git@GitHub.com:Codertocat/Hello-World.git", want: "git@github.com:Codertocat/Hello-World"},
		{name: "spaces around", in: "  https://github.com/o/r.git\n", want: "https://github.com/o/r"},
		{name: "a .git inside the name stays", in: "https://github.com/o/r.github.io", want: "https://github.com/o/r.github.io"},
		{name: "host only", in: "https://Example.com", want: "https://example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizeURL(tt.in); got != tt.want {
				t.Errorf("normalizeURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewRepositoryMatchesEveryForm(t *testing.T) {
	r := newRepository("https://github.com/o/r.git", "", "https://GITHUB.com/o/r", "git@github.com:o/r.git")
	if r.name != "https://github.com/o/r.git" {
		t.Errorf("name = %q, want the first URL given", r.name)
	}
	want := []string{"https://github.com/o/r", "git@github.com:o/r"}
	if len(r.urls) != len(want) || r.urls[0] != want[0] || r.urls[1] != want[1] {
		t.Errorf("urls = %q, want %q", r.urls, want)
	}
}
