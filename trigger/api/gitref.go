package api

import (
	"net/url"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/kilnbuild/kiln/proto"
)

// ParseGitContext parses a git build context as docker and az acr write it: an http or https URL of a
// repository ("https://host/owner/repo.git"), then optionally "#ref" naming a branch, tag or full ref, then
// optionally ":subdir" naming the context's directory inside the repository. "#:subdir" keeps the remote's
// default branch. A URL with credentials is refused (a token belongs in a task's gitToken), and so is a query.
// Any error is proto.Invalid and names what is wrong.
func ParseGitContext(s string) (*proto.GitContext, error) {
	raw, frag, _ := strings.Cut(strings.TrimSpace(s), "#")
	u, err := checkContextURL(raw, "git context")
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, proto.Errorf(proto.Invalid, "git context %s: a repository URL has no query string", u.Redacted())
	}
	if strings.Trim(u.Path, "/") == "" {
		return nil, proto.Errorf(proto.Invalid, "git context %s names no repository: it needs a path such as /owner/repo.git", u.Redacted())
	}
	ref, subdir, _ := strings.Cut(frag, ":")
	if ref != "" {
		if err := checkRef(ref); err != nil {
			return nil, err
		}
	}
	if subdir != "" {
		clean := path.Clean(subdir)
		if path.IsAbs(clean) || escapes(clean) {
			return nil, proto.Errorf(proto.Invalid,
				"git context %s: subdirectory %q must be a relative path inside the repository", u.Redacted(), subdir)
		}
		if subdir = clean; subdir == "." {
			subdir = ""
		}
	}
	return &proto.GitContext{Url: u.String(), Ref: ref, Subdir: subdir}, nil
}

// checkContextURL parses raw, the URL of a build context (what says which in errors), and returns it when it
// is an absolute http or https URL with a host and no credentials.
func checkContextURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		// The parser's message would repeat the URL, credentials and all.
		return nil, proto.Errorf(proto.Invalid, "%s is not a valid http or https URL", what)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, proto.Errorf(proto.Invalid, "%s %s: only http and https URLs are supported", what, u.Redacted())
	}
	if u.User != nil {
		return nil, proto.Errorf(proto.Invalid,
			"%s %s: credentials in the URL are refused, as runs and tasks show their URL; a task's token goes in gitToken",
			what, u.Redacted())
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, proto.Errorf(proto.Invalid, "%s %s names no host", what, u.Redacted())
	}
	return u, nil
}

// checkRef returns a proto.Invalid error when ref cannot name a git ref: a branch or tag name ("main",
// "release/1.2") or a full ref ("refs/heads/main"), by git-check-ref-format's rules.
func checkRef(ref string) error {
	full := ref
	if !strings.HasPrefix(ref, "refs/") {
		full = "refs/heads/" + ref
	}
	if strings.HasPrefix(ref, "-") || plumbing.ReferenceName(full).Validate() != nil {
		return proto.Errorf(proto.Invalid, "git context: %q is not a valid branch, tag or ref name", ref)
	}
	return nil
}

// isGitContextURL reports whether the context URL s names a git repository rather than an archive: it
// has a "#ref:subdir" part or its path ends in .git.
func isGitContextURL(s string) bool {
	raw, _, hasFrag := strings.Cut(s, "#")
	if hasFrag {
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), ".git")
}

// formatGitContext writes g back as ParseGitContext reads it: url[#ref][:subdir].
func formatGitContext(g *proto.GitContext) string {
	s := g.GetUrl()
	if g.GetRef() != "" || g.GetSubdir() != "" {
		s += "#" + g.GetRef()
	}
	if g.GetSubdir() != "" {
		s += ":" + g.GetSubdir()
	}
	return s
}
